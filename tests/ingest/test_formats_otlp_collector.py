"""OTLP/JSON written by the Collector's own marshalers.

``collector_otlp_json_*.json`` were produced by ``fixtures/otlpgen/main.go`` with
``pmetric.JSONMarshaler`` / ``plog.JSONMarshaler`` of go.opentelemetry.io/collector/pdata
v1.71.0, the marshalers the Collector's Kafka exporter uses for ``encoding: otlp_json``
(regenerate: ``cd tests/ingest/fixtures/otlpgen && go run .``).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ingest.formats.cumulative import CumulativeState
from ingest.formats.structured_logs import decode_structured_logs
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"


def decode(name: str, state: CumulativeState):
    payload = (FIXTURES / name).read_bytes()
    return decode_metric_message(
        payload, config=MetricIngestConfig(), max_bytes=1 << 20, state=state
    )


def test_two_exports_of_every_metric_type():
    state = CumulativeState()
    first = decode("collector_otlp_json_metrics_t0.json", state)
    assert first.errors == []
    values = {e.metric: e.value for e in first.events}
    # a double gauge of 0 is written as "asDouble":0 and must not be lost
    assert values["process.cpu.utilization"] == 0.0
    assert values["db.client.connections.usage"] == 10.0
    # the summary's own quantiles come at once; its count and sum need a second point
    assert values["jvm.gc.pause_p0"] == 0.001 and values["jvm.gc.pause_p99"] == 0.25
    assert not any(name.endswith("_rate") for name in values)

    second = decode("collector_otlp_json_metrics_t1.json", state)
    assert second.errors == []
    values = {e.metric: e.value for e in second.events}
    assert values["http.server.requests_rate"] == pytest.approx(25.0)
    assert values["http.server.duration_count_rate"] == pytest.approx(10.0)
    assert values["http.server.duration_sum_rate"] == pytest.approx(1000.0)
    assert values["http.server.duration_p99"] == 250.0
    assert values["rpc.server.duration_p50"] == pytest.approx(6.0)
    assert values["jvm.gc.pause_count_rate"] == pytest.approx(0.1)
    assert values["jvm.gc.pause_sum_rate"] == pytest.approx(0.1)
    services = {(e.service, e.host) for e in second.events}
    assert services == {("checkout", "checkout-7d9f8")}


def test_collector_logs():
    parsed = orjson.loads((FIXTURES / "collector_otlp_json_logs.json").read_bytes())
    decoded = decode_structured_logs(parsed)
    assert decoded is not None and decoded.errors == []
    error_log, refund = decoded.events
    assert (error_log.service, error_log.host, error_log.level) == (
        "payment",
        "payment-6c5d",
        "error",
    )
    assert dict(error_log.attributes)["span_id"] == "eee19b7ec3c1b174"
    assert refund.timestamp == 1700000001.0
    assert orjson.loads(refund.message) == {"event": "refund", "amount": 12.5}
