"""OTLP protobuf (``encoding: otlp_proto``, the Collector Kafka exporter's default).

``collector_otlp_proto_*.bin`` were written by ``fixtures/otlpgen/main.go`` with
``pmetric.ProtoMarshaler`` / ``plog.ProtoMarshaler`` of go.opentelemetry.io/collector/pdata
v1.71.0 from the same data as ``collector_otlp_json_*.json``. The other requests are built
with the generated classes of ``opentelemetry-proto``, each next to its OTLP/JSON twin:
both encodings must give the same events.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ingest.exceptions import DecodeError, Reason
from ingest.formats.cumulative import CumulativeState
from ingest.formats.otlp_proto import parse_request
from ingest.logs import LogIngestConfig, decode_log_message
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
AUTO = MetricIngestConfig()
T0 = 1_700_000_000 * 10**9
T1 = T0 + 10 * 10**9
START = T0 - 1_000 * 10**9
CUMULATIVE = 2
DELTA = 1


def decode(payload: bytes, config: MetricIngestConfig = AUTO, state=None):
    return decode_metric_message(payload, config=config, max_bytes=1 << 20, state=state)


def decode_logs(payload: bytes):
    return decode_log_message(
        payload, config=LogIngestConfig(), max_bytes=1 << 20, received_at=T0 / 1e9
    )


def errors(decoded, fmt: str):
    """Index, reason and detail of each error, the detail without its format prefix."""
    out = []
    for err in decoded.errors:
        assert err.error.detail.startswith(f"{fmt}: "), err.error.detail
        out.append((err.index, err.error.reason, err.error.detail.removeprefix(f"{fmt}: ")))
    return out


def kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def json_kv(key: str, **value) -> dict:
    return {"key": key, "value": value}


def proto_metrics(*metrics: Metric, service: str = "checkout") -> bytes:
    resource = Resource(attributes=[kv("service.name", string_value=service)])
    scope = ScopeMetrics(metrics=list(metrics))
    rm = ResourceMetrics(resource=resource, scope_metrics=[scope])
    return ExportMetricsServiceRequest(resource_metrics=[rm]).SerializeToString()


def json_metrics(*metrics: dict, service: str = "checkout") -> bytes:
    resource = {"attributes": [json_kv("service.name", stringValue=service)]}
    scope = {"metrics": list(metrics)}
    return orjson.dumps({"resourceMetrics": [{"resource": resource, "scopeMetrics": [scope]}]})


ATTRIBUTES = [
    kv("queue", string_value="orders"),
    kv("partition", int_value=3),
    kv("durable", bool_value=True),
    kv("fill", double_value=0.5),
    kv("tags", array_value={"values": [AnyValue(string_value="a"), AnyValue(int_value=2)]}),
]
JSON_ATTRIBUTES = [
    json_kv("queue", stringValue="orders"),
    json_kv("partition", intValue="3"),
    json_kv("durable", boolValue=True),
    json_kv("fill", doubleValue=0.5),
    json_kv("tags", arrayValue={"values": [{"stringValue": "a"}, {"intValue": "2"}]}),
]


def gauge(t: int) -> tuple[Metric, dict]:
    points = [
        NumberDataPoint(time_unix_nano=t, as_int=7, attributes=ATTRIBUTES),
        NumberDataPoint(time_unix_nano=t, as_double=0.0, attributes=ATTRIBUTES[:1]),
        NumberDataPoint(time_unix_nano=t, as_double=-2.5, flags=1),  # no recorded value
    ]
    json_points = [
        {"timeUnixNano": str(t), "asInt": "7", "attributes": JSON_ATTRIBUTES},
        {"timeUnixNano": str(t), "asDouble": 0, "attributes": JSON_ATTRIBUTES[:1]},
        {"timeUnixNano": str(t), "asDouble": -2.5, "flags": 1},
    ]
    return (
        Metric(name="queue.depth", gauge=Gauge(data_points=points)),
        {"name": "queue.depth", "gauge": {"dataPoints": json_points}},
    )


def counter(t: int, value: int) -> tuple[Metric, dict]:
    point = NumberDataPoint(
        start_time_unix_nano=START, time_unix_nano=t, as_int=value, attributes=ATTRIBUTES[:2]
    )
    json_point = {
        "startTimeUnixNano": str(START),
        "timeUnixNano": str(t),
        "asInt": str(value),
        "attributes": JSON_ATTRIBUTES[:2],
    }
    return (
        Metric(
            name="http.server.requests",
            sum=Sum(data_points=[point], aggregation_temporality=CUMULATIVE, is_monotonic=True),
        ),
        {
            "name": "http.server.requests",
            "sum": {
                "dataPoints": [json_point],
                "aggregationTemporality": CUMULATIVE,
                "isMonotonic": True,
            },
        },
    )


def delta_counter(t: int) -> tuple[Metric, dict]:
    point = NumberDataPoint(start_time_unix_nano=t - 5 * 10**9, time_unix_nano=t, as_double=30.0)
    return (
        Metric(
            name="bytes.sent",
            sum=Sum(data_points=[point], aggregation_temporality=DELTA, is_monotonic=True),
        ),
        {
            "name": "bytes.sent",
            "sum": {
                "dataPoints": [
                    {
                        "startTimeUnixNano": str(t - 5 * 10**9),
                        "timeUnixNano": str(t),
                        "asDouble": 30.0,
                    }
                ],
                "aggregationTemporality": DELTA,
                "isMonotonic": True,
            },
        },
    )


def histogram(t: int, counts: list[int], total: float) -> tuple[Metric, dict]:
    point = HistogramDataPoint(
        start_time_unix_nano=START,
        time_unix_nano=t,
        count=sum(counts),
        sum=total,
        bucket_counts=counts,
        explicit_bounds=[10.0, 50.0, 100.0, 250.0],
        min=2.0,
        max=900.0,
        attributes=ATTRIBUTES[:1],
    )
    json_point = {
        "startTimeUnixNano": str(START),
        "timeUnixNano": str(t),
        "count": str(sum(counts)),
        "sum": total,
        "bucketCounts": [str(c) for c in counts],
        "explicitBounds": [10.0, 50.0, 100.0, 250.0],
        "min": 2.0,
        "max": 900.0,
        "attributes": JSON_ATTRIBUTES[:1],
    }
    return (
        Metric(
            name="http.server.duration",
            histogram=Histogram(data_points=[point], aggregation_temporality=CUMULATIVE),
        ),
        {
            "name": "http.server.duration",
            "histogram": {"dataPoints": [json_point], "aggregationTemporality": CUMULATIVE},
        },
    )


def summary(t: int, count: int, total: float) -> tuple[Metric, dict]:
    quantiles = [(0.0, 0.001), (0.5, 0.02), (0.99, 0.25)]
    point = SummaryDataPoint(
        start_time_unix_nano=START,
        time_unix_nano=t,
        count=count,
        sum=total,
        quantile_values=[{"quantile": q, "value": v} for q, v in quantiles],
    )
    json_point = {
        "startTimeUnixNano": str(START),
        "timeUnixNano": str(t),
        "count": str(count),
        "sum": total,
        # a quantile of 0 is a default value, left out as the Collector leaves it out
        "quantileValues": [({"quantile": q} if q else {}) | {"value": v} for q, v in quantiles],
    }
    return (
        Metric(name="jvm.gc.pause", summary=Summary(data_points=[point])),
        {"name": "jvm.gc.pause", "summary": {"dataPoints": [json_point]}},
    )


def both(*pairs: tuple[Metric, dict]) -> tuple[bytes, bytes]:
    return proto_metrics(*(p for p, _ in pairs)), json_metrics(*(j for _, j in pairs))


def test_every_metric_type_gives_what_its_otlp_json_twin_gives():
    exports = [
        both(
            gauge(T0), counter(T0, 1000), delta_counter(T0), histogram(T0, [1, 5, 3, 1, 0], 480.0)
        ),
        both(summary(T0, 10, 0.5)),
        both(gauge(T1), counter(T1, 1250), histogram(T1, [1, 5, 3, 1, 100], 25480.0)),
        both(summary(T1, 20, 0.75)),
    ]
    proto_state, json_state = CumulativeState(), CumulativeState()
    seen = set()
    for proto, as_json in exports:
        ours = decode(proto, state=proto_state)
        theirs = decode(as_json, state=json_state)
        assert ours.events == theirs.events
        assert ours.errors == theirs.errors == []
        seen.update(e.metric for e in ours.events)
    assert {
        "queue.depth",
        "http.server.requests_rate",
        "bytes.sent_rate",
        "http.server.duration_count_rate",
        "http.server.duration_p99",
        "jvm.gc.pause_p50",
        "jvm.gc.pause_sum_rate",
    } <= seen
    depth = decode(exports[0][0], state=CumulativeState()).events[0]
    assert (depth.service, depth.metric, depth.value, depth.timestamp) == (
        "checkout",
        "queue.depth",
        7.0,
        1700000000.0,
    )
    assert dict(depth.labels) == {
        "durable": "true",
        "fill": "0.5",
        "partition": "3",
        "queue": "orders",
        "tags": '["a",2]',
    }


def test_collector_proto_exports_give_what_its_json_exports_give():
    proto_state, json_state = CumulativeState(), CumulativeState()
    for t in ("t0", "t1"):
        proto = (FIXTURES / f"collector_otlp_proto_metrics_{t}.bin").read_bytes()
        as_json = (FIXTURES / f"collector_otlp_json_metrics_{t}.json").read_bytes()
        ours = decode(proto, state=proto_state)
        theirs = decode(as_json, state=json_state)
        assert ours.errors == theirs.errors == []
        assert ours.events == theirs.events
    values = {e.metric: e.value for e in ours.events}
    assert values["http.server.requests_rate"] == pytest.approx(25.0)
    assert values["rpc.server.duration_p50"] == pytest.approx(6.0)  # exponential histogram
    assert values["process.cpu.utilization"] == 0.0


def test_explicit_format_skips_recognition():
    proto = (FIXTURES / "collector_otlp_proto_metrics_t0.bin").read_bytes()
    fixed = MetricIngestConfig(format="otlp_proto")
    assert (
        decode(proto, fixed, CumulativeState()).events
        == decode(proto, AUTO, CumulativeState()).events
    )
    with pytest.raises(DecodeError) as info:
        decode(b"", fixed)
    assert str(info.value) == "empty: otlp_proto: message is empty"
    # the Collector's default encoding on a topic set to OTLP/JSON says what to change
    with pytest.raises(DecodeError) as info:
        decode(proto, MetricIngestConfig(format="otlp"))
    assert info.value.reason is Reason.UNKNOWN_FORMAT
    assert info.value.detail.endswith("set format otlp_proto or auto")
    with pytest.raises(DecodeError) as info:
        decode(b'{"resourceMetrics": []}', fixed)
    assert info.value.reason is Reason.INVALID_VALUE
    assert info.value.detail.startswith(
        "otlp_proto: cannot parse as an ExportMetricsServiceRequest"
    )


def test_bad_metrics_are_dead_lettered_one_by_one_and_the_rest_kept():
    good, json_good = gauge(T0)
    pairs = [
        (good, json_good),
        (Metric(name="no.data"), {"name": "no.data"}),
        (Metric(gauge=good.gauge), {"gauge": json_good["gauge"]}),
        (
            Metric(name="no.time", gauge=Gauge(data_points=[NumberDataPoint(as_int=1)])),
            {"name": "no.time", "gauge": {"dataPoints": [{"asInt": "1"}]}},
        ),
        (
            Metric(
                name="infinite",
                gauge=Gauge(data_points=[{"time_unix_nano": T0, "as_double": float("inf")}]),
            ),
            {
                "name": "infinite",
                "gauge": {"dataPoints": [{"timeUnixNano": str(T0), "asDouble": "Infinity"}]},
            },
        ),
    ]
    proto, as_json = both(*pairs)
    ours, theirs = decode(proto), decode(as_json)
    assert ours.events == theirs.events and len(ours.events) == 2
    assert errors(ours, "otlp_proto") == errors(theirs, "otlp")
    assert [(e.index, e.error.reason) for e in ours.errors] == [
        (1, Reason.MISSING_FIELD),
        (2, Reason.MISSING_FIELD),
        (3, Reason.MISSING_FIELD),
        (4, Reason.INVALID_VALUE),
    ]
    assert ours.errors[0].error.detail == (
        "otlp_proto: resourceMetrics[0].scopeMetrics[0].metrics[1] (no.data): has no data "
        "(none of gauge, sum, histogram, exponentialHistogram, summary)"
    )
    # the dead letter holds the element in its OTLP/JSON shape, readable as the JSON one
    assert orjson.loads(ours.errors[0].raw) == {"name": "no.data"}


def log_records() -> tuple[list[LogRecord], list[dict]]:
    trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
    span_id = bytes.fromhex("eee19b7ec3c1b174")
    records = [
        LogRecord(
            time_unix_nano=1700000000123000000,
            observed_time_unix_nano=1700000000124000000,
            severity_number=17,
            severity_text="ERROR",
            body=AnyValue(string_value="card authorisation failed: gateway timeout"),
            attributes=[kv("order.id", string_value="A-1001"), kv("retry", int_value=2)],
            trace_id=trace_id,
            span_id=span_id,
        ),
        LogRecord(
            observed_time_unix_nano=1700000001000000000,
            severity_number=9,
            body=AnyValue(
                kvlist_value=KeyValueList(
                    values=[kv("event", string_value="refund"), kv("amount", double_value=12.5)]
                )
            ),
        ),
        LogRecord(
            time_unix_nano=1700000002000000000,
            severity_text="warn",
            body=AnyValue(bytes_value=b"\x00\x01raw"),
            attributes=[kv("service.name", string_value="ignored-resource-wins")],
        ),
        LogRecord(severity_number=5, body=AnyValue(string_value="no time at all")),
    ]
    json_records = [
        {
            "timeUnixNano": "1700000000123000000",
            "observedTimeUnixNano": "1700000000124000000",
            "severityNumber": 17,
            "severityText": "ERROR",
            "body": {"stringValue": "card authorisation failed: gateway timeout"},
            "attributes": [
                json_kv("order.id", stringValue="A-1001"),
                json_kv("retry", intValue="2"),
            ],
            "traceId": trace_id.hex(),
            "spanId": span_id.hex(),
        },
        {
            "observedTimeUnixNano": "1700000001000000000",
            "severityNumber": 9,
            "body": {
                "kvlistValue": {
                    "values": [
                        json_kv("event", stringValue="refund"),
                        json_kv("amount", doubleValue=12.5),
                    ]
                }
            },
        },
        {
            "timeUnixNano": "1700000002000000000",
            "severityText": "warn",
            "body": {"bytesValue": "AAFyYXc="},
            "attributes": [json_kv("service.name", stringValue="ignored-resource-wins")],
        },
        {"severityNumber": 5, "body": {"stringValue": "no time at all"}},
    ]
    return records, json_records


def test_logs_give_what_their_otlp_json_twin_gives():
    records, json_records = log_records()
    resource = Resource(
        attributes=[kv("service.name", string_value="payment"), kv("host.name", string_value="p-1")]
    )
    proto = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    ).SerializeToString()
    json_resource = {
        "attributes": [
            json_kv("service.name", stringValue="payment"),
            json_kv("host.name", stringValue="p-1"),
        ]
    }
    as_json = orjson.dumps(
        {"resourceLogs": [{"resource": json_resource, "scopeLogs": [{"logRecords": json_records}]}]}
    )
    ours, theirs = decode_logs(proto), decode_logs(as_json)
    assert ours.events == theirs.events and len(ours.events) == 3
    assert errors(ours, "otlp_proto") == errors(theirs, "otlp")
    [missing] = ours.errors
    assert (missing.index, missing.error.reason) == (3, Reason.MISSING_FIELD)
    declined, refund, raw = ours.events
    assert (declined.service, declined.host, declined.level) == ("payment", "p-1", "error")
    attributes = dict(declined.attributes)
    assert attributes["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert attributes["span_id"] == "eee19b7ec3c1b174"
    assert attributes["retry"] == "2"
    assert orjson.loads(refund.message) == {"event": "refund", "amount": 12.5}
    assert (refund.level, refund.timestamp) == ("info", 1700000001.0)
    assert (raw.level, raw.message) == ("warning", "AAFyYXc=")


def test_collector_proto_logs_give_what_its_json_logs_give():
    proto = decode_logs((FIXTURES / "collector_otlp_proto_logs.bin").read_bytes())
    as_json = decode_logs((FIXTURES / "collector_otlp_json_logs.json").read_bytes())
    assert proto.errors == as_json.errors == []
    assert proto.events == as_json.events and len(proto.events) == 2


def test_corrupt_protobuf_is_a_dead_letter_with_its_reason():
    proto = (FIXTURES / "collector_otlp_proto_metrics_t0.bin").read_bytes()
    logs = (FIXTURES / "collector_otlp_proto_logs.bin").read_bytes()
    for cut in (proto[:-7], proto[: len(proto) // 2], proto[:3] + b"\xff" * 8):
        with pytest.raises(DecodeError) as info:
            decode(cut)
        assert info.value.reason is Reason.INVALID_VALUE
        assert info.value.detail.startswith(
            "otlp_proto: cannot parse as an ExportMetricsServiceRequest: "
        )
    with pytest.raises(DecodeError) as info:
        decode_logs(logs[:-4])
    assert info.value.reason is Reason.INVALID_VALUE
    assert info.value.detail.startswith("otlp_proto: cannot parse as an ExportLogsServiceRequest")


def test_a_request_of_the_other_signal_is_named():
    metrics = (FIXTURES / "collector_otlp_proto_metrics_t0.bin").read_bytes()
    logs = (FIXTURES / "collector_otlp_proto_logs.bin").read_bytes()
    with pytest.raises(DecodeError) as info:
        decode(logs)
    assert str(info.value) == (
        "unknown_format: otlp_proto: an ExportLogsServiceRequest on a metrics topic"
    )
    with pytest.raises(DecodeError) as info:
        decode_logs(metrics)
    assert str(info.value) == (
        "unknown_format: otlp_proto: an ExportMetricsServiceRequest on a logs topic"
    )


def test_binary_that_parses_to_nothing_sensible_is_unknown():
    # field 2 of the request does not exist: parsing keeps it as an unknown field
    with pytest.raises(DecodeError) as info:
        decode(b"\n\x00\x12\x03abc")
    assert info.value.reason is Reason.UNKNOWN_FORMAT
    assert "no ExportMetricsServiceRequest" in info.value.detail
    # one empty resource entry is a request without a metric
    with pytest.raises(DecodeError) as info:
        decode(b"\n\x00")
    assert str(info.value) == "empty: otlp_proto: the request has no metric"
    with pytest.raises(DecodeError) as info:
        decode_logs(b"\n\x00")
    assert str(info.value) == "empty: otlp_proto: the request has no log record"


def test_random_binary_is_a_dead_letter():
    rng = random.Random(7)
    taken_for_protobuf = 0
    for _ in range(200):
        blob = rng.randbytes(rng.randint(16, 400))  # long enough not to be text
        for lead in (b"", b"\n"):
            for decoder in (decode, decode_logs):
                with pytest.raises(DecodeError) as info:
                    decoder(lead + blob)
                if info.value.detail.startswith("otlp_proto: "):
                    assert info.value.reason in (Reason.UNKNOWN_FORMAT, Reason.INVALID_VALUE)
                    taken_for_protobuf += 1
    assert taken_for_protobuf > 200  # most of those that start with 0x0a
    with pytest.raises(DecodeError) as info:
        decode(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert info.value.reason is Reason.UNKNOWN_FORMAT
    assert "an OTLP protobuf request starts with byte 0x0a" in info.value.detail


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_requests_decode_or_fail_with_a_reason(data):
    name = data.draw(
        st.sampled_from(
            [
                "collector_otlp_proto_metrics_t0.bin",
                "collector_otlp_proto_metrics_t1.bin",
                "collector_otlp_proto_logs.bin",
            ]
        )
    )
    payload = bytearray((FIXTURES / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(payload) - 1))
        payload[at] = data.draw(st.integers(0, 255))
    for decoder in (decode, decode_logs):
        try:
            decoded = decoder(bytes(payload))
        except DecodeError as exc:
            assert isinstance(exc.reason, Reason)
            continue
        for err in decoded.errors:
            assert isinstance(err.error.reason, Reason)


def same_as_json(ours, theirs) -> bool:
    """Whether a walked request equals its OTLP/JSON text, 64-bit integers as strings there."""
    if isinstance(ours, dict):
        return (
            isinstance(theirs, dict)
            and ours.keys() == theirs.keys()
            and all(same_as_json(ours[k], theirs[k]) for k in ours)
        )
    if isinstance(ours, list):
        return (
            isinstance(theirs, list)
            and len(ours) == len(theirs)
            and all(same_as_json(a, b) for a, b in zip(ours, theirs, strict=True))
        )
    if isinstance(ours, int) and not isinstance(ours, bool) and isinstance(theirs, str):
        return str(ours) == theirs
    if isinstance(ours, float):  # JSON writes a double of 0 as 0
        return isinstance(theirs, int | float) and ours == theirs
    return type(ours) is type(theirs) and ours == theirs


@pytest.mark.parametrize(
    ("proto", "as_json", "signal"),
    [
        ("collector_otlp_proto_metrics_t0.bin", "collector_otlp_json_metrics_t0.json", "metrics"),
        ("collector_otlp_proto_metrics_t1.bin", "collector_otlp_json_metrics_t1.json", "metrics"),
        ("collector_otlp_proto_logs.bin", "collector_otlp_json_logs.json", "logs"),
    ],
)
def test_the_walk_gives_what_the_collector_writes_as_otlp_json(proto, as_json, signal):
    ours = parse_request((FIXTURES / proto).read_bytes(), signal)
    theirs = orjson.loads((FIXTURES / as_json).read_bytes())
    assert same_as_json(ours, theirs), (ours, theirs)
