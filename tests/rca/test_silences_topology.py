"""Silences, topology files and operations from chat buttons."""

from __future__ import annotations

from pathlib import Path

import pytest

from rca.engine import IncidentEngine
from rca.exceptions import ConfigError, InvalidTransitionError
from rca.silences import Matcher, Silence, load_silences
from rca.topology import CoOccurrence, load_topology
from tests.rca.conftest import make_anomaly

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_files_load() -> None:
    topo = load_topology(EXAMPLES / "topology.yaml")
    assert "carts-db" in topo.dependencies_of("carts")
    assert "front-end" in topo.dependents("carts")
    silences = load_silences(EXAMPLES / "silences.yaml")
    assert [s.id for s in silences] == ["carts-db-upgrade", "load-test-staging"]
    assert silences[0].ends_at - silences[0].starts_at == 7200


def test_matchers() -> None:
    labels = {"service": "carts", "env": "prod"}
    assert Matcher.parse('service=~"cart.*"').matches(labels)
    assert not Matcher.parse("env!=prod").matches(labels)
    assert Matcher.parse("env!~dev|staging").matches(labels)
    assert Matcher.parse("zone=").matches(labels), "a missing label is the empty string"


def test_silenced_incident_is_recorded_not_notified_until_the_silence_ends() -> None:
    engine = IncidentEngine()
    engine.add_silence(Silence("w", (Matcher.parse("service=carts"),), 0.0, 1100.0))
    engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    inc = engine.on_anomaly(make_anomaly("carts", "memory", 1001.0)).incidents[0]
    assert inc.silenced and inc.silenced_by == "w"
    out = engine.tick(1100.0)
    assert out.incidents and not out.incidents[0].silenced


def test_partly_silenced_incident_is_not_silenced() -> None:
    engine = IncidentEngine()
    engine.add_silence(Silence("w", (Matcher.parse("service=carts"),), 0.0, 9000.0))
    engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    inc = engine.on_anomaly(make_anomaly("front-end", "latency", 1001.0)).incidents[0]
    assert not inc.silenced


def test_silence_from_an_incident_and_expiry() -> None:
    engine = IncidentEngine()
    engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    inc = engine.on_anomaly(make_anomaly("front-end", "latency", 1001.0)).incidents[0]
    out = engine.silence_incident(inc.id, until=2000.0, user="alice", at=1002.0)
    assert out.incidents[0].silenced and out.incidents[0].silenced_by == "alice"
    out = engine.expire_silence(f"incident-{inc.id}", at=1003.0)
    assert not out.incidents[0].silenced
    assert out.incidents[0].version == inc.version + 2


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("silences:\n  - id: a\n    matchers: [service=x]\n    starts_at: 5\n", ["'a'", "ends_at"]),
        (
            "silences:\n  - id: a\n    matchers: [service=x]\n    starts_at: 5\n    ends_at: 1\n",
            ["'a'", "after"],
        ),
        (
            "silences:\n  - id: a\n    matchers: ['service=~(']\n"
            "    starts_at: 1\n    ends_at: 5\n",
            ["'a'", "regex"],
        ),
        ("silences:\n  - id: a\n    matchers: []\n    starts_at: 1\n    ends_at: 5\n", ["empty"]),
        ("silences:\n  - id: a\n    matchers: [x]\n    starts_at: nope\n    ends_at: 5\n", ["'a'"]),
    ],
)
def test_bad_silences_file(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_silences(path)
    assert str(path) in str(err.value)
    for name in names:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("services:\n  a: b\n", "services.a"),
        ("services:\n  a: [a]\n", "itself"),
        ("nodes: {}\n", "services"),
    ],
)
def test_bad_topology_file(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=where):
        load_topology(path)


def test_learned_cooccurrence_splits_unrelated_services() -> None:
    engine = IncidentEngine()
    # History: carts and carts-db fail together; payment fails on its own.
    for i in range(6):
        t = 10_000.0 * (i + 1)
        engine.on_anomaly(make_anomaly("carts", "cpu", t))
        engine.on_anomaly(make_anomaly("carts-db", "cpu", t + 1))
        engine.on_anomaly(make_anomaly("payment", "cpu", t + 5000))
        engine.on_anomaly(make_anomaly("payment", "memory", t + 5001))
        engine.tick(t + 9000)
    engine.on_anomaly(make_anomaly("carts", "cpu", 100_000.0))
    engine.on_anomaly(make_anomaly("carts-db", "cpu", 100_001.0))
    engine.on_anomaly(make_anomaly("payment", "cpu", 100_002.0))
    engine.on_anomaly(make_anomaly("payment", "memory", 100_003.0))
    groups = sorted(inc.services for inc in engine.open_incidents)
    assert groups == [("carts", "carts-db"), ("payment",)]
    co = CoOccurrence(min_support=1, min_cooccurrence=0.5)
    co.observe(["a", "b"])
    assert co.related("a", "b")
    assert co.related("a", "c"), "no history for c yet: related by time alone"


def test_acknowledge_and_decisions_are_versioned() -> None:
    engine = IncidentEngine()
    engine.on_anomaly(make_anomaly("carts", "cpu", 1000.0))
    inc = engine.on_anomaly(make_anomaly("carts", "memory", 1001.0)).incidents[0]
    acked = engine.acknowledge(inc.id, "alice").incidents[0]
    assert acked.acknowledged and acked.acknowledged_by == "alice"
    assert acked.version == inc.version + 1
    assert acked.timeline[-1].text == "acknowledged by alice"
    with pytest.raises(InvalidTransitionError):
        from rca import operations

        operations.silence(acked, until=10.0, by="bob", at=20.0)
