"""Root-cause ranking: magnitude first, topology to tell a culprit from its victims."""

from __future__ import annotations

import numpy as np

from detectors.events import MetricEvent
from rca.baseline import MetricHistory, robust_baseline
from rca.config import RankingConfig
from rca.ranking import IncidentEvidence, RootCauseRanker, ServiceSignals
from rca.topology import Topology

CALLS = Topology.from_mapping({"web": ["api"], "api": ["db"]})


def _signals(**z: float) -> dict[str, ServiceSignals]:
    return {
        svc: ServiceSignals(onset=100.0, z=v, signal="latency", score=0.99, top_signal="latency")
        for svc, v in z.items()
    }


def test_largest_deviation_wins_without_topology() -> None:
    ranked = RootCauseRanker(RankingConfig()).rank(signals=_signals(web=100.0, api=80.0))
    assert [c.service for c in ranked] == ["web", "api"]
    assert ranked[0].score > ranked[1].score
    assert ranked[0].magnitude == 100.0


def test_topology_puts_the_callee_before_its_caller_in_a_close_call() -> None:
    ranked = RootCauseRanker(RankingConfig(), CALLS).rank(signals=_signals(web=100.0, api=80.0))
    assert [c.service for c in ranked] == ["api", "web"]
    assert "dependencies healthy" in ranked[0].explanation
    assert "dependency anomalous too (api)" in ranked[1].explanation


def test_topology_does_not_overrule_a_much_larger_deviation() -> None:
    ranked = RootCauseRanker(RankingConfig(), CALLS).rank(signals=_signals(web=900.0, api=30.0))
    assert ranked[0].service == "web"


def test_raw_evidence_adds_silent_services_on_an_anomalous_path() -> None:
    history = MetricHistory(capacity=300)
    rng = np.random.default_rng(0)
    for t in range(200):
        for svc in ("web", "api", "db"):
            value = 10 + rng.normal(0, 0.5)
            if t >= 150 and svc in ("db", "api"):
                value += 40 if svc == "db" else 10
            history.add(MetricEvent(float(t), svc, "cpu", value))
    evidence = IncidentEvidence(onset=150.0)
    evidence.freeze(history, RankingConfig())
    # Only the caller raised an anomaly; the database deviates most in the raw samples.
    ranked = RootCauseRanker(RankingConfig(), CALLS).rank(
        signals=_signals(api=8.0), evidence=evidence
    )
    assert ranked[0].service == "db" and ranked[0].kind == "cpu"
    assert {c.service for c in ranked} == {"db", "api"}


def test_constant_series_gets_a_relative_spread() -> None:
    base = robust_baseline(np.full(50, 2.0e8), relative_floor=0.01, absolute_floor=1e-9)
    assert base.z(2.0e8 + 4096) < 1.0, "a page of memory is not an anomaly"
    assert base.z(4.0e8) == 100.0
