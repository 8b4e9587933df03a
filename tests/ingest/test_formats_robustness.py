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

FORMATS = ["auto", "otlp", "otlp_proto", "influx", "collectd", "prometheus", "graphite"]
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


# Structure-aware inputs: the right skeleton of each format with odd leaves, so that the
# deep paths (data points, buckets, quantiles, value lists, records) are reached.
leaf = st.one_of(
    scalars,
    st.sampled_from(["1700000000000000000", "1699999990000000000", "2", "Infinity", "-1"]),
    st.just([]),
    st.just({}),
    st.lists(st.one_of(st.integers(-5, 10), st.sampled_from(["3", "x"])), max_size=4),
)


def optional(**fields):
    return st.one_of(leaf, st.fixed_dictionaries({}, optional=fields))


key_value = st.one_of(
    leaf,
    st.fixed_dictionaries(
        {"key": st.sampled_from(["service.name", "host.name", "a"])},
        optional={
            "value": optional(
                stringValue=leaf,
                intValue=leaf,
                doubleValue=leaf,
                boolValue=leaf,
                arrayValue=leaf,
                kvlistValue=leaf,
            )
        },
    ),
)
attrs = st.one_of(leaf, st.lists(key_value, max_size=3))
point = st.fixed_dictionaries(
    {
        "timeUnixNano": st.one_of(
            st.sampled_from(["1700000000000000000", "1700000010000000000"]), leaf
        )
    },
    optional=dict(
        startTimeUnixNano=st.one_of(st.just("1699999990000000000"), leaf),
        asInt=leaf,
        asDouble=leaf,
        count=leaf,
        sum=leaf,
        bucketCounts=leaf,
        explicitBounds=leaf,
        min=leaf,
        max=leaf,
        flags=leaf,
        scale=leaf,
        zeroCount=leaf,
        attributes=attrs,
        positive=optional(offset=leaf, bucketCounts=leaf),
        negative=optional(offset=leaf, bucketCounts=leaf),
        quantileValues=st.lists(optional(quantile=leaf, value=leaf), max_size=3),
    ),
)
data = st.fixed_dictionaries(
    {"dataPoints": st.lists(point, min_size=1, max_size=3)},
    optional=dict(
        aggregationTemporality=st.one_of(
            st.sampled_from([1, 2, "AGGREGATION_TEMPORALITY_DELTA"]), leaf
        ),
        isMonotonic=st.one_of(st.just(True), leaf),
    ),
)
metric = st.sampled_from(["gauge", "sum", "histogram", "exponentialHistogram", "summary"]).flatmap(
    lambda kind: st.fixed_dictionaries({"name": st.just("m"), kind: data})
)
otlp_metrics = st.fixed_dictionaries(
    {
        "resourceMetrics": st.lists(
            st.fixed_dictionaries(
                {
                    "scopeMetrics": st.lists(
                        st.fixed_dictionaries(
                            {"metrics": st.lists(metric, min_size=1, max_size=3)}
                        ),
                        min_size=1,
                        max_size=2,
                    )
                },
                optional={"resource": st.fixed_dictionaries({"attributes": attrs})},
            ),
            min_size=1,
            max_size=2,
        )
    }
)
record = optional(
    timeUnixNano=leaf,
    observedTimeUnixNano=leaf,
    severityNumber=leaf,
    severityText=leaf,
    body=optional(stringValue=leaf, kvlistValue=leaf, arrayValue=leaf),
    attributes=attrs,
    traceId=leaf,
    spanId=leaf,
)
otlp_logs = st.fixed_dictionaries(
    {
        "resourceLogs": st.lists(
            st.fixed_dictionaries(
                {
                    "scopeLogs": st.lists(
                        st.fixed_dictionaries(
                            {"logRecords": st.lists(record, min_size=1, max_size=3)}
                        ),
                        min_size=1,
                        max_size=2,
                    )
                },
                optional={"resource": st.fixed_dictionaries({"attributes": attrs})},
            ),
            min_size=1,
            max_size=2,
        )
    }
)
value_list = st.fixed_dictionaries(
    {
        "plugin": st.sampled_from(["cpu", "interface", ""]),
        "type": st.sampled_from(["if_octets", "cpu"]),
        "time": st.one_of(st.sampled_from([1700000000.5, 1700000010.5]), leaf),
    },
    optional=dict(
        values=st.one_of(
            st.lists(st.one_of(st.integers(-5, 10**6), st.none(), st.floats()), max_size=3), leaf
        ),
        dstypes=st.one_of(
            leaf,
            st.lists(st.sampled_from(["gauge", "derive", "counter", "absolute", "x"]), max_size=3),
        ),
        dsnames=st.one_of(leaf, st.lists(st.sampled_from(["value", "rx", "tx"]), max_size=3)),
        interval=leaf,
        host=leaf,
        plugin_instance=leaf,
        type_instance=leaf,
        meta=leaf,
    ),
)
sample = st.fixed_dictionaries(
    {
        "name": leaf,
        "labels": st.one_of(
            leaf, st.dictionaries(st.sampled_from(["job", "instance", "__name__", "a"]), leaf)
        ),
        "value": leaf,
    },
    optional={"timestamp": st.one_of(leaf, st.just("2023-11-14T22:13:20Z"))},
)
agent_record = st.fixed_dictionaries(
    {"@timestamp": leaf},
    optional={
        "log": leaf,
        "message": leaf,
        "level": leaf,
        "kubernetes": optional(labels=leaf, host=leaf, container_name=leaf),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(otlp_metrics, min_size=2, max_size=2),
    st.lists(st.lists(value_list, min_size=1, max_size=3), min_size=2, max_size=2),
    st.lists(sample, min_size=2, max_size=2),
)
def test_format_skeletons_with_odd_leaves(requests, value_lists, samples):
    for payloads in (requests, value_lists, samples):
        state = CumulativeState()
        for value in payloads:  # twice through one state: first and next points
            try:
                payload = orjson.dumps(value)
            except (TypeError, orjson.JSONEncodeError):
                continue
            for fmt in ("auto", "otlp", "collectd", "prometheus"):
                try:
                    decoded = decode_metric_message(
                        payload,
                        config=MetricIngestConfig(format=fmt),
                        max_bytes=1 << 20,
                        state=state,
                    )
                except DecodeError:
                    continue
                for event in decoded.events:
                    assert not math.isinf(event.value)


@settings(max_examples=150, deadline=None)
@given(st.one_of(otlp_logs, agent_record, st.lists(agent_record, min_size=1, max_size=3)))
def test_log_skeletons_with_odd_leaves(value):
    try:
        decoded = decode_structured_logs(value)
    except DecodeError as exc:
        assert exc.detail.startswith("otlp: ")
        return
    assert decoded is not None
    for event in decoded.events:
        assert isinstance(event.message, str) and event.service
