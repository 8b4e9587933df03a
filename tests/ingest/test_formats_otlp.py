"""OTLP/JSON metrics as the OpenTelemetry Collector's Kafka exporter writes them
(``encoding: otlp_json``).

Fixtures ``otlp_metrics_t0.json`` / ``otlp_metrics_t1.json`` (two exports 10 s apart)
follow opentelemetry-proto's ``metrics.proto``, its ``examples/metrics.json`` and the
OTLP specification's JSON encoding (64-bit integers as strings, enums as integers).
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from ingest.exceptions import DecodeError, Reason
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import MetricMapping, OtlpMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
AUTO = MetricIngestConfig()


def decode(payload: bytes, config: MetricIngestConfig = AUTO, state=None):
    return decode_metric_message(payload, config=config, max_bytes=1 << 20, state=state)


def by_name(events):
    return {e.metric: e for e in events}


def request(metric: dict, service: str = "svc") -> bytes:
    return orjson.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeMetrics": [{"metrics": [metric]}],
                }
            ]
        }
    )


def test_two_collector_exports_give_gauges_rates_and_histogram_summaries():
    state = CumulativeState()
    first = decode((FIXTURES / "otlp_metrics_t0.json").read_bytes(), state=state)
    metrics = by_name(first.events)
    # cumulative series only prime the state on their first point
    assert set(metrics) == {"process.memory.usage", "db.client.connections.usage"}
    memory = metrics["process.memory.usage"]
    assert (memory.service, memory.host, memory.value, memory.timestamp) == (
        "checkout",
        "checkout-7d9f8",
        73400320.0,
        1700000000.0,
    )
    assert memory.labels == ()  # resource attributes are not labels by default
    assert metrics["db.client.connections.usage"].value == 7.0  # up-down counter: a gauge
    [error] = first.errors
    assert error.index == 5
    assert error.error.reason is Reason.MISSING_FIELD
    assert error.error.detail.startswith(
        "otlp: resourceMetrics[0].scopeMetrics[0].metrics[5] (broken.metric): has no data"
    )

    second = decode((FIXTURES / "otlp_metrics_t1.json").read_bytes(), state=state)
    assert second.errors == []
    metrics = by_name(second.events)
    requests = metrics["http.server.requests_rate"]
    assert requests.value == pytest.approx(25.0)  # (1250 - 1000) / 10 s
    assert requests.labels == (("http.response.status_code", "200"), ("http.route", "/cart"))
    assert metrics["http.server.duration_count_rate"].value == pytest.approx(10.0)
    assert metrics["http.server.duration_sum_rate"].value == pytest.approx(1000.0)
    # the 100 new observations all fell in the open bucket above 250 ms
    assert metrics["http.server.duration_p50"].value == 250.0
    assert metrics["rpc.server.duration_count_rate"].value == pytest.approx(0.4)
    # 4 new observations in (4, 8]: linear interpolation inside the bucket
    assert metrics["rpc.server.duration_p50"].value == pytest.approx(6.0)
    assert metrics["rpc.server.duration_p99"].value == pytest.approx(7.96)


def test_cumulative_without_state_is_reported_per_metric():
    decoded = decode((FIXTURES / "otlp_metrics_t0.json").read_bytes())
    failed = {err.index for err in decoded.errors}
    assert {0, 3, 4, 5} == failed  # sum, histogram, exponential histogram, broken
    assert "CumulativeState" in decoded.errors[0].error.detail
    assert {e.metric for e in decoded.events} == {
        "process.memory.usage",
        "db.client.connections.usage",
    }


def test_counter_reset_restarts_the_rate():
    state = CumulativeState()

    def point(t: int, value: str, start: str = "1699999000000000000") -> bytes:
        return request(
            {
                "name": "jobs",
                "sum": {
                    "aggregationTemporality": 2,
                    "isMonotonic": True,
                    "dataPoints": [
                        {
                            "startTimeUnixNano": start,
                            "timeUnixNano": str(t * 10**9),
                            "asInt": value,
                        }
                    ],
                },
            }
        )

    assert decode(point(1700000000, "100"), state=state).events == []
    assert decode(point(1700000010, "150"), state=state).events[0].value == 5.0
    # the process restarted: new start time, lower value
    assert decode(point(1700000020, "3", "1700000015000000000"), state=state).events == []
    assert (
        decode(point(1700000030, "23", "1700000015000000000"), state=state).events[0].value == 2.0
    )


def test_delta_sum_and_histogram_are_rates_over_their_own_interval():
    delta_sum = request(
        {
            "name": "bytes.sent",
            "sum": {
                "aggregationTemporality": 1,
                "isMonotonic": True,
                "dataPoints": [
                    {
                        "startTimeUnixNano": "1700000000000000000",
                        "timeUnixNano": "1700000004000000000",
                        "asDouble": 2048.0,
                    }
                ],
            },
        }
    )
    assert decode(delta_sum).events[0].value == 512.0
    histogram = request(
        {
            "name": "latency",
            "histogram": {
                "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                "dataPoints": [
                    {
                        "startTimeUnixNano": "1700000000000000000",
                        "timeUnixNano": "1700000010000000000",
                        "count": "10",
                        "sum": 150.0,
                        "bucketCounts": ["0", "10", "0"],
                        "explicitBounds": [10, 20],
                    }
                ],
            },
        }
    )
    metrics = by_name(decode(histogram).events)
    assert metrics["latency_count_rate"].value == 1.0
    assert metrics["latency_sum_rate"].value == 15.0
    assert metrics["latency_p50"].value == 15.0
    assert metrics["latency_p90"].value == pytest.approx(19.0)


def test_summary_quantiles_are_passed_through():
    summary = request(
        {
            "name": "gc.pause",
            "summary": {
                "dataPoints": [
                    {
                        "timeUnixNano": "1700000000000000000",
                        "count": "4",
                        "sum": 2.0,
                        "quantileValues": [{"value": 0.1}, {"quantile": 0.99, "value": 0.9}],
                    }
                ]
            },
        }
    )
    metrics = by_name(decode(summary, state=CumulativeState()).events)
    assert metrics["gc.pause_p0"].value == 0.1  # quantile 0 is left out of the JSON
    assert metrics["gc.pause_p99"].value == 0.9


def test_service_falls_back_to_the_sdk_default_and_attributes_may_name_it():
    metric = {
        "name": "g",
        "gauge": {
            "dataPoints": [
                {
                    "timeUnixNano": "1700000000000000000",
                    "asDouble": "NaN",
                    "attributes": [{"key": "host.name", "value": {"stringValue": "h9"}}],
                }
            ]
        },
    }
    payload = orjson.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]})
    [event] = decode(payload).events
    assert event.service == "unknown_service"
    assert event.host == "h9" and event.labels == ()
    assert math.isnan(event.value)


def test_resource_labels_are_copied_when_configured():
    config = MetricIngestConfig(
        mapping=MetricMapping(otlp=OtlpMapping(resource_labels=("deployment.environment",)))
    )
    decoded = decode((FIXTURES / "otlp_metrics_t0.json").read_bytes(), config, CumulativeState())
    memory = by_name(decoded.events)["process.memory.usage"]
    assert memory.labels == (("deployment.environment", "prod"),)


def test_bad_data_point_names_its_place_and_keeps_the_rest():
    payload = orjson.dumps(
        {
            "resourceMetrics": [
                {
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "ok",
                                    "gauge": {
                                        "dataPoints": [
                                            {"timeUnixNano": "1700000000000000000", "asInt": "1"}
                                        ]
                                    },
                                },
                                {"name": "no.time", "gauge": {"dataPoints": [{"asInt": "1"}]}},
                                {
                                    "name": "bad.int",
                                    "gauge": {
                                        "dataPoints": [
                                            {"timeUnixNano": "1700000000000000000", "asInt": "x"}
                                        ]
                                    },
                                },
                            ]
                        }
                    ]
                }
            ]
        }
    )
    decoded = decode(payload)
    assert [e.metric for e in decoded.events] == ["ok"]
    details = [err.error.detail for err in decoded.errors]
    assert details[0] == (
        "otlp: resourceMetrics[0].scopeMetrics[0].metrics[1] (no.time): "
        "missing field 'timeUnixNano'"
    )
    assert details[1].startswith("otlp: resourceMetrics[0].scopeMetrics[0].metrics[2] (bad.int)")
    assert [err.index for err in decoded.errors] == [1, 2]


def test_request_without_metrics_is_empty():
    with pytest.raises(DecodeError) as info:
        decode(b'{"resourceMetrics": []}')
    assert info.value.reason is Reason.EMPTY
    assert info.value.detail.startswith("otlp: ")
