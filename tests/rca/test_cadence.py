"""Incidents open at any sampling interval a scraper uses, with the default settings."""

from __future__ import annotations

import random

import pytest

from detectors.events import MetricEvent
from detectors.metric import MetricDetectionConfig, MetricMonitor
from rca.config import RcaConfig
from rca.engine import IncidentEngine
from rca.model import Incident


def replay(step: float, *, fault_at: int = 250, points: int = 330) -> list[Incident]:
    """Two services sampled every ``step`` seconds; ``db`` latency jumps at ``fault_at``."""
    rng = random.Random(5)
    engine = IncidentEngine(config=RcaConfig())
    monitor = MetricMonitor(MetricDetectionConfig())
    published: list[Incident] = []
    start = 1_764_000_000.0
    for i in range(points):
        t = start + i * step
        for service, base in (("db", 20.0), ("web", 80.0)):
            value = base * (1 + 0.05 * rng.gauss(0, 1))
            if service == "db" and i >= fault_at:
                value *= 8
            event = MetricEvent(t, service, "latency_ms", value)
            engine.on_metric(event)
            anomaly = monitor.process(event)
            if anomaly is not None:
                published.extend(engine.on_anomaly(anomaly).incidents)
        published.extend(engine.tick(t).incidents)
    return published


@pytest.mark.parametrize("step", [1.0, 15.0, 46.0, 60.0, 300.0])
def test_a_clear_fault_opens_one_incident_on_its_service_at_any_step(step):
    published = replay(step)
    opened = [i for i in published if i.version == 1]
    assert len(opened) == 1, [i.title for i in opened]
    assert opened[0].root_causes[0].service == "db"
    assert opened[0].opened_at == pytest.approx(1_764_000_000.0 + 250 * step)


def test_nothing_opens_without_a_fault_at_a_slow_step():
    assert replay(60.0, fault_at=10**6) == []
