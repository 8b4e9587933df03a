"""Remediation rules and guardrails, as an executor on the actions topic sees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rca.config import CorrelationConfig, RcaConfig, RemediationConfig
from rca.engine import IncidentEngine
from rca.exceptions import ConfigError, InvalidTransitionError
from rca.model import ActionMode, ActionStatus, ActionType, IncidentState
from rca.remediation import load_remediation_rules, rules_from_dicts
from rca.silences import Matcher, Silence
from rca.topology import Topology
from tests.rca.conftest import make_anomaly

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _engine(mode: str, quiet_s: float = 600.0, **guardrails: object) -> IncidentEngine:
    rules = rules_from_dicts(
        [
            {
                "name": "cpu-restart",
                "match": {"kind": "cpu"},
                "action": "restart",
                "mode": mode,
                "cooldown_s": 600,
            }
        ]
    )
    guardrails.setdefault("settle_s", 0.0)
    cfg = RcaConfig(
        correlation=CorrelationConfig(quiet_period_s=quiet_s),
        remediation=RemediationConfig(**guardrails),  # type: ignore[arg-type]
    )
    return IncidentEngine(config=cfg, rules=rules)


def _cpu_incident(engine: IncidentEngine, service: str, at: float) -> list:
    out = engine.on_anomaly(make_anomaly(service, "cpu", at, z=40.0))
    out += engine.on_anomaly(make_anomaly(service, "latency", at + 1, z=5.0))
    return list(out.actions)


def test_example_rules_file_loads() -> None:
    rules = load_remediation_rules(EXAMPLES / "remediation.yaml")
    assert {r.action for r in rules} == set(ActionType)
    assert {r.mode for r in rules} == set(ActionMode)


def test_auto_action_is_dispatched_once_with_idempotency_key() -> None:
    engine = _engine("auto")
    (action,) = _cpu_incident(engine, "carts", 1000.0)
    assert action.status is ActionStatus.DISPATCHED
    assert action.target == "carts" and action.action is ActionType.RESTART
    assert action.incident_id == engine.open_incidents[0].id
    assert action.idempotency_key and 0 < action.confidence <= 1
    assert "cpu-restart" in action.reason
    more = engine.on_anomaly(make_anomaly("carts", "cpu", 1010.0, z=60.0))
    assert not more.actions, "same incident, same target: no second action"


def test_cooldown_per_target() -> None:
    engine = _engine("auto", quiet_s=60.0)
    (first,) = _cpu_incident(engine, "carts", 1000.0)
    engine.tick(1100.0)  # resolved after the quiet period
    (cooling,) = _cpu_incident(engine, "carts", 1200.0)  # reopens, within the cooldown
    assert engine.open_incidents[0].reopened == 1
    assert first.status is ActionStatus.DISPATCHED
    assert cooling.status is ActionStatus.SUPPRESSED and "cooldown" in cooling.reason
    engine.tick(1300.0)
    (later,) = _cpu_incident(engine, "carts", 1700.0)
    assert later.status is ActionStatus.DISPATCHED, "the 600 s cooldown has passed"


def test_cap_on_actions_per_window() -> None:
    engine = _engine("auto", max_actions=2, window_s=3600)
    # Three unrelated services (known to the topology, no edges): three incidents.
    engine.topology = Topology.from_mapping({"carts": [], "orders": [], "payment": []})
    engine.correlator.topology = engine.topology
    statuses = [
        _cpu_incident(engine, svc, 1000.0 + i)[0]
        for i, svc in enumerate(["carts", "orders", "payment"])
    ]
    assert [a.status for a in statuses] == [
        ActionStatus.DISPATCHED,
        ActionStatus.DISPATCHED,
        ActionStatus.SUPPRESSED,
    ]
    assert "cap of 2" in statuses[2].reason


def test_dry_run_marks_actions() -> None:
    (action,) = _cpu_incident(_engine("auto", dry_run=True), "carts", 1000.0)
    assert action.status is ActionStatus.DRY_RUN and action.dry_run


def test_approval_flow() -> None:
    engine = _engine("approval")
    (action,) = _cpu_incident(engine, "carts", 1000.0)
    assert action.status is ActionStatus.PENDING_APPROVAL
    out = engine.approve(action.id, "alice")
    (approved,) = out.actions
    assert approved.status is ActionStatus.DISPATCHED and approved.decided_by == "alice"
    assert out.incidents[0].actions[0].status is ActionStatus.DISPATCHED
    with pytest.raises(InvalidTransitionError):
        engine.reject(action.id, "bob")


def test_rejected_and_cancelled_actions() -> None:
    engine = _engine("approval")
    (action,) = _cpu_incident(engine, "carts", 1000.0)
    assert engine.reject(action.id, "bob").actions[0].status is ActionStatus.REJECTED
    engine2 = _engine("approval")
    (pending,) = _cpu_incident(engine2, "carts", 1000.0)
    out = engine2.tick(5000.0)
    assert out.incidents[0].state is IncidentState.RESOLVED
    assert [a.status for a in out.actions] == [ActionStatus.CANCELLED]
    with pytest.raises(InvalidTransitionError):
        engine2.approve(pending.id, "alice")


def test_silenced_incident_gets_no_action() -> None:
    engine = _engine("auto")
    engine.add_silence(
        Silence("m", (Matcher.parse("service=carts"),), starts_at=0.0, ends_at=5000.0)
    )
    actions = _cpu_incident(engine, "carts", 1000.0)
    inc = engine.open_incidents[0]
    assert inc.silenced and inc.silenced_until == 5000.0
    assert actions == []


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("rules:\n  - name: r1\n    action: reboot\n", ["rule 'r1'", "action"]),
        ("rules:\n  - name: r1\n    action: custom\n", ["rule 'r1'", "params.name"]),
        ("rules:\n  - name: r1\n    action: restart\n    match: {service: '('}\n", ["r1", "regex"]),
        ("rules:\n  - action: restart\n", ["rule #1", "name"]),
        (
            "rules:\n  - {name: a, action: restart}\n  - {name: a, action: restart}\n",
            ["rule 'a'", "duplicate"],
        ),
        ("rules:\n  - name: r1\n    action: restart\n    mode: yolo\n", ["r1", "mode"]),
        ("rulez: []\n", ["rules"]),
        ("rules: [\n", ["not valid YAML"]),
    ],
)
def test_bad_rules_file_names_rule_and_problem(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_remediation_rules(path)
    message = str(err.value)
    assert str(path) in message
    for name in names:
        assert name in message


def test_no_action_before_the_ranking_settles() -> None:
    engine = _engine("auto", settle_s=60.0)
    assert _cpu_incident(engine, "carts", 1000.0) == [], "too early: the ranking may still move"
    assert not engine.tick(1030.0).actions
    (action,) = engine.tick(1061.0).actions
    assert action.status is ActionStatus.DISPATCHED and action.target == "carts"
