"""Line protocol and Graphite written by Telegraf's own serializers.

``telegraf_1.37_*`` were produced by ``fixtures/telegrafgen/main.go`` with the ``influx``
serializer (defaults, as ``outputs.kafka`` uses it: one metric's line per message; the
file holds the lines of two flushes one after another) and
the ``graphite`` serializer (``graphite_tag_support = true``) of
github.com/influxdata/telegraf v1.37.2 (regenerate: ``cd tests/ingest/fixtures/telegrafgen
&& go run .``).
"""

from __future__ import annotations

from pathlib import Path

from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import InfluxMapping, MetricMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
INFLUX = (FIXTURES / "telegraf_1.37_influx_batch.influx").read_bytes()
GRAPHITE = (FIXTURES / "telegraf_1.37_graphite_tags.txt").read_bytes()


def test_influx_batch_with_escapes_and_every_field_type():
    config = MetricIngestConfig(
        mapping=MetricMapping(influx=InfluxMapping(counters=("net_bytes_*",)))
    )
    decoded = decode_metric_message(
        INFLUX, config=config, max_bytes=1 << 20, state=CumulativeState()
    )
    assert decoded.errors == []
    # 14 lines, two rounds; string fields are not samples, counters prime on round one
    assert len(decoded.events) == 2 * 17 - 2
    by_key = {(e.metric, e.timestamp): e for e in decoded.events}
    odd = by_key[("app log,events_count", 1700000000.0)]
    assert odd.value == 3.0 and odd.labels == (("k=v", "a b,c"),)
    assert dict(by_key[("disk_used_percent", 1700000000.0)].labels)["path"] == "/var lib"
    assert by_key[("mem_total", 1700000000.0)].value == 8210239488.0
    assert by_key[("http_response_ok", 1700000000.0)].value == 1.0
    assert by_key[("http_response_ok", 1700000000.0)].service == "checkout"
    assert by_key[("net_bytes_recv_rate", 1700000010.0)].value == 0.0
    assert ("net_bytes_recv_rate", 1700000000.0) not in by_key


def test_graphite_with_tags():
    decoded = decode_metric_message(GRAPHITE, config=MetricIngestConfig(), max_bytes=1 << 20)
    assert decoded.errors == []
    assert len(decoded.events) == len(GRAPHITE.splitlines())
    by_metric = {e.metric: e for e in decoded.events}
    idle = by_metric["cpu.usage_idle"]
    assert (idle.service, idle.host, idle.value, idle.labels) == (
        "graphite",
        "web-1",
        97.48,
        (("cpu", "cpu-total"),),
    )
    assert by_metric["http_response.response_time"].service == "checkout"
