"""OTLP/JSON building blocks shared by the metric and log decoders.

The OTLP/JSON encoding is the Protobuf JSON mapping of the OTLP messages with a few
rules of its own: keys in lowerCamelCase, 64-bit integers (``timeUnixNano``,
``asInt``, ``count``, ``bucketCounts``) as decimal strings (numbers are accepted too),
enums as integers, trace and span ids in hex, and fields at their default value left
out (so a missing ``count`` is 0).
"""

from __future__ import annotations

import math
from typing import Any

from ingest.contract import parse_timestamp
from ingest.exceptions import DecodeError, Reason
from ingest.formats.common import dumps

FORMAT = "otlp"
_MAX_NANOS = 7258118400 * 10**9


def any_value(value: Any) -> Any:
    """The plain Python value of an OTLP ``AnyValue`` object.

    >>> any_value({"intValue": "10"}), any_value({"arrayValue": {"values": [
    ...     {"stringValue": "a"}, {"boolValue": True}]}})
    (10, ['a', True])
    """
    if not isinstance(value, dict) or not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        inner = value["arrayValue"]
        items = inner.get("values") if isinstance(inner, dict) else None
        return [any_value(item) for item in items] if isinstance(items, list) else []
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        items = inner.get("values") if isinstance(inner, dict) else None
        return attributes(items, as_text=False, name="kvlistValue.values")
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def as_text(value: Any) -> str | None:
    """A plain value as label text: strings as they are, the rest as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return dumps(value).decode()


def attributes(items: Any, *, as_text: bool = True, name: str = "attributes") -> dict[str, Any]:
    """A ``KeyValue`` list as a dict (values as label text when ``as_text``).

    >>> attributes([{"key": "service.name", "value": {"stringValue": "api"}},
    ...             {"key": "retries", "value": {"intValue": "3"}}])
    {'service.name': 'api', 'retries': '3'}
    """
    if not items:
        return {}
    if not isinstance(items, list):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be an array")
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must hold {{key, value}} objects")
        plain = any_value(item.get("value"))
        if plain is None:
            continue
        out[item["key"]] = _text(plain) if as_text else plain
    return out


def _text(value: Any) -> str:
    text = as_text(value)
    return "" if text is None else text


def nanos(obj: dict[str, Any], name: str) -> float | None:
    """Epoch seconds of a ``*UnixNano`` field (string or number); None when 0 or absent."""
    raw = obj.get(name)
    if raw is None or raw == 0 or raw == "0":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise DecodeError(
            Reason.INVALID_VALUE, f"'{name}' must be an integer of nanoseconds, got {raw!r}"
        ) from None
    if value < 0 or value > _MAX_NANOS:
        raise DecodeError(Reason.INVALID_VALUE, f"'{name}' is out of range: {raw!r}")
    return parse_timestamp(value / 1e9, name)


def point_time(point: dict[str, Any]) -> float:
    """Epoch seconds of a data point's ``timeUnixNano``, which must be set."""
    timestamp = nanos(point, "timeUnixNano")
    if timestamp is None:
        raise DecodeError(Reason.MISSING_FIELD, "missing field 'timeUnixNano'")
    return timestamp


def integer(obj: dict[str, Any], name: str) -> int:
    """A 64-bit integer field (string or number); 0 when absent."""
    raw = obj.get(name)
    if raw is None:
        return 0
    if isinstance(raw, bool):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be an integer")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise DecodeError(
            Reason.INVALID_VALUE, f"'{name}' must be an integer, got {raw!r}"
        ) from None


def double(raw: Any, name: str) -> float:
    """A double field: a number, or the Protobuf JSON strings ``NaN``/``Infinity``.

    NaN passes (a gap); infinities are rejected.
    """
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            value = None
    if value is None:
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be a number, got {raw!r}")
    if math.isinf(value):
        raise DecodeError(Reason.INVALID_VALUE, f"'{name}' must be finite, got {raw!r}")
    return value


def integers(obj: dict[str, Any], name: str) -> list[float]:
    """A repeated 64-bit integer field (``bucketCounts``) as floats; empty when absent."""
    out = []
    for raw in array(obj, name):
        if isinstance(raw, bool):
            raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must hold integers")
        try:
            out.append(float(int(raw)))
        except (TypeError, ValueError):
            raise DecodeError(
                Reason.WRONG_TYPE, f"'{name}' must hold integers, got {raw!r}"
            ) from None
    return out


def child(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """A message field: an object, empty when absent."""
    raw = obj.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be an object")
    return raw


def objects(obj: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A repeated message field: an array of objects, empty when absent."""
    items = array(obj, name)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DecodeError(Reason.WRONG_TYPE, f"'{name}[{index}]' must be an object")
    return items


def array(obj: dict[str, Any], name: str) -> list[Any]:
    """A repeated field: an array, empty when absent."""
    raw = obj.get(name)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be an array")
    return raw


def first_array(obj: dict[str, Any], *names: str) -> tuple[str, list[Any]]:
    """The first present repeated field among ``names`` (older OTLP names come last)."""
    for name in names:
        if name in obj:
            return name, array(obj, name)
    return names[0], []
