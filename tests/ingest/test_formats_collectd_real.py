"""Output captured from a real collectd 5.12 (Debian package ``collectd-core``).

One run, ``Interval 1``, plugins cpu (per CPU, percentages), load, memory and interface
(``lo``), written at the same time by ``write_http`` (``Format "JSON"``,
``StoreRates false``) and ``write_graphite`` (``Prefix "collectd."``, ``StoreRates
true``); the first three collection rounds are kept, byte for byte. ``write_http`` and
``write_kafka`` share collectd's JSON formatter (``format_json_value_list``), so this is
what ``write_kafka`` with ``Format JSON`` puts in a Kafka message.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import GraphiteMapping, GraphiteTemplate, MetricMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
JSON = (FIXTURES / "collectd_5.12_write_http.json").read_bytes()
GRAPHITE = (FIXTURES / "collectd_5.12_write_graphite.txt").read_bytes()


def test_real_collectd_json_decodes_without_rejects():
    decoded = decode_metric_message(
        JSON, config=MetricIngestConfig(), max_bytes=1 << 20, state=CumulativeState()
    )
    assert decoded.errors == []
    cpu = [e for e in decoded.events if e.metric == "cpu_percent"]
    assert cpu and all(0.0 <= e.value <= 100.0 for e in cpu)
    assert {dict(e.labels)["type"] for e in cpu} >= {"user", "system", "idle"}
    assert all(e.service == "db-1" and e.host == "db-1" for e in decoded.events)
    # derive counters: three rounds give two rates per data source
    octets = [e for e in decoded.events if e.metric == "interface_if_octets_rx_rate"]
    assert len(octets) == 2 and all(e.labels == (("interface", "lo"),) for e in octets)


def test_our_rates_match_collectds_own():
    """collectd computed the same rates for write_graphite (StoreRates true)."""
    decoded = decode_metric_message(
        JSON, config=MetricIngestConfig(), max_bytes=1 << 20, state=CumulativeState()
    )
    ours = {
        (e.metric.removesuffix("_rate"), int(e.timestamp)): e.value
        for e in decoded.events
        if e.metric.startswith("interface_") and e.metric.endswith("_rate")
    }
    theirs = {}
    for line in GRAPHITE.decode().splitlines():
        path, value, stamp = line.split()
        if ".interface-lo." in path:
            _, _, _, kind, direction = path.split(".")
            theirs[(f"interface_{kind}_{direction}", int(stamp))] = float(value)
    compared = 0
    for key, rate in ours.items():
        assert theirs[key] == pytest.approx(rate, rel=1e-2, abs=1e-6), key
        compared += 1
    assert compared == 16


def test_real_graphite_lines_with_a_template():
    mapping = GraphiteMapping(templates=(GraphiteTemplate(template="_.host.metric*"),))
    config = MetricIngestConfig(mapping=MetricMapping(graphite=mapping))
    decoded = decode_metric_message(GRAPHITE, config=config, max_bytes=1 << 20)
    assert decoded.errors == []
    assert len(decoded.events) == len(GRAPHITE.splitlines())
    assert {e.host for e in decoded.events} == {"db-1"}
    first_rates = [e for e in decoded.events if e.metric.startswith("interface-lo.")]
    # collectd has no rate before its second value: it writes "nan", a gap here
    assert any(math.isnan(e.value) for e in first_rates)
