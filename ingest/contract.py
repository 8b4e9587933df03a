"""The telemetry contract: JSON metric and log events, one per message or an array.

See ``docs/telemetry-contract.md``. A message that cannot be parsed at all raises
:class:`~ingest.exceptions.DecodeError`; in an array, each bad element is reported on
its own and the good ones are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from detectors.events import AlertEvent, Labels, LogEvent, MetricEvent
from ingest.exceptions import DecodeError, Reason

E = TypeVar("E", MetricEvent, LogEvent, AlertEvent)

# Epoch values above these are taken as ms / µs / ns rather than seconds.
_MS_THRESHOLD = 1e11  # 1e11 s is the year 5138
_US_THRESHOLD = 1e14
_NS_THRESHOLD = 1e17
_MAX_EPOCH_S = 7258118400.0  # 2200-01-01

LOG_LEVELS = {
    "trace": "trace",
    "debug": "debug",
    "dbg": "debug",
    "info": "info",
    "information": "info",
    "informational": "info",
    "notice": "notice",
    "warn": "warning",
    "warning": "warning",
    "err": "error",
    "error": "error",
    "fatal": "critical",
    "crit": "critical",
    "critical": "critical",
    "severe": "critical",
    "alert": "alert",
    "emerg": "emergency",
    "emergency": "emergency",
    "panic": "emergency",
}


@dataclass(frozen=True, slots=True)
class EventError:
    """One rejected element of a message (``index`` is None for the whole message)."""

    index: int | None
    error: DecodeError
    raw: bytes


@dataclass(slots=True)
class Decoded(Generic[E]):
    """What one Kafka message decoded into: the good events and the rejected ones."""

    events: list[E] = field(default_factory=list)
    errors: list[EventError] = field(default_factory=list)


BOM = b"\xef\xbb\xbf"


def without_bom(payload: bytes) -> bytes:
    """``payload`` without a leading UTF-8 byte-order mark (some Windows tools write one).

    >>> without_bom(b'\\xef\\xbb\\xbf{"a": 1}')
    b'{"a": 1}'
    """
    return payload[3:] if payload.startswith(BOM) else payload


def parse_timestamp(value: Any, name: str = "timestamp") -> float:
    """Epoch seconds from epoch s/ms/µs/ns (number) or an RFC 3339 string.

    >>> parse_timestamp(1700000000)
    1700000000.0
    >>> parse_timestamp(1700000000123)
    1700000000.123
    >>> parse_timestamp("2023-11-14T22:13:20Z")
    1700000000.0
    >>> parse_timestamp("9999-12-31T23:59:59Z")
    Traceback (most recent call last):
    ...
    ingest.exceptions.DecodeError: invalid_value: 'timestamp' is too far in the future
    """
    if isinstance(value, bool):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be a number or an RFC 3339 string")
    if isinstance(value, int | float):
        ts = float(value)
        if not math.isfinite(ts) or ts < 0:
            raise DecodeError(Reason.INVALID_VALUE, f"'{name}' must be a positive epoch time")
        if ts >= _NS_THRESHOLD:
            ts /= 1e9
        elif ts >= _US_THRESHOLD:
            ts /= 1e6
        elif ts >= _MS_THRESHOLD:
            ts /= 1e3
        if ts > _MAX_EPOCH_S:
            raise DecodeError(Reason.INVALID_VALUE, f"'{name}' is too far in the future")
        return ts
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise DecodeError(
                Reason.INVALID_VALUE, f"'{name}' is not an RFC 3339 time: {value[:64]!r}"
            ) from None
        if dt.tzinfo is None:
            raise DecodeError(
                Reason.INVALID_VALUE, f"'{name}' has no time zone offset: {value[:64]!r}"
            )
        ts = dt.timestamp()
        if ts < 0:
            raise DecodeError(Reason.INVALID_VALUE, f"'{name}' is before 1970: {value[:64]!r}")
        if ts > _MAX_EPOCH_S:
            raise DecodeError(Reason.INVALID_VALUE, f"'{name}' is too far in the future")
        return ts
    raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be a number or an RFC 3339 string")


def _required_str(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        raise DecodeError(Reason.MISSING_FIELD, f"missing field '{name}'")
    if not isinstance(value, str):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be a string")
    if not value:
        raise DecodeError(Reason.INVALID_VALUE, f"'{name}' must not be empty")
    return value


def _optional_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be a string")
    return value or None


def _string_map(obj: dict[str, Any], name: str, *, scalars: bool) -> Labels:
    value = obj.get(name)
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be an object")
    out = []
    for key, item in value.items():
        if isinstance(item, str):
            out.append((key, item))
        elif scalars and isinstance(item, int | float | bool):
            out.append((key, orjson.dumps(item).decode()))
        elif scalars and item is None:
            continue
        else:
            kind = "scalar" if scalars else "string"
            raise DecodeError(Reason.WRONG_TYPE, f"'{name}.{key}' must be a {kind}")
    out.sort()
    return tuple(out)


def _timestamp_of(obj: dict[str, Any]) -> float:
    if "timestamp" not in obj:
        raise DecodeError(Reason.MISSING_FIELD, "missing field 'timestamp'")
    return parse_timestamp(obj["timestamp"])


def metric_from_obj(obj: Any) -> MetricEvent:
    """A :class:`MetricEvent` from one decoded JSON object of the contract."""
    if type(obj) is dict:  # the common, valid shape, checked in one pass
        ts = obj.get("timestamp")
        value = obj.get("value")
        service = obj.get("service")
        metric = obj.get("metric")
        host = obj.get("host")
        labels = obj.get("labels")
        if (
            (type(ts) is float or type(ts) is int)
            and 0 <= ts <= _MAX_EPOCH_S
            and (type(value) is float or type(value) is int)
            and value - value == 0  # finite
            and type(service) is str
            and service
            and type(metric) is str
            and metric
            and ((type(host) is str and host) or (host is None and "instance" not in obj))
            and (
                labels is None
                or (type(labels) is dict and all(type(v) is str for v in labels.values()))
            )
        ):
            return MetricEvent(
                float(ts),
                service,
                metric,
                float(value),
                host or None,
                tuple(sorted(labels.items())) if labels else (),
            )
    return checked_metric_from_obj(obj)


def checked_metric_from_obj(obj: Any) -> MetricEvent:
    """:func:`metric_from_obj` field by field, with an error that names the first bad one
    (the same event when the object is valid)."""
    if not isinstance(obj, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "a metric event must be a JSON object")
    ts = _timestamp_of(obj)
    service = _required_str(obj, "service")
    metric = _required_str(obj, "metric")
    if "value" not in obj:
        raise DecodeError(Reason.MISSING_FIELD, "missing field 'value'")
    raw_value = obj["value"]
    if raw_value is None:
        value = math.nan  # an explicit gap
    elif isinstance(raw_value, bool) or not isinstance(raw_value, int | float):
        raise DecodeError(Reason.WRONG_TYPE, "'value' must be a number or null")
    else:
        value = float(raw_value)
        if math.isinf(value):
            raise DecodeError(Reason.INVALID_VALUE, "'value' must be finite")
    host = _optional_str(obj, "host") or _optional_str(obj, "instance")
    return MetricEvent(
        timestamp=ts,
        service=service,
        metric=metric,
        value=value,
        host=host,
        labels=_string_map(obj, "labels", scalars=False),
    )


def normalise_level(level: str | None) -> str | None:
    """Canonical log level name, or None when unknown.

    >>> normalise_level("WARN")
    'warning'
    """
    if not level:
        return None
    return LOG_LEVELS.get(level.strip().lower())


def log_from_obj(obj: Any) -> LogEvent:
    """A :class:`LogEvent` from one decoded JSON object of the contract."""
    if not isinstance(obj, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "a log event must be a JSON object")
    ts = _timestamp_of(obj)
    service = _required_str(obj, "service")
    message = obj.get("message")
    if message is None:
        raise DecodeError(Reason.MISSING_FIELD, "missing field 'message'")
    if not isinstance(message, str):
        raise DecodeError(Reason.WRONG_TYPE, "'message' must be a string")
    level_raw = _optional_str(obj, "level")
    return LogEvent(
        timestamp=ts,
        service=service,
        message=message,
        level=normalise_level(level_raw) or (level_raw.lower() if level_raw else None),
        host=_optional_str(obj, "host"),
        attributes=_string_map(obj, "attributes", scalars=True),
    )


def load_json(payload: bytes, max_bytes: int) -> Any:
    """Parse a whole message as JSON, enforcing the size limit first."""
    if len(payload) > max_bytes:
        raise DecodeError(
            Reason.OVERSIZED, f"message is {len(payload)} bytes, the limit is {max_bytes}"
        )
    if not payload.strip():
        raise DecodeError(Reason.EMPTY, "message is empty")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(Reason.INVALID_JSON, f"not valid JSON: {exc}") from None


def decode_objects(parsed: Any, build: Callable[[Any], E]) -> Decoded[E]:
    """Build events from a parsed JSON value: one object, or an array of them."""
    out: Decoded[E] = Decoded()
    if isinstance(parsed, list):
        if not parsed:
            raise DecodeError(Reason.EMPTY, "message is an empty array")
        for index, item in enumerate(parsed):
            try:
                out.events.append(build(item))
            except DecodeError as exc:
                out.errors.append(EventError(index, exc, orjson.dumps(item)))
        return out
    out.events.append(build(parsed))
    return out


def decode_metrics(payload: bytes, *, max_bytes: int = 1 << 20) -> Decoded[MetricEvent]:
    """Decode one Kafka message of ``telemetry.metrics``.

    Raises :class:`DecodeError` when the message as a whole is unusable.

    >>> d = decode_metrics(b'{"timestamp": 1700000000, "service": "api", '
    ...                    b'"metric": "latency_ms", "value": 12.5}')
    >>> d.events[0].value, d.errors
    (12.5, [])
    """
    return decode_objects(load_json(payload, max_bytes), metric_from_obj)


def decode_logs(payload: bytes, *, max_bytes: int = 1 << 20) -> Decoded[LogEvent]:
    """Decode one Kafka message of ``telemetry.logs`` in the JSON contract."""
    return decode_objects(load_json(payload, max_bytes), log_from_obj)
