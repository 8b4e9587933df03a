"""Limits on names: every format's events are screened the same way, and nothing is lost."""

from __future__ import annotations

import orjson
import pytest

from ingest.exceptions import Reason
from ingest.identity import MAX_LABEL_VALUE, MAX_LABELS, MAX_NAME
from ingest.logs import LogIngestConfig, decode_log_message
from ingest.metrics import MetricIngestConfig, decode_metric_message

TS = 1_764_151_200
HOSTILE_SERVICE = "pay\x00ments\n\u200f<script>"


def metrics(payload: bytes):
    return decode_metric_message(payload, config=MetricIngestConfig(), max_bytes=1 << 22)


def contract(**fields: object) -> bytes:
    event = {"timestamp": TS, "service": "checkout", "metric": "cpu", "value": 0.5}
    event.update(fields)
    return orjson.dumps(event)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"metric": "m" * 10_000}, "'metric' is 10000 characters long, the limit is 256"),
        ({"service": HOSTILE_SERVICE}, "'service' holds the control character U+0000"),
        ({"service": "pay\u200fments"}, "'service' holds the control character U+200F"),
        ({"host": "web\t1"}, "'host' holds the control character U+0009"),
        ({"labels": {"region": "e" * 2000}}, "'labels.region' is 2000 characters long"),
        ({"labels": {"k" * 300: "v"}}, "'labels name' is 300 characters long"),
        ({"labels": {f"l{i}": "v" for i in range(65)}}, "'labels' has 65 entries, the limit"),
    ],
)
def test_a_contract_event_that_breaks_a_limit_is_rejected_naming_field_and_limit(fields, named):
    decoded = metrics(contract(**fields))
    assert decoded.events == []
    [error] = decoded.errors
    assert error.error.reason is Reason.INVALID_VALUE
    assert named in error.error.detail
    assert error.index is None
    assert error.raw == contract(**fields)  # the dead letter keeps the original message


def test_names_at_the_limits_and_in_any_script_are_accepted():
    decoded = metrics(
        contract(
            service="s" * MAX_NAME,
            metric="latência_p99 (ms) ☃",
            host="Zürich-1",
            labels={f"l{i}": "v" * MAX_LABEL_VALUE for i in range(MAX_LABELS)},
        )
    )
    assert decoded.errors == []
    assert decoded.events[0].metric == "latência_p99 (ms) ☃"


def test_in_an_array_only_the_bad_event_goes_and_its_index_is_given():
    payload = orjson.dumps(
        [
            orjson.loads(contract()),
            orjson.loads(contract(service=HOSTILE_SERVICE)),
            orjson.loads(contract(metric="mem")),
        ]
    )
    decoded = metrics(payload)
    assert [e.metric for e in decoded.events] == ["cpu", "mem"]
    assert [e.index for e in decoded.errors] == [1]
    assert orjson.loads(decoded.errors[0].raw)["service"] == HOSTILE_SERVICE


@pytest.mark.parametrize(
    "payload",
    [
        b"cpu,host=" + b"h" * 300 + b" usage=1 1764151200000000000",  # influx
        b"servers." + b"x" * 300 + b".cpu 1.5 1764151200",  # graphite
    ],
)
def test_every_text_format_is_screened(payload):
    decoded = metrics(payload)
    assert decoded.events == []
    assert decoded.errors and decoded.errors[0].error.reason is Reason.INVALID_VALUE
    assert "the limit is 256" in decoded.errors[0].error.detail


def test_otlp_resource_service_name_is_screened():
    request = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": HOSTILE_SERVICE}}
                    ]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "cpu",
                                "gauge": {
                                    "dataPoints": [
                                        {"timeUnixNano": str(TS * 10**9), "asDouble": 0.5}
                                    ]
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    decoded = metrics(orjson.dumps(request))
    assert decoded.events == []
    assert "'service' holds the control character U+0000" in decoded.errors[0].error.detail


def logs(payload: bytes):
    return decode_log_message(
        payload, config=LogIngestConfig(), max_bytes=1 << 22, received_at=float(TS)
    )


def test_a_log_of_a_hostile_service_is_rejected_and_a_multiline_message_is_not():
    bad = logs(orjson.dumps({"timestamp": TS, "service": HOSTILE_SERVICE, "message": "x"}))
    assert bad.events == [] and bad.errors[0].error.reason is Reason.INVALID_VALUE
    good = logs(
        orjson.dumps(
            {
                "timestamp": TS,
                "service": "payments",
                "message": "Traceback:\n  File x\n\tline 3",
                "attributes": {"exception.stacktrace": "a\nb" * 1000},
            }
        )
    )
    assert good.errors == [] and good.events[0].message.startswith("Traceback:\n")
