"""Structured log records: OTLP/JSON logs, Fluent Bit and Vector JSON.

Fixtures: ``otlp_logs.json`` follows opentelemetry-proto ``logs.proto`` and
``examples/logs.json``; ``fluentbit_kafka.jsonl`` the Fluent Bit Kafka output
(``timestamp_key @timestamp``, ``timestamp_format double``) over records of the ``tail``
input and ``kubernetes`` filter (docs.fluentbit.io); ``vector_kafka.jsonl`` the fields
of Vector's ``kubernetes_logs`` and ``syslog`` sources (vector.dev reference).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ingest.exceptions import DecodeError, Reason
from ingest.formats.structured_logs import (
    AgentLogMapping,
    StructuredLogConfig,
    decode_structured_logs,
    fluentbit_mapping,
)

FIXTURES = Path(__file__).parent / "fixtures"


def lines(name: str) -> list[object]:
    return [orjson.loads(line) for line in (FIXTURES / name).read_bytes().splitlines()]


def test_otlp_logs():
    decoded = decode_structured_logs(orjson.loads((FIXTURES / "otlp_logs.json").read_bytes()))
    assert decoded is not None
    error_log, refund = decoded.events
    assert (error_log.service, error_log.host, error_log.level) == (
        "payment",
        "payment-6c5d",
        "error",
    )
    assert error_log.message == "card authorisation failed: gateway timeout"
    assert error_log.timestamp == pytest.approx(1700000000.123)
    attrs = dict(error_log.attributes)
    assert attrs["order.id"] == "A-1001" and attrs["retry"] == "2"
    assert attrs["trace_id"] == "5b8efff798038103d269b633813fc60c"
    # no timeUnixNano: the observed time; a structured body is kept as JSON
    assert refund.timestamp == 1700000001.0
    assert refund.level == "info"
    assert orjson.loads(refund.message) == {"event": "refund", "amount": 12.5}
    [error] = decoded.errors
    assert error.index == 2
    assert error.error.reason is Reason.MISSING_FIELD
    assert error.error.detail.startswith(
        "otlp: resourceLogs[0].scopeLogs[0].logRecords[2]: the record has neither"
    )


def test_fluentbit_records():
    results = [decode_structured_logs(record) for record in lines("fluentbit_kafka.jsonl")]
    assert all(result is not None for result in results)
    cart, front, orders, broken = results
    event = cart.events[0]
    assert (event.service, event.host, event.timestamp) == ("cart", "node-2", 1700000000.123456)
    assert event.message == "2023-11-14T22:13:20.123Z ERROR [cart] checkout failed: redis timeout"
    assert dict(event.attributes) == {
        "k8s.container": "cart",
        "k8s.namespace": "shop",
        "k8s.pod": "cart-5d8f7c9b4-x2x9q",
        "stream": "stderr",
    }
    assert front.events[0].service == "front-end"  # the 'app' label
    assert orders.events[0].service == "orders"  # no labels: the container name
    assert orders.events[0].level == "warning"
    assert broken is not None and broken.events == []
    assert broken.errors[0].error.detail.startswith(
        "fluentbit: record: the record has none of the fields log, message"
    )


def test_vector_records():
    catalogue, sshd, no_time = (decode_structured_logs(r) for r in lines("vector_kafka.jsonl"))
    event = catalogue.events[0]
    assert (event.service, event.host) == ("catalogue", "node-1")
    assert event.timestamp == pytest.approx(1699999999.452332 + 1.0)
    assert dict(event.attributes)["source_type"] == "kubernetes_logs"
    ssh = sshd.events[0]
    assert (ssh.service, ssh.host, ssh.level) == ("sshd", "bastion-1", "warning")
    assert no_time.errors[0].error.reason is Reason.MISSING_FIELD
    assert no_time.errors[0].error.detail.startswith("vector: record: ")


def test_other_json_is_left_to_the_contract():
    contract = {"timestamp": 1700000000, "service": "api", "message": "hello", "level": "info"}
    assert decode_structured_logs(contract) is None
    assert decode_structured_logs([contract]) is None
    assert decode_structured_logs("a line") is None
    assert decode_structured_logs({"resourceMetrics": []}) is None
    with_extra = {**contract, "kubernetes": {"pod_name": "api-0"}}
    assert decode_structured_logs(with_extra) is None


def test_arrays_of_records_keep_the_good_ones():
    good, bad = lines("fluentbit_kafka.jsonl")[1], lines("fluentbit_kafka.jsonl")[3]
    decoded = decode_structured_logs([good, bad])
    assert len(decoded.events) == 1
    assert decoded.errors[0].index == 1
    assert decoded.errors[0].error.detail.startswith("fluentbit: [1]: ")


def test_numeric_syslog_priority_and_custom_paths():
    mapping = fluentbit_mapping().model_copy(
        update={"service": (("SYSLOG_IDENTIFIER",),), "default_service": "journal"}
    )
    config = StructuredLogConfig(fluentbit=AgentLogMapping.model_validate(mapping.model_dump()))
    record = {
        "@timestamp": 1700000000.0,
        "MESSAGE": "disk full",
        "PRIORITY": "2",
        "SYSLOG_IDENTIFIER": "kernel",
        "log": "disk full",
    }
    event = decode_structured_logs(record, config=config).events[0]
    assert (event.service, event.level) == ("kernel", "critical")


def test_otlp_request_without_records_is_unusable():
    with pytest.raises(DecodeError) as info:
        decode_structured_logs({"resourceLogs": [{"scopeLogs": []}]})
    assert info.value.reason is Reason.EMPTY


def test_numeric_levels_of_json_loggers():
    record = {"@timestamp": 1700000000.0, "log": "boom", "level": 50}
    assert decode_structured_logs(record).events[0].level == "error"
    record["level"] = 99
    assert decode_structured_logs(record).events[0].level is None
