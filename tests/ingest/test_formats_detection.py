"""Per-message format detection on ``telemetry.metrics`` and the contract fast path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.contract import decode_metrics
from ingest.exceptions import DecodeError, Reason
from ingest.formats.cumulative import CumulativeState
from ingest.metrics import MetricIngestConfig, decode_metric_message, detect_text_format

FIXTURES = Path(__file__).parent / "fixtures"
AUTO = MetricIngestConfig()


def decode(payload: bytes, config: MetricIngestConfig = AUTO):
    return decode_metric_message(payload, config=config, max_bytes=1 << 20, state=CumulativeState())


@pytest.mark.parametrize(
    ("fixture", "expected_metric"),
    [
        ("telegraf.influx", "cpu_usage_idle"),
        ("otlp_metrics_t0.json", "process.memory.usage"),
        ("collectd_write_kafka.json", "cpu_percent"),
        ("graphite.txt", "collectd.db-1.cpu-0.percent-idle"),
    ],
)
def test_each_fixture_is_recognised(fixture, expected_metric):
    decoded = decode((FIXTURES / fixture).read_bytes())
    assert expected_metric in {e.metric for e in decoded.events}


def test_prometheus_adapter_is_recognised():
    message = (FIXTURES / "prometheus_kafka_adapter.jsonl").read_bytes().splitlines()[0]
    assert decode(message).events[0].metric == "up"


def test_contract_path_gives_exactly_what_decode_metrics_gives():
    payloads = [
        b'{"timestamp": 1700000000, "service": "api", "metric": "latency_ms", "value": 12.5}',
        b'[{"timestamp": 1700000000, "service": "api", "metric": "m", "value": 1},'
        b' {"timestamp": 1700000000, "service": "api", "metric": "m"}]',
        b'  \n{"timestamp": 1700000000, "service": "api", "metric": "m", "value": null}',
    ]
    for payload in payloads:
        ours, theirs = decode(payload), decode_metrics(payload)
        assert repr(ours.events) == repr(theirs.events)
        assert [(e.index, str(e.error)) for e in ours.errors] == [
            (e.index, str(e.error)) for e in theirs.errors
        ]
    # a contract message missing its metric is still judged by the contract
    with pytest.raises(DecodeError) as info:
        decode(b'{"timestamp": 1700000000, "service": "api", "value": 1}')
    assert info.value.reason is Reason.MISSING_FIELD


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b'{"foo": 1}', "keys [foo]"),
        (b'{"resourceLogs": []}', "resourceLogs"),
        (b"hello world", "neither InfluxDB line protocol"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "an OTLP protobuf request starts with byte 0x0a"),
        (b"\x8f\x03\x0a\xff\xfe", "binary"),
        (b"42", "neither"),
    ],
)
def test_unrecognised_messages(payload, words):
    with pytest.raises(DecodeError) as info:
        decode(payload)
    assert info.value.reason is Reason.UNKNOWN_FORMAT
    assert words in info.value.detail


def test_fixed_format_skips_detection_and_names_itself():
    decoded = decode(b"cpu.load 1.5 1700000000", MetricIngestConfig(format="influx"))
    assert decoded.errors[0].error.detail.startswith("influx: line 1: ")
    with pytest.raises(DecodeError) as info:
        decode(b'{"foo": 1}', MetricIngestConfig(format="otlp"))
    assert info.value.detail.startswith("otlp: ")


def test_size_limit_and_empty_message():
    with pytest.raises(DecodeError) as info:
        decode_metric_message(b"m f=1 1" * 100, config=AUTO, max_bytes=10)
    assert info.value.reason is Reason.OVERSIZED
    with pytest.raises(DecodeError) as info:
        decode(b"  \n ")
    assert info.value.reason is Reason.EMPTY


def test_text_detection():
    assert detect_text_format(b"# comment\nweather,city=x temp=1 1") == "influx"
    assert detect_text_format(b"a.b.c 1 1700000000") == "graphite"
    assert detect_text_format(b"a.b;env=prod 1 1700000000") == "graphite"
