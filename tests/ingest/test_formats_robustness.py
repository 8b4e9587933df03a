"""No input crashes the decoders: every failure is a DecodeError (a dead letter)."""

from __future__ import annotations

import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.exceptions import DecodeError
from ingest.formats.cumulative import CumulativeState
from ingest.formats.structured_logs import decode_structured_logs
from ingest.metrics import MetricIngestConfig, decode_metric_message

FORMATS = ["auto", "otlp", "influx", "collectd", "prometheus", "graphite"]
KEYS = [
    "resourceMetrics",
    "scopeMetrics",
    "metrics",
    "name",
    "gauge",
    "sum",
    "histogram",
    "exponentialHistogram",
    "summary",
    "dataPoints",
    "timeUnixNano",
    "startTimeUnixNano",
    "asInt",
    "asDouble",
    "bucketCounts",
    "explicitBounds",
    "count",
    "positive",
    "offset",
    "aggregationTemporality",
    "isMonotonic",
    "attributes",
    "key",
    "value",
    "values",
    "dstypes",
    "dsnames",
    "time",
    "interval",
    "host",
    "plugin",
    "type",
    "labels",
    "timestamp",
    "resourceLogs",
    "scopeLogs",
    "logRecords",
    "body",
    "@timestamp",
    "log",
    "kubernetes",
    "source_type",
    "message",
    "meta",
    "quantileValues",
    "scale",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["gauge", "derive", "absolute", "1700000000000000000", "NaN", "x", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=30,
)
text_lines = st.lists(
    st.text(alphabet='abc.,;= \\"-1234567890ift#\n', max_size=40), max_size=5
).map(lambda lines: "\n".join(lines).encode())


def decode_or_dead_letter(payload: bytes, fmt: str) -> None:
    """Decode; whatever fails must be a DecodeError naming the fixed format."""
    config = MetricIngestConfig(format=fmt)  # type: ignore[arg-type]
    details = []
    try:
        decoded = decode_metric_message(
            payload, config=config, max_bytes=1 << 16, state=CumulativeState()
        )
    except DecodeError as exc:
        details.append(exc.detail)
    else:
        details.extend(err.error.detail for err in decoded.errors)
        for event in decoded.events:
            assert event.service and event.metric
            assert not math.isinf(event.value)
    if fmt != "auto":
        # the size and emptiness checks come before any format is chosen
        generic = ("message is empty", "message is an empty array")
        for detail in details:
            assert detail.startswith(f"{fmt}: ") or detail.startswith(generic), detail


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(FORMATS))
def test_any_json_is_decoded_or_rejected(value, fmt):
    try:
        payload = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return
    decode_or_dead_letter(payload, fmt)


@settings(max_examples=300, deadline=None)
@given(st.one_of(text_lines, st.binary(max_size=64)), st.sampled_from(FORMATS))
def test_any_text_is_decoded_or_rejected(payload, fmt):
    decode_or_dead_letter(payload, fmt)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_log_is_decoded_rejected_or_left(value):
    try:
        decoded = decode_structured_logs(value)
    except DecodeError as exc:
        assert exc.detail.startswith("otlp: ")
        return
    if decoded is not None:
        for err in decoded.errors:
            assert err.error.detail.startswith(("otlp: ", "vector: ", "fluentbit: "))
