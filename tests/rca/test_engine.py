"""The incident engine, seen from the topics it feeds: incidents, versions, root causes."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from detectors.anomaly import Direction, SignalKind
from detectors.events import MetricEvent
from rca.config import CorrelationConfig, RcaConfig
from rca.engine import IncidentEngine, Outcome
from rca.exceptions import StateError, UnknownIncidentError
from rca.model import Incident, IncidentState, Severity
from rca.topology import Topology
from tests.rca.conftest import make_anomaly

TOPOLOGY = Topology.from_mapping(
    {
        "front-end": ["carts", "catalogue", "orders"],
        "orders": ["payment", "orders-db"],
        "carts": ["carts-db"],
        "catalogue": ["catalogue-db"],
    }
)


def _published(outcomes: list[Outcome]) -> list[Incident]:
    return [inc for out in outcomes for inc in out.incidents]


def test_related_anomalies_make_one_incident() -> None:
    engine = IncidentEngine(topology=TOPOLOGY)
    outs = [
        engine.on_anomaly(make_anomaly("carts-db", "cpu", 1000.0, z=30.0)),
        engine.on_anomaly(make_anomaly("carts", "latency_p99", 1003.0, z=8.0)),
        engine.on_anomaly(make_anomaly("front-end", "latency_p99", 1005.0, z=6.0)),
    ]
    incidents = _published(outs)
    assert len({i.id for i in incidents}) == 1
    last = incidents[-1]
    assert last.services == ("carts", "carts-db", "front-end")
    assert last.root_causes[0].service == "carts-db"
    assert last.root_causes[0].kind == "cpu"
    assert last.root_causes[0].explanation


def test_unrelated_services_open_separate_incidents() -> None:
    engine = IncidentEngine(topology=TOPOLOGY)
    engine.on_anomaly(make_anomaly("carts-db", "cpu", 1000.0))
    engine.on_anomaly(make_anomaly("carts", "cpu", 1001.0))
    engine.on_anomaly(make_anomaly("payment", "errors", 1002.0))
    engine.on_anomaly(make_anomaly("orders-db", "cpu", 1003.0))
    services = sorted(tuple(i.services) for i in engine.open_incidents)
    assert services == [("carts", "carts-db"), ("orders-db", "payment")]


def test_with_min_signals_a_lone_anomaly_waits_for_corroboration() -> None:
    engine = IncidentEngine(config=RcaConfig(correlation=CorrelationConfig(min_signals=2)))
    assert not engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    assert engine.open_incidents == ()
    out = engine.on_anomaly(make_anomaly("carts", "memory", 1020.0))
    assert [i.state for i in out.incidents] == [IncidentState.OPENED]
    assert out.incidents[0].opened_at == 1000.0


def test_duplicates_fold_by_fingerprint() -> None:
    engine = IncidentEngine()
    engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    engine.on_anomaly(make_anomaly("carts", "memory", 1001.0))
    again = engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    assert not again, "a redelivered record changes nothing"
    out = engine.on_anomaly(make_anomaly("carts", "cpu", 1100.0, z=50.0))
    inc = out.incidents[0]
    assert len(inc.anomalies) == 2
    cpu = next(a for a in inc.anomalies if a.signal == "cpu")
    assert (cpu.count, cpu.peak_z, cpu.last_seen) == (2, 50.0, 1100.0)
    assert inc.anomaly_count == 3


def test_versions_increase_by_one_and_the_topic_rebuilds_state() -> None:
    engine = IncidentEngine(config=RcaConfig(correlation=CorrelationConfig(quiet_period_s=60)))
    outs = [engine.on_anomaly(make_anomaly("carts", s, 1000.0 + i)) for i, s in enumerate("abc")]
    outs.append(engine.tick(1010.0))
    outs.append(engine.acknowledge(engine.open_incidents[0].id, "alice"))
    outs.append(engine.tick(1100.0))
    topic: dict[str, Incident] = {}
    versions: dict[str, list[int]] = {}
    for inc in _published(outs):
        topic[inc.id] = Incident.from_dict(inc.to_dict())
        versions.setdefault(inc.id, []).append(inc.version)
    (incident_id,) = topic
    assert versions[incident_id] == list(range(1, len(versions[incident_id]) + 1))
    assert topic[incident_id] == engine.get(incident_id)
    assert topic[incident_id].state is IncidentState.RESOLVED
    assert topic[incident_id].acknowledged_by == "alice"


def test_resolves_after_quiet_period_and_reopens_on_recurrence() -> None:
    cfg = RcaConfig(correlation=CorrelationConfig(quiet_period_s=300, reopen_window_s=600))
    engine = IncidentEngine(config=cfg)
    engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    first = engine.on_anomaly(make_anomaly("carts", "memory", 1001.0)).incidents[0]
    assert not engine.tick(1200.0).incidents or engine.open_incidents
    resolved = engine.tick(1301.0).incidents[0]
    assert resolved.state is IncidentState.RESOLVED and resolved.resolved_at == 1301.0
    # The same problem within the reopen window: same incident, reopened.
    back = engine.on_anomaly(make_anomaly("carts", "cpu", 1500.0)).incidents[0]
    assert back.id == first.id
    assert back.state is IncidentState.UPDATED and back.resolved_at is None
    assert back.reopened == 1
    engine.tick(1900.0)
    # Long after: a new incident.
    fresh = engine.on_anomaly(make_anomaly("carts", "cpu", 5000.0)).incidents[0]
    assert fresh.id != first.id and fresh.version == 1


def test_incident_ids_are_deterministic() -> None:
    def run() -> list[tuple[str, int]]:
        engine = IncidentEngine()
        outs = [engine.on_anomaly(make_anomaly("svc", f"m{i}", 1000.0 + i)) for i in range(4)]
        return [(i.id, i.version) for i in _published(outs)]

    assert run() == run()


def _feed(engine: IncidentEngine, t: float, values: dict[tuple[str, str], float]) -> None:
    for (service, metric), value in values.items():
        engine.on_metric(MetricEvent(timestamp=t, service=service, metric=metric, value=value))


def _normal(rng: random.Random) -> dict[tuple[str, str], float]:
    return {
        ("front-end", "latency"): 0.05 + rng.gauss(0, 0.002),
        ("orders", "latency"): 0.03 + rng.gauss(0, 0.002),
        ("orders", "cpu"): 20 + rng.gauss(0, 1),
        ("orders-db", "cpu"): 10 + rng.gauss(0, 1),
        ("payment", "cpu"): 5 + rng.gauss(0, 0.5),
    }


def test_raw_metrics_confirm_lasting_shifts_and_rank_like_baro() -> None:
    rng = random.Random(7)
    engine = IncidentEngine(topology=TOPOLOGY)
    for t in range(300):
        _feed(engine, float(t), _normal(rng))
        engine.tick(float(t))
    # A blip: flagged by a detector but gone at once.
    blip = make_anomaly("payment", "cpu", 300.0)
    engine.on_anomaly(blip)
    published = []
    for t in range(300, 400):
        values = _normal(rng)
        if t == 300:
            values[("payment", "cpu")] = 50.0
        if t >= 340:  # the database saturates; its callers slow down
            values[("orders-db", "cpu")] = 95 + rng.gauss(0, 1)
            values[("orders", "latency")] = 0.09 + rng.gauss(0, 0.002)
            values[("front-end", "latency")] = 0.11 + rng.gauss(0, 0.002)
        _feed(engine, float(t), values)
        if t == 342:
            published += engine.on_anomaly(make_anomaly("orders-db", "cpu", 341.0)).incidents
            published += engine.on_anomaly(make_anomaly("orders", "latency", 342.0)).incidents
        if t == 345:
            published += engine.on_anomaly(make_anomaly("front-end", "latency", 343.0)).incidents
        published += engine.tick(float(t)).incidents
    assert published, "the lasting shift opened an incident"
    first = published[0]
    assert first.opened_at == 341.0
    assert first.updated_at >= 341.0 + engine.config.correlation.confirm_s
    assert "payment" not in first.services, "the blip was not confirmed"
    top = engine.get(first.id).root_causes
    assert [c.service for c in top[:1]] == ["orders-db"]
    assert "robust sigma" in top[0].explanation
    assert engine.get(first.id).severity is Severity.CRITICAL
    assert engine.memory_bytes <= 5 * engine.config.ranking.baseline_samples * 12


def test_state_survives_a_restart() -> None:
    rng = random.Random(3)

    def drive(engine: IncidentEngine, start: int, stop: int) -> list[Incident]:
        out = []
        for t in range(start, stop):
            values = _normal(rng)
            if t >= 200:
                values[("orders-db", "cpu")] = 90.0
                values[("orders", "latency")] = 0.2
            _feed(engine, float(t), values)
            if t == 201:
                out += engine.on_anomaly(make_anomaly("orders-db", "cpu", 200.0)).incidents
                out += engine.on_anomaly(make_anomaly("orders", "latency", 201.0)).incidents
            out += engine.tick(float(t)).incidents
        return out

    engine = IncidentEngine(topology=TOPOLOGY)
    drive(engine, 0, 210)
    restored = IncidentEngine.load_state(engine.dump_state(), topology=TOPOLOGY)
    rng_state = rng.getstate()
    after_restart = drive(restored, 210, 300)
    rng.setstate(rng_state)
    uninterrupted = drive(engine, 210, 300)
    assert after_restart == uninterrupted
    assert after_restart, "the incident opened after the restart"


def test_state_without_history_is_small_and_loads() -> None:
    rng = random.Random(5)
    engine = IncidentEngine()
    for t in range(100):
        _feed(engine, float(t), _normal(rng))
    engine.on_anomaly(make_anomaly("orders", "errors", 100.0))  # not fed: counts at once
    assert engine.open_incidents
    light = engine.dump_state(include_history=False)
    assert len(light) < len(engine.dump_state()) / 5
    assert orjson.loads(light)["history"] == {}
    restored = IncidentEngine.load_state(light)
    assert restored.open_incidents == engine.open_incidents
    assert restored.memory_bytes == 0


def test_bad_state_is_a_state_error() -> None:
    with pytest.raises(StateError):
        IncidentEngine.load_state(b"{not json")
    with pytest.raises(StateError):
        IncidentEngine.load_state(b'{"state_version": 99}')


def test_predictions_open_alone_and_withdraw() -> None:
    engine = IncidentEngine()
    forecast = make_anomaly(
        "orders-db",
        "disk_used",
        1000.0,
        z=None,
        kind=SignalKind.PREDICTED,
        direction=Direction.PREDICTED,
        crossing_time=4600.0,
        limit=0.95,
    )
    inc = engine.on_anomaly(forecast).incidents[0]
    assert inc.predicted and inc.time_left == pytest.approx(3600.0)
    assert inc.severity is Severity.WARNING
    withdrawn = make_anomaly(
        "orders-db",
        "disk_used",
        1300.0,
        z=None,
        kind=SignalKind.PREDICTED,
        direction=Direction.PREDICTED,
        phase="withdrawn",
    )
    gone = engine.on_anomaly(withdrawn).incidents[0]
    assert gone.state is IncidentState.RESOLVED


def test_unknown_incident_raises() -> None:
    with pytest.raises(UnknownIncidentError):
        IncidentEngine().acknowledge("inc-nope", "bob")


def test_nan_samples_do_not_break_ranking() -> None:
    engine = IncidentEngine()
    for t in range(100):
        engine.on_metric(MetricEvent(float(t), "a", "cpu", math.nan if t % 7 == 0 else 1.0 + t % 3))
    engine.on_anomaly(make_anomaly("a", "cpu", 100.0))
    out = engine.on_anomaly(make_anomaly("a", "memory", 100.0))
    engine.on_metric(MetricEvent(101.0, "a", "cpu", math.nan))
    assert out.incidents or engine.tick(200.0) is not None


def test_an_incident_stays_open_while_its_series_stays_off_baseline() -> None:
    rng = random.Random(3)
    quiet = 120.0
    engine = IncidentEngine(
        config=RcaConfig(correlation=CorrelationConfig(quiet_period_s=quiet)), topology=TOPOLOGY
    )
    for t in range(300):
        _feed(engine, float(t), _normal(rng))
        engine.tick(float(t))
    fault_end = 900  # the detector reports the onset once; the shift lasts 600 s
    states: list[tuple[float, IncidentState]] = []
    for t in range(300, 1300):
        values = _normal(rng)
        if t < fault_end:
            values[("orders-db", "cpu")] = 95 + rng.gauss(0, 1)
        _feed(engine, float(t), values)
        if t == 301:
            engine.on_anomaly(make_anomaly("orders-db", "cpu", 300.0))
        states += [(float(t), i.state) for i in engine.tick(float(t)).incidents]
    resolved = [t for t, s in states if s is IncidentState.RESOLVED]
    assert len(resolved) == 1, "one resolution, no flapping"
    last_off = fault_end - 1
    assert last_off + quiet <= resolved[0] <= last_off + quiet + 30
