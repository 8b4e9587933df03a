"""collectd's JSON format, as its ``write_kafka`` (and ``write_http``) plugins send it.

A message is an array of value lists::

    [{"values": [1901474177], "dstypes": ["counter"], "dsnames": ["value"],
      "time": 1280959128.000, "interval": 10.000, "host": "leeloo.octo.it",
      "plugin": "cpu", "plugin_instance": "0", "type": "cpu", "type_instance": "idle"}]

``gauge`` values are taken as they are (``null``, collectd's NaN, is a gap); ``counter``
and ``derive`` values become per-second rates against the previous value list of the
series (unless ``write_kafka`` already did it, see ``CollectdMapping.store_rates``),
``absolute`` values are divided by the interval. A ``null`` counter, derive or absolute
value is a gap of the rate series (``cpu_rate``), never a point of the bare name.
"""

from __future__ import annotations

import math
from typing import Any

from detectors.events import Labels, MetricEvent
from ingest.contract import Decoded, parse_timestamp
from ingest.exceptions import DecodeError, Reason
from ingest.formats.common import add_error, counter_rate, dumps, fail
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import CollectdMapping

FORMAT = "collectd"
_DS_TYPES = frozenset({"gauge", "counter", "derive", "absolute"})


def looks_like_collectd(obj: Any) -> bool:
    """Whether a parsed JSON object is a collectd value list."""
    return isinstance(obj, dict) and "dsnames" in obj and "values" in obj


def _text(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be a string")
    return value


def _first_field(obj: dict[str, Any], meta: Any, names: tuple[str, ...]) -> str | None:
    """The first non-empty value-list field or ``meta.<key>`` entry among ``names``."""
    for name in names:
        if name.startswith("meta."):
            value = meta.get(name[5:]) if isinstance(meta, dict) else None
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            text = str(value)
        else:
            raw = obj.get(name)
            if not isinstance(raw, str):
                continue
            text = raw
        if text:
            return text
    return None


def _identity(obj: dict[str, Any]) -> str:
    plugin = f"{obj.get('plugin')}-{obj.get('plugin_instance')}".rstrip("-")
    kind = f"{obj.get('type')}-{obj.get('type_instance')}".rstrip("-")
    return f"{obj.get('host')}/{plugin}/{kind}"


def _value_list(
    obj: Any,
    *,
    mapping: CollectdMapping,
    state: CumulativeState | None,
    rate_suffix: str,
    out: list[MetricEvent],
) -> None:
    if not isinstance(obj, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "a value list must be a JSON object")
    for name in ("values", "dstypes", "dsnames"):
        if not isinstance(obj.get(name), list):
            raise DecodeError(Reason.MISSING_FIELD, f"'{name}' must be an array")
    values, dstypes, dsnames = obj["values"], obj["dstypes"], obj["dsnames"]
    if not len(values) == len(dstypes) == len(dsnames):
        raise DecodeError(
            Reason.INVALID_VALUE, "'values', 'dstypes' and 'dsnames' differ in length"
        )
    if "time" not in obj:
        raise DecodeError(Reason.MISSING_FIELD, "missing field 'time'")
    timestamp = parse_timestamp(obj["time"], "time")
    plugin, kind = _text(obj, "plugin"), _text(obj, "type")
    if not plugin or not kind:
        raise DecodeError(Reason.MISSING_FIELD, "'plugin' and 'type' must not be empty")
    plugin_instance, type_instance = _text(obj, "plugin_instance"), _text(obj, "type_instance")
    meta = obj.get("meta")
    service = _first_field(obj, meta, mapping.service) or mapping.default_service
    host = _first_field(obj, meta, mapping.host)
    if plugin_instance and type_instance:
        labels: Labels = tuple(sorted(((plugin, plugin_instance), ("type", type_instance))))
    elif plugin_instance:
        labels = ((plugin, plugin_instance),)
    elif type_instance:
        labels = (("type", type_instance),)
    else:
        labels = ()
    stem = [mapping.prefix] if mapping.prefix else []
    if plugin != kind:
        stem.append(plugin)
    stem.append(kind)
    interval = obj.get("interval")
    for raw, dstype, dsname in zip(values, dstypes, dsnames, strict=True):
        if dstype not in _DS_TYPES:
            raise DecodeError(Reason.INVALID_VALUE, f"unknown data source type {dstype!r}")
        if not isinstance(dsname, str):
            raise DecodeError(Reason.WRONG_TYPE, "'dsnames' must hold strings")
        metric = "_".join([*stem, dsname] if dsname != "value" else stem)
        if raw is None:
            value = math.nan
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        else:
            raise DecodeError(Reason.WRONG_TYPE, f"value of '{dsname}' must be a number")
        if dstype == "gauge":
            out.append(MetricEvent(timestamp, service, metric, value, host, labels))
            continue
        # A counter, derive or absolute value is only ever published as a rate: a null
        # one (write_kafka's first rate of a series with StoreRates) is a gap of the rate.
        if mapping.store_rates or math.isnan(value):
            out.append(MetricEvent(timestamp, service, metric + rate_suffix, value, host, labels))
            continue
        if dstype == "absolute":
            if not isinstance(interval, int | float) or interval <= 0:
                raise DecodeError(
                    Reason.INVALID_VALUE, "an 'absolute' value needs a positive 'interval'"
                )
            rate: float | None = value / interval
        else:
            rate = counter_rate(
                state,
                fmt=FORMAT,
                service=service,
                metric=metric,
                host=host,
                labels=labels,
                timestamp=timestamp,
                value=value,
                monotonic=dstype == "counter",
            )
        if rate is not None:
            out.append(MetricEvent(timestamp, service, metric + rate_suffix, rate, host, labels))


def decode_collectd(
    parsed: Any,
    *,
    mapping: CollectdMapping,
    state: CumulativeState | None,
    rate_suffix: str,
) -> Decoded[MetricEvent]:
    """Decode a parsed collectd JSON message (an array of value lists, or one).

    Each bad value list is reported on its own, with its position in the array.

    >>> d = decode_collectd([{"values": [0.5, 0.4, 0.3], "dstypes": ["gauge"] * 3,
    ...     "dsnames": ["shortterm", "midterm", "longterm"], "time": 1700000000.0,
    ...     "interval": 10.0, "host": "db1", "plugin": "load", "plugin_instance": "",
    ...     "type": "load", "type_instance": ""}],
    ...     mapping=CollectdMapping(), state=None, rate_suffix="_rate")
    >>> [(e.service, e.metric, e.value) for e in d.events]
    [('db1', 'load_shortterm', 0.5), ('db1', 'load_midterm', 0.4), ('db1', 'load_longterm', 0.3)]
    """
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise fail(FORMAT, "", Reason.EMPTY, "the message is an empty array")
    out: Decoded[MetricEvent] = Decoded()
    for index, item in enumerate(items):
        events: list[MetricEvent] = []
        try:
            _value_list(item, mapping=mapping, state=state, rate_suffix=rate_suffix, out=events)
        except DecodeError as exc:
            where = f"[{index}]"
            if isinstance(item, dict):
                where += f" ({_identity(item)})"
            add_error(out, index, fail(FORMAT, where, exc.reason, exc.detail), dumps(item))
            continue
        out.events.extend(events)
    return out
