"""InfluxDB line protocol as Telegraf's Kafka output writes it.

Fixture ``fixtures/telegraf.influx`` follows the InfluxDB line protocol reference
(docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/: escaping, ``i``/``u``
integers, booleans, string fields) and Telegraf's input plugins' documented fields.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.exceptions import DecodeError, Reason
from ingest.formats.cumulative import CumulativeState
from ingest.formats.influx import _parse_escaped, _parse_unescaped
from ingest.formats.mapping import InfluxMapping, MetricMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
AUTO = MetricIngestConfig()


def decode(payload: bytes, config: MetricIngestConfig = AUTO, state=None):
    return decode_metric_message(payload, config=config, max_bytes=1 << 20, state=state)


def test_telegraf_batch_decodes_every_numeric_field():
    decoded = decode((FIXTURES / "telegraf.influx").read_bytes())
    assert decoded.errors == []
    by_metric = {e.metric: e for e in decoded.events}
    # string fields (uptime_format, result_type) are not samples
    assert len(decoded.events) == 18
    assert "system_uptime_format" not in by_metric
    idle = by_metric["cpu_usage_idle"]
    assert (idle.service, idle.host, idle.value, idle.timestamp) == (
        "unknown",
        "web-1",
        97.48,
        1700000000.0,
    )
    assert idle.labels == (("cpu", "cpu-total"),)
    assert by_metric["mem_total"].value == 8210239488.0
    assert by_metric["disk_inodes_used"].value == 81234.0
    assert dict(by_metric["disk_used_percent"].labels)["path"] == "/var lib"
    http = by_metric["http_response_response_time"]
    assert http.service == "checkout"  # the service tag
    assert "service" not in dict(http.labels) and "host" not in dict(http.labels)
    assert dict(http.labels)["server"] == "http://checkout:8080/health"
    assert by_metric["http_response_ok"].value == 1.0


def test_escaped_measurement_tags_and_quoted_strings():
    line = (
        b'my\\ app,region=eu\\,west,k\\=v=x latency=3i,note="a, b=c \\"q\\"",up=F '
        b"1700000000000000000"
    )
    decoded = decode(line)
    assert decoded.errors == []
    metrics = {e.metric: e for e in decoded.events}
    assert set(metrics) == {"my app_latency", "my app_up"}
    assert metrics["my app_up"].value == 0.0
    assert metrics["my app_latency"].labels == (("k=v", "x"), ("region", "eu,west"))


def test_value_field_is_named_after_its_measurement():
    decoded = decode(b"queue_depth,host=h value=12 1700000000000000000")
    assert decoded.events[0].metric == "queue_depth"


def test_bad_lines_are_reported_alone_with_their_line_number():
    payload = (
        b"cpu,host=h usage=1 1700000000000000000\n"
        b"cpu,host=h usage=abc 1700000000000000000\n"
        b"cpu,host=h 1700000000000000000\n"
        b"cpu,host=h usage=2 1700000010000000000\n"
    )
    decoded = decode(payload)
    assert [e.value for e in decoded.events] == [1.0, 2.0]
    assert [err.index for err in decoded.errors] == [1, 2]
    first = decoded.errors[0].error
    assert first.reason is Reason.INVALID_VALUE
    assert first.detail.startswith("influx: line 2: ")
    assert "usage" in first.detail and "abc" in first.detail
    assert decoded.errors[0].raw == b"cpu,host=h usage=abc 1700000000000000000"
    assert decoded.errors[1].error.detail.startswith("influx: line 3: ")


def test_missing_timestamp_is_rejected_unless_configured():
    decoded = decode(b"cpu,host=h usage=1")
    assert decoded.events == []
    assert decoded.errors[0].error.reason is Reason.MISSING_FIELD
    now = MetricIngestConfig(missing_timestamp="now")
    assert decode(b"cpu,host=h usage=1", now).events[0].timestamp > 1.7e9


@pytest.mark.parametrize(
    ("precision", "raw"),
    [("s", "1700000000"), ("ms", "1700000000000"), ("ns", "1700000000000000000")],
)
def test_precision(precision, raw):
    config = MetricIngestConfig(
        format="influx", mapping=MetricMapping(influx=InfluxMapping(precision=precision))
    )
    assert decode(f"m f=1 {raw}".encode(), config).events[0].timestamp == 1700000000.0


def test_configured_counters_become_rates_across_messages():
    config = MetricIngestConfig(
        mapping=MetricMapping(influx=InfluxMapping(counters=("net_bytes_*",)))
    )
    state = CumulativeState()
    first = decode(
        b"net,host=h,interface=eth0 bytes_recv=1000i,err_in=0i 1700000000000000000", config, state
    )
    assert [e.metric for e in first.events] == ["net_err_in"]  # the counter only primes
    second = decode(
        b"net,host=h,interface=eth0 bytes_recv=3000i,err_in=0i 1700000010000000000", config, state
    )
    rates = {e.metric: e.value for e in second.events}
    assert rates["net_bytes_recv_rate"] == 200.0


def test_counter_without_state_is_an_error_not_a_silent_drop():
    config = MetricIngestConfig(mapping=MetricMapping(influx=InfluxMapping(counters=("*",))))
    decoded = decode(b"net bytes=1i 1700000000000000000", config)
    assert decoded.events == []
    assert "CumulativeState" in decoded.errors[0].error.detail


def test_only_comments_is_empty():
    with pytest.raises(DecodeError) as info:
        decode(b"# nothing here\n\n", MetricIngestConfig(format="influx"))
    assert info.value.reason is Reason.EMPTY
    assert info.value.detail.startswith("influx: ")


def test_metric_template_is_configurable_and_checked():
    config = MetricIngestConfig(
        mapping=MetricMapping(influx=InfluxMapping(metric="{measurement}.{field}"))
    )
    assert decode(b"cpu usage=1 1700000000", config).events[0].metric == "cpu.usage"
    with pytest.raises(ValueError):
        InfluxMapping(metric="{tag}")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='ab,= "1.i', max_size=30))
def test_fast_path_agrees_with_the_escape_aware_parser(line):
    """Lines without a backslash take a shortcut; it must read them as the full parser."""
    outcomes = []
    for parse in (_parse_unescaped, _parse_escaped):
        try:
            outcomes.append(parse(line))
        except DecodeError as exc:
            outcomes.append(exc.reason)
    assert outcomes[0] == outcomes[1]
