"""A sample incident's life (six snapshots), for demos and previews of the Slack message."""

from __future__ import annotations

import dataclasses

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


def sample_life(start: float = 1_767_225_600.0) -> list[Incident]:
    """Opened on ``carts``, ``orders`` joins, the root cause moves to ``orders``, a
    restart waits for approval, the severity goes critical, then it resolves.

    >>> [s.state.value for s in sample_life()]
    ['opened', 'updated', 'updated', 'updated', 'updated', 'resolved']
    """

    def ref(service: str, signal: str, at: float, fp: str) -> AnomalyRef:
        return AnomalyRef(fp, service, signal, "metric", at, at + 40, 4, 0.99, 18.0, "spike")

    def step(prev: Incident, at: float, event: TimelineEvent, **changes: object) -> Incident:
        state = changes.pop("state", IncidentState.UPDATED)
        return dataclasses.replace(
            prev,
            version=prev.version + 1,
            state=state,  # type: ignore[arg-type]
            updated_at=at,
            timeline=(*prev.timeline, event),
            **changes,  # type: ignore[arg-type]
        )

    t = start
    v1 = Incident(
        id="inc-4f1c2a9e07d35b68",
        version=1,
        state=IncidentState.OPENED,
        severity=Severity.WARNING,
        title="carts: cpu anomaly (2 signals)",
        services=("carts",),
        opened_at=t,
        updated_at=t + 15,
        anomalies=(
            ref("carts", "cpu_usage", t, "9c1d6f0a4b2e8371"),
            ref("carts", "http_latency_p99", t + 15, "2b7e4c91d05a6f38"),
        ),
        anomaly_count=7,
        root_causes=(
            RootCauseCandidate(
                "carts", "cpu_usage", "cpu", 0.86, "cpu 18.0 robust sigma above baseline, first"
            ),
            RootCauseCandidate("carts", "http_latency_p99", "latency", 0.41, "follows cpu"),
        ),
        timeline=(
            TimelineEvent(TimelineKind.OPENED, t, "carts cpu_usage spike (score 0.99, z=18.0)"),
            TimelineEvent(TimelineKind.ANOMALY, t + 15, "carts http_latency_p99 spike"),
            TimelineEvent(TimelineKind.RANKING, t + 15, "top root cause: carts cpu_usage"),
        ),
    )
    v2 = step(
        v1,
        t + 70,
        TimelineEvent(TimelineKind.ANOMALY, t + 70, "orders http_latency_p99 spike"),
        services=("carts", "orders"),
        anomalies=(*v1.anomalies, ref("orders", "http_latency_p99", t + 70, "77a0e3d2c4f1b596")),
        anomaly_count=11,
        title="carts: cpu anomaly (3 signals in 2 services)",
    )
    v3 = step(
        v2,
        t + 100,
        TimelineEvent(
            TimelineKind.RANKING, t + 100, "top root cause: orders http_latency_p99 (deploy 14:02)"
        ),
        root_causes=(
            RootCauseCandidate(
                "orders",
                "http_latency_p99",
                "latency",
                0.79,
                "latency 25.3 robust sigma above baseline; carts calls orders",
            ),
            RootCauseCandidate(
                "carts", "cpu_usage", "cpu", 0.58, "cpu 18.0 robust sigma above baseline"
            ),
            RootCauseCandidate("carts", "http_latency_p99", "latency", 0.33, "follows orders"),
        ),
        title="orders: latency anomaly (3 signals in 2 services)",
    )
    action = RemediationAction(
        id="act-5e2b",
        idempotency_key="inc-4f1c2a9e07d35b68:rollback:orders",
        incident_id=v1.id,
        action=ActionType.ROLLBACK,
        target="orders",
        reason="rule rollback-on-latency: orders http_latency_p99",
        confidence=0.79,
        mode=ActionMode.APPROVAL,
        status=ActionStatus.PENDING_APPROVAL,
        rule="rollback-on-latency",
        created_at=t + 100,
    )
    v4 = step(
        v3,
        t + 100,
        TimelineEvent(TimelineKind.ACTION, t + 100, "rollback orders: pending_approval"),
        actions=(action,),
    )
    v5 = step(
        v4,
        t + 130,
        TimelineEvent(TimelineKind.SEVERITY, t + 130, "severity warning -> critical"),
        severity=Severity.CRITICAL,
    )
    approved = dataclasses.replace(
        action, status=ActionStatus.DISPATCHED, decided_by="slack:alice", decided_at=t + 190
    )
    v6 = step(
        v5,
        t + 780,
        TimelineEvent(TimelineKind.RESOLVED, t + 780, "quiet for 300s"),
        state=IncidentState.RESOLVED,
        resolved_at=t + 780,
        actions=(approved,),
        acknowledged=True,
        acknowledged_by="slack:alice",
        acknowledged_at=t + 160,
    )
    return [v1, v2, v3, v4, v5, v6]
