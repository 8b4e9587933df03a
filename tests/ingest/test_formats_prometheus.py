"""prometheus-kafka-adapter's JSON (``SERIALIZATION_FORMAT=json``), one sample per message.

Fixture ``prometheus_kafka_adapter.jsonl`` follows the adapter's README ("output") and
``serializers.go``: RFC 3339 timestamp with second precision, value formatted with
``strconv.FormatFloat(v, 'f', -1, 64)`` (so ``NaN`` can occur), ``name`` and ``labels``.
"""

from __future__ import annotations

import math
from pathlib import Path

from ingest.exceptions import Reason
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import MetricMapping, PrometheusMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
MESSAGES = (FIXTURES / "prometheus_kafka_adapter.jsonl").read_bytes().splitlines()


def decode_all(config: MetricIngestConfig | None = None):
    config = config or MetricIngestConfig()
    state = CumulativeState()
    events, errors = [], []
    for message in MESSAGES:
        decoded = decode_metric_message(message, config=config, max_bytes=1 << 20, state=state)
        events.extend(decoded.events)
        errors.extend(decoded.errors)
    return events, errors


def test_adapter_messages():
    events, errors = decode_all()
    metrics = {e.metric: e for e in events}
    up = metrics["up"]
    assert (up.service, up.host, up.value, up.labels, up.timestamp) == (
        "node",
        "10.0.0.5:9100",
        1.0,
        (),
        1700000000.0,
    )
    # a *_total counter: 300 more requests in 15 s
    rate = metrics["http_requests_total_rate"]
    assert rate.value == 20.0
    assert rate.service == "orders"
    assert rate.labels == (("code", "200"), ("handler", "/api/orders"))
    assert "http_requests_total" not in metrics
    assert metrics["node_memory_MemAvailable_bytes"].value == 6230437888.0
    assert math.isnan(metrics["go_gc_duration_seconds"].value)
    [error] = errors
    assert error.error.reason is Reason.INVALID_VALUE
    assert error.error.detail == "prometheus: 'broken_metric': value 'twelve' is not a number"


def test_counter_rules_and_label_mapping_are_configurable():
    config = MetricIngestConfig(
        format="prometheus",
        mapping=MetricMapping(
            prometheus=PrometheusMapping(service=("handler", "job"), counters=())
        ),
    )
    events, _ = decode_all(config)
    totals = [e for e in events if e.metric == "http_requests_total"]
    assert [e.value for e in totals] == [10500.0, 10800.0]
    assert totals[0].service == "/api/orders"
    assert totals[0].labels == (("code", "200"), ("job", "orders"))  # job unused: a label
