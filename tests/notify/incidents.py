"""Incident snapshots for notifier tests: one incident's life, built by hand."""

from __future__ import annotations

import dataclasses

from detectors.anomaly import Anomaly, Direction, SignalKind
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

T0 = 1_700_000_000.0


def fingerprint(service: str, signal: str) -> str:
    """The fingerprint of a metric series without host nor labels."""
    return Anomaly(
        service, signal, SignalKind.METRIC, 0.0, 0.0, 0.0, Direction.SPIKE, "d"
    ).fingerprint


def ref(service: str, signal: str, first_seen: float, kind: str = "metric") -> AnomalyRef:
    return AnomalyRef(
        fingerprint=fingerprint(service, signal),
        service=service,
        signal=signal,
        kind=kind,
        first_seen=first_seen,
        last_seen=first_seen + 30,
        count=3,
        peak_score=0.99,
        peak_z=12.0,
        direction="spike",
    )


def opened(incident_id: str = "inc-carts", at: float = T0, **changes: object) -> Incident:
    """Version 1: carts cpu, one root-cause candidate."""
    base = Incident(
        id=incident_id,
        version=1,
        state=IncidentState.OPENED,
        severity=Severity.WARNING,
        title="carts: cpu anomaly (2 signals)",
        services=("carts",),
        opened_at=at,
        updated_at=at + 20,
        anomalies=(ref("carts", "cpu", at), ref("carts", "latency_p99", at + 20)),
        anomaly_count=6,
        root_causes=(
            RootCauseCandidate(
                "carts", "cpu", "cpu", 0.91, "cpu 41.0 robust sigma above its baseline"
            ),
            RootCauseCandidate("carts", "latency_p99", "latency", 0.55, "follows cpu"),
        ),
        timeline=(
            TimelineEvent(TimelineKind.OPENED, at, "carts cpu spike (score 0.99, z=41.0)"),
            TimelineEvent(TimelineKind.ANOMALY, at + 20, "carts latency_p99 spike"),
            TimelineEvent(TimelineKind.RANKING, at + 20, "top root cause: carts cpu"),
        ),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def step(incident: Incident, at: float, *events: TimelineEvent, **changes: object) -> Incident:
    """The next version with some events appended."""
    return dataclasses.replace(
        incident,
        version=incident.version + 1,
        state=changes.pop("state", IncidentState.UPDATED),  # type: ignore[arg-type]
        updated_at=at,
        timeline=(*incident.timeline, *events),
        **changes,  # type: ignore[arg-type]
    )


def pending_action(incident_id: str, at: float) -> RemediationAction:
    return RemediationAction(
        id=f"act-{incident_id}-1",
        idempotency_key=f"{incident_id}:restart:orders",
        incident_id=incident_id,
        action=ActionType.RESTART,
        target="orders",
        reason="rule restart-on-latency: orders latency_p99",
        confidence=0.8,
        mode=ActionMode.APPROVAL,
        status=ActionStatus.PENDING_APPROVAL,
        rule="restart-on-latency",
        created_at=at,
    )


def life(incident_id: str = "inc-carts", at: float = T0) -> list[Incident]:
    """Open, new service, root cause change, action, severity change, resolution."""
    v1 = opened(incident_id, at)
    v2 = step(
        v1,
        at + 60,
        TimelineEvent(TimelineKind.ANOMALY, at + 60, "orders latency_p99 spike"),
        services=("carts", "orders"),
        anomalies=(*v1.anomalies, ref("orders", "latency_p99", at + 60)),
        anomaly_count=9,
    )
    v3 = step(
        v2,
        at + 90,
        TimelineEvent(TimelineKind.RANKING, at + 90, "top root cause: orders latency_p99"),
        root_causes=(
            RootCauseCandidate("orders", "latency_p99", "latency", 0.88, "first to move"),
            *v2.root_causes,
        ),
        title="orders: latency anomaly (3 signals in 2 services)",
    )
    action = pending_action(incident_id, at + 95)
    v4 = step(
        v3,
        at + 95,
        TimelineEvent(TimelineKind.ACTION, at + 95, "restart orders: pending_approval"),
        actions=(action,),
    )
    v5 = step(
        v4,
        at + 120,
        TimelineEvent(TimelineKind.SEVERITY, at + 120, "severity warning -> critical"),
        severity=Severity.CRITICAL,
    )
    v6 = step(
        v5,
        at + 600,
        TimelineEvent(TimelineKind.RESOLVED, at + 600, "quiet for 300s"),
        state=IncidentState.RESOLVED,
        resolved_at=at + 600,
        actions=(dataclasses.replace(action, status=ActionStatus.CANCELLED),),
    )
    return [v1, v2, v3, v4, v5, v6]
