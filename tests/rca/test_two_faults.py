"""Two separate faults an hour apart on a noisy background: two incidents, each with its
culprit, even while the first fault goes on."""

from __future__ import annotations

import random

import pytest

from detectors.events import MetricEvent
from detectors.metric import MetricDetectionConfig, MetricMonitor
from rca.config import RcaConfig
from rca.engine import IncidentEngine
from rca.model import Incident
from rca.topology import Topology

CALLS = {
    "frontend": ["orders", "catalog"],
    "orders": ["payments", "shipping"],
    "payments": ["payments-db"],
    "catalog": ["catalog-db"],
    "shipping": ["queue"],
    "payments-db": [],
    "catalog-db": [],
    "queue": [],
}
CALLERS = {s: [a for a, deps in CALLS.items() if s in deps] for s in CALLS}
START = 1_764_000_000.0


def replay(
    step: float, faults: list[tuple[float, float, str]], *, hours: float = 30.0, seed: int = 1
) -> dict[str, Incident]:
    """Latency and CPU of eight services every ``step`` seconds, with 5% noise and random
    blips (0.4% of samples 1.5-3x); each fault ``(start h, end h, service)`` multiplies
    its service's latency by 6 and CPU by 2.5, and its callers' latency by 2.5."""
    rng = random.Random(seed)
    engine = IncidentEngine(config=RcaConfig(), topology=Topology.from_mapping(CALLS))
    monitor = MetricMonitor(MetricDetectionConfig())
    latest: dict[str, Incident] = {}
    for i in range(int(hours * 3600 / step)):
        t = START + i * step
        hour = i * step / 3600
        for service in CALLS:
            for metric, base in (("latency_ms", 50.0), ("cpu", 30.0)):
                value = base * (1 + 0.05 * rng.gauss(0, 1))
                if rng.random() < 0.004:
                    value *= rng.uniform(1.5, 3.0)
                for begin, end, culprit in faults:
                    if begin <= hour < end:
                        if service == culprit:
                            value *= 6.0 if metric == "latency_ms" else 2.5
                        elif metric == "latency_ms" and service in CALLERS[culprit]:
                            value *= 2.5
                event = MetricEvent(t, service, metric, value)
                engine.on_metric(event)
                anomaly = monitor.process(event)
                if anomaly is not None:
                    latest.update((i.id, i) for i in engine.on_anomaly(anomaly).incidents)
        latest.update((i.id, i) for i in engine.tick(t).incidents)
    return latest


def by_onset(incidents: dict[str, Incident]) -> list[Incident]:
    return sorted(incidents.values(), key=lambda i: i.opened_at)


@pytest.mark.parametrize("step", [15.0, 60.0])
def test_two_faults_an_hour_apart_give_two_incidents(step: float) -> None:
    incidents = by_onset(replay(step, [(26.0, 26.33, "payments"), (27.0, 27.33, "catalog")]))
    assert [i.root_causes[0].service for i in incidents] == ["payments", "catalog"]
    assert [round((i.opened_at - START) / 3600, 1) for i in incidents] == [26.0, 27.0]
    assert all(i.resolved_at is not None for i in incidents)


@pytest.mark.parametrize("step", [15.0, 60.0])
def test_a_lasting_fault_does_not_swallow_a_later_one_next_to_it(step: float) -> None:
    # payments stays broken for three hours, which holds its incident open; an hour in,
    # shipping (two hops away, through orders) breaks on its own
    incidents = by_onset(replay(step, [(26.0, 29.0, "payments"), (27.0, 27.33, "shipping")]))
    assert [i.root_causes[0].service for i in incidents] == ["payments", "shipping"]
    first, second = incidents
    assert "shipping" not in first.services
    assert second.resolved_at is not None and second.resolved_at < START + 28 * 3600
