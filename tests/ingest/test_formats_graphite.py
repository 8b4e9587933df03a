"""Graphite plaintext lines (carbon's line receiver), including tagged series.

Fixture ``graphite.txt`` follows graphite.readthedocs.io "Feeding In Your Data"
(``<path> <value> <timestamp>``, ``-1`` for now) and "Graphite Tag Support"
(``path;tag=value``); the ``collectd.*`` paths are collectd ``write_graphite``'s naming
(``prefix.host.plugin-instance.type-instance``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.exceptions import Reason
from ingest.formats.mapping import GraphiteMapping, GraphiteTemplate, MetricMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
PAYLOAD = (FIXTURES / "graphite.txt").read_bytes()
TEMPLATES = (
    GraphiteTemplate(match="collectd.*", template="_.host.metric*"),
    GraphiteTemplate(match="*.web-*.*", template="service.host.metric*"),
)


def decode(config: MetricIngestConfig):
    return decode_metric_message(PAYLOAD, config=config, max_bytes=1 << 20)


def test_templates_and_tags():
    config = MetricIngestConfig(
        mapping=MetricMapping(graphite=GraphiteMapping(templates=TEMPLATES))
    )
    decoded = decode(config)
    found = [(e.service, e.host, e.metric, e.value, e.labels) for e in decoded.events]
    assert found == [
        ("graphite", "db-1", "cpu-0.percent-idle", 97.5, ()),
        ("graphite", "db-1", "load.load.shortterm", 0.35, ()),
        ("checkout", "web-1", "http.latency_p99", 0.25, ()),
        ("postgres", "db-1", "disk.used", 41.2, (("mount", "/var"),)),
    ]
    [error] = decoded.errors
    assert error.index == 4
    assert error.error.reason is Reason.MISSING_FIELD
    assert error.error.detail == "graphite: line 5: the line has no timestamp"


def test_without_templates_the_path_is_the_metric():
    decoded = decode(MetricIngestConfig(format="graphite", missing_timestamp="now"))
    assert decoded.errors == []
    assert decoded.events[0].metric == "collectd.db-1.cpu-0.percent-idle"
    assert decoded.events[-1].metric == "queue.depth"


def test_named_nodes_become_labels():
    mapping = GraphiteMapping(templates=(GraphiteTemplate(template="region.host.metric*"),))
    config = MetricIngestConfig(mapping=MetricMapping(graphite=mapping))
    event = decode_metric_message(
        b"eu.web-3.cpu.load 1.5 1700000000", config=config, max_bytes=1024
    ).events[0]
    assert (event.host, event.metric, event.labels) == ("web-3", "cpu.load", (("region", "eu"),))


def test_template_must_name_the_metric():
    with pytest.raises(ValueError):
        GraphiteTemplate(template="host.service")
