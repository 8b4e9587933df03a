"""Incident and action records survive a JSON round trip unchanged."""

from __future__ import annotations

import orjson

from rca.model import (
    ActionMode,
    ActionStatus,
    ActionType,
    AnomalyRef,
    Incident,
    IncidentState,
    RemediationAction,
    RootCauseCandidate,
    Severity,
    TimelineEvent,
    TimelineKind,
)


def _incident() -> Incident:
    action = RemediationAction(
        id="a1",
        idempotency_key="inc-1:restart:carts:1",
        incident_id="inc-1",
        action=ActionType.RESTART,
        target="carts",
        params={"grace_s": 30},
        reason="rule cpu-hog: carts cpu",
        confidence=0.8,
        mode=ActionMode.APPROVAL,
        status=ActionStatus.PENDING_APPROVAL,
        rule="cpu-hog",
        created_at=10.0,
    )
    return Incident(
        id="inc-1",
        version=3,
        state=IncidentState.UPDATED,
        severity=Severity.CRITICAL,
        title="carts: cpu anomaly",
        services=("carts", "front-end"),
        opened_at=1.0,
        updated_at=10.0,
        anomalies=(
            AnomalyRef("f1", "carts", "carts_cpu", "metric", 1.0, 5.0, 2, 0.9, 40.0, "spike"),
        ),
        anomaly_count=2,
        root_causes=(RootCauseCandidate("carts", "carts_cpu", "cpu", 0.9, "first to move"),),
        actions=(action,),
        acknowledged=True,
        acknowledged_by="alice",
        acknowledged_at=9.0,
        timeline=(TimelineEvent(TimelineKind.OPENED, 1.0, "opened"),),
    )


def test_incident_round_trips_through_json() -> None:
    incident = _incident()
    wire = orjson.dumps(incident.to_dict())
    back = Incident.from_dict(orjson.loads(wire))
    assert back == incident
    assert back.actions[0].params == {"grace_s": 30}


def test_action_dict_uses_plain_strings() -> None:
    data = _incident().actions[0].to_dict()
    assert data["action"] == "restart"
    assert data["status"] == "pending_approval"
    assert type(data["mode"]) is str


def test_severity_is_ordered() -> None:
    assert Severity.INFO.rank < Severity.WARNING.rank < Severity.CRITICAL.rank
