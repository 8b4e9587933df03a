"""The JSON of prometheus-kafka-adapter (Prometheus ``remote_write`` to Kafka).

One sample per message::

    {"timestamp": "1970-01-01T00:00:00Z", "value": "9876543210", "name": "up",
     "labels": {"__name__": "up", "job": "federation", "instance": "h1:9100"}}

The value is a string (Go's ``FormatFloat``: ``NaN``, ``+Inf`` possible) and the
timestamp RFC 3339 with second precision. Counters (by name, see
:class:`~ingest.formats.mapping.PrometheusMapping`) become per-second rates.
"""

from __future__ import annotations

import math
from typing import Any

from detectors.events import MetricEvent
from ingest.contract import Decoded, parse_timestamp
from ingest.exceptions import DecodeError, Reason
from ingest.formats.common import add_error, counter_rate, dumps, fail
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import PrometheusMapping, matches_any, split_labels

FORMAT = "prometheus"


def looks_like_prometheus(obj: Any) -> bool:
    """Whether a parsed JSON object is a prometheus-kafka-adapter sample."""
    return isinstance(obj, dict) and "labels" in obj and "name" in obj and "value" in obj


def _sample(
    obj: Any,
    *,
    mapping: PrometheusMapping,
    state: CumulativeState | None,
    rate_suffix: str,
) -> MetricEvent | None:
    if not isinstance(obj, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "a sample must be a JSON object")
    labels_obj = obj.get("labels")
    if not isinstance(labels_obj, dict):
        raise DecodeError(Reason.WRONG_TYPE, "'labels' must be an object")
    name = obj.get("name") or labels_obj.get("__name__")
    if not isinstance(name, str) or not name:
        raise DecodeError(Reason.MISSING_FIELD, "the sample has no metric name")
    raw = obj.get("value")
    if isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise DecodeError(
                Reason.INVALID_VALUE, f"'{name}': value {raw[:32]!r} is not a number"
            ) from None
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    else:
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}': 'value' must be a numeric string")
    if math.isinf(value):
        raise DecodeError(Reason.INVALID_VALUE, f"'{name}': value must be finite, got {raw!r}")
    if "timestamp" not in obj:
        raise DecodeError(Reason.MISSING_FIELD, f"'{name}': missing field 'timestamp'")
    timestamp = parse_timestamp(obj["timestamp"])
    strings = {}
    for key, item in labels_obj.items():
        if not isinstance(item, str):
            raise DecodeError(Reason.WRONG_TYPE, f"'{name}': label '{key}' must be a string")
        if key != "__name__":
            strings[key] = item
    service, host, labels = split_labels(strings, mapping)
    if mapping.counters and not math.isnan(value) and matches_any(name, mapping.counters):
        rate = counter_rate(
            state,
            fmt=FORMAT,
            service=service,
            metric=name,
            host=host,
            labels=labels,
            timestamp=timestamp,
            value=value,
        )
        if rate is None:
            return None
        return MetricEvent(timestamp, service, name + rate_suffix, rate, host, labels)
    return MetricEvent(timestamp, service, name, value, host, labels)


def decode_prometheus(
    parsed: Any,
    *,
    mapping: PrometheusMapping,
    state: CumulativeState | None,
    rate_suffix: str,
) -> Decoded[MetricEvent]:
    """Decode a parsed prometheus-kafka-adapter message (one sample, or an array).

    >>> d = decode_prometheus({"timestamp": "2023-11-14T22:13:20Z", "value": "0.25",
    ...     "name": "queue_depth", "labels": {"__name__": "queue_depth", "job": "orders",
    ...     "instance": "10.0.0.5:9100", "queue": "emails"}},
    ...     mapping=PrometheusMapping(), state=None, rate_suffix="_rate")
    >>> e = d.events[0]
    >>> e.service, e.host, e.metric, e.value, e.labels, e.timestamp
    ('orders', '10.0.0.5:9100', 'queue_depth', 0.25, (('queue', 'emails'),), 1700000000.0)
    """
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise fail(FORMAT, "", Reason.EMPTY, "the message is an empty array")
    out: Decoded[MetricEvent] = Decoded()
    for index, item in enumerate(items):
        try:
            event = _sample(item, mapping=mapping, state=state, rate_suffix=rate_suffix)
        except DecodeError as exc:
            where = f"[{index}]" if isinstance(parsed, list) else ""
            add_error(out, index, fail(FORMAT, where, exc.reason, exc.detail), dumps(item))
            continue
        if event is not None:
            out.events.append(event)
    return out
