"""Incident domain types: what the incident engine publishes and the notifiers consume.

Every type is a frozen dataclass with ``to_dict()`` (JSON-ready: only str, int, float,
bool, None, lists and dicts, so ``orjson.dumps`` accepts it) and ``from_dict()``, its
inverse. An :class:`Incident` is published whole on every change, so a subscriber can
rebuild current state from the incidents topic alone (see ``docs/incidents.md``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class IncidentState(StrEnum):
    """Lifecycle state of an incident."""

    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """How bad an incident is; ordered ``info < warning < critical``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order ``info < warning < critical``."""
        return _SEVERITY_ORDER[self]


_SEVERITY_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class ActionType(StrEnum):
    """What a remediation action does."""

    RESTART = "restart"
    SCALE_OUT = "scale_out"
    ROLLBACK = "rollback"
    CUSTOM = "custom"


class ActionMode(StrEnum):
    """How far the engine may go with an action on its own."""

    SUGGEST = "suggest"
    """Only shown to people; never executed by the engine."""
    AUTO = "auto"
    """Published for execution at once (subject to cooldowns, caps and dry-run)."""
    APPROVAL = "approval"
    """Executed once a person approves it."""


class ActionStatus(StrEnum):
    """Where an action stands."""

    SUGGESTED = "suggested"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISPATCHED = "dispatched"
    """Published for execution (mode ``auto``, or ``approval`` once approved)."""
    DRY_RUN = "dry_run"
    """Would have been dispatched, but the engine runs in dry-run mode."""
    SUPPRESSED = "suppressed"
    """Held back by a guardrail (cooldown, rate cap, silence, resolved incident)."""
    CANCELLED = "cancelled"
    """Pending when its incident resolved; never executed."""


class TimelineKind(StrEnum):
    """What happened to an incident at a point of its timeline."""

    OPENED = "opened"
    ANOMALY = "anomaly"
    ESCALATED = "escalated"
    RANKING = "ranking"
    SEVERITY = "severity"
    ACTION = "action"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    RESOLVED = "resolved"
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class RootCauseCandidate:
    """One ranked root-cause candidate of an incident.

    Parameters
    ----------
    service
        The candidate service.
    signal
        The signal within the service that carries the strongest evidence.
    kind
        Signal kind inferred from the signal name: ``cpu``, ``memory``, ``latency``,
        ``errors``, ``traffic``, ``log``, ``new_template``, ``predicted`` or ``other``.
    score
        Ranking score in 0..1, higher is more likely; comparable within one incident.
    explanation
        One line a person can read, e.g. ``"cpu 41.0 robust sigma above its baseline,
        first to move, dependencies healthy"``.
    magnitude
        Peak robust deviation of ``signal`` against its own baseline (in robust sigma),
        when known; comparable across incidents, unlike ``score``.
    """

    service: str
    signal: str
    kind: str
    score: float
    explanation: str
    magnitude: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RootCauseCandidate:
        """Inverse of :meth:`to_dict`."""
        return cls(
            service=str(data["service"]),
            signal=str(data["signal"]),
            kind=str(data["kind"]),
            score=float(data["score"]),
            explanation=str(data.get("explanation", "")),
            magnitude=None if data.get("magnitude") is None else float(data["magnitude"]),
        )


@dataclass(frozen=True, slots=True)
class AnomalyRef:
    """Summary of one signal's anomalies inside an incident (folded by fingerprint).

    Parameters
    ----------
    fingerprint
        :attr:`detectors.anomaly.Anomaly.fingerprint` of the signal.
    service, signal, kind
        Identity of the signal (``kind`` is the anomaly's ``SignalKind`` value).
    first_seen, last_seen
        Event times of the first and the latest record of the signal.
    count
        Number of anomaly records folded into this entry.
    peak_score
        Highest detector score seen.
    peak_z
        Highest robust deviation reported (``details["z"]``), if any detector gave one.
    direction
        Direction of the latest record.
    """

    fingerprint: str
    service: str
    signal: str
    kind: str
    first_seen: float
    last_seen: float
    count: int
    peak_score: float
    peak_z: float | None = None
    direction: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnomalyRef:
        """Inverse of :meth:`to_dict`."""
        peak_z = data.get("peak_z")
        return cls(
            fingerprint=str(data["fingerprint"]),
            service=str(data["service"]),
            signal=str(data["signal"]),
            kind=str(data["kind"]),
            first_seen=float(data["first_seen"]),
            last_seen=float(data["last_seen"]),
            count=int(data["count"]),
            peak_score=float(data["peak_score"]),
            peak_z=None if peak_z is None else float(peak_z),
            direction=str(data.get("direction", "")),
        )


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One entry of an incident's timeline.

    Parameters
    ----------
    kind
        What happened (see :class:`TimelineKind`).
    at
        Event time (epoch seconds).
    text
        One human-readable line.
    """

    kind: TimelineKind
    at: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": str(self.kind), "at": self.at, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimelineEvent:
        """Inverse of :meth:`to_dict`."""
        return cls(kind=TimelineKind(data["kind"]), at=float(data["at"]), text=str(data["text"]))


@dataclass(frozen=True, slots=True)
class RemediationAction:
    """One remediation action proposed for an incident, as published on the actions topic.

    Parameters
    ----------
    id
        Unique id of this action record.
    idempotency_key
        Same key for the same action on the same target for the same incident episode:
        an executor that has seen the key must not act again.
    incident_id
        The incident the action belongs to.
    action
        Restart, scale out, roll back or custom.
    target
        What to act on (usually a service name).
    params
        Action parameters from the rule (e.g. ``{"replicas": 2}``), JSON-ready.
    reason
        One line saying why (rule name and root cause).
    confidence
        Root-cause score of the target, 0..1.
    mode
        Suggest, auto or approval (from the rule).
    status
        Where the action stands.
    rule
        Name of the remediation rule that proposed it.
    created_at
        Event time of the proposal.
    decided_by, decided_at
        Who approved or rejected it, and when.
    dry_run
        True when the engine runs in dry-run mode: executors must not act.
    """

    id: str
    idempotency_key: str
    incident_id: str
    action: ActionType
    target: str
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    reason: str = ""
    confidence: float = 0.0
    mode: ActionMode = ActionMode.SUGGEST
    status: ActionStatus = ActionStatus.SUGGESTED
    rule: str = ""
    created_at: float = 0.0
    decided_by: str | None = None
    decided_at: float | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = dataclasses.asdict(self)
        data["action"] = str(self.action)
        data["mode"] = str(self.mode)
        data["status"] = str(self.status)
        data["params"] = dict(self.params)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RemediationAction:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""
        decided_at = data.get("decided_at")
        return cls(
            id=str(data["id"]),
            idempotency_key=str(data["idempotency_key"]),
            incident_id=str(data["incident_id"]),
            action=ActionType(data["action"]),
            target=str(data["target"]),
            params=dict(data.get("params") or {}),
            reason=str(data.get("reason", "")),
            confidence=float(data.get("confidence", 0.0)),
            mode=ActionMode(data.get("mode", ActionMode.SUGGEST)),
            status=ActionStatus(data.get("status", ActionStatus.SUGGESTED)),
            rule=str(data.get("rule", "")),
            created_at=float(data.get("created_at", 0.0)),
            decided_by=data.get("decided_by"),
            decided_at=None if decided_at is None else float(decided_at),
            dry_run=bool(data.get("dry_run", False)),
        )


@dataclass(frozen=True, slots=True)
class Incident:
    """Full snapshot of one incident; published on every change, keyed by ``id``.

    Parameters
    ----------
    id
        Deterministic id (derived from the first anomaly), stable across restarts.
    version
        Starts at 1 and increases by one per published change.
    state
        Opened, updated or resolved (a reopened incident goes back to ``updated``).
    severity
        Current severity.
    title
        One line, e.g. ``"carts: cpu anomaly (+4 signals in 3 services)"``.
    services
        Services with anomalies in the incident, sorted.
    opened_at, updated_at, resolved_at
        Event times: first anomaly, latest change, resolution (None while open).
    anomalies
        One :class:`AnomalyRef` per signal (fingerprint), in order of onset.
    anomaly_count
        Total anomaly records folded into the incident (duplicates included).
    root_causes
        Top candidates, best first.
    actions
        Remediation actions proposed for the incident.
    predicted
        True while the incident rests only on forecasts (nothing has happened yet).
    time_left
        For a predicted incident: seconds from ``updated_at`` to the earliest forecast
        limit crossing.
    silenced, silenced_until, silenced_by
        Whether a silence matches the incident (it is recorded, but not notified nor
        acted on), until when, and which silence or user.
    acknowledged, acknowledged_by, acknowledged_at
        Whether a person took the incident.
    reopened
        How many times the incident reopened after resolving (flap protection).
    timeline
        What happened, in order.
    """

    id: str
    version: int
    state: IncidentState
    severity: Severity
    title: str
    services: tuple[str, ...]
    opened_at: float
    updated_at: float
    resolved_at: float | None = None
    anomalies: tuple[AnomalyRef, ...] = ()
    anomaly_count: int = 0
    root_causes: tuple[RootCauseCandidate, ...] = ()
    actions: tuple[RemediationAction, ...] = ()
    predicted: bool = False
    time_left: float | None = None
    silenced: bool = False
    silenced_until: float | None = None
    silenced_by: str | None = None
    acknowledged: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    reopened: int = 0
    timeline: tuple[TimelineEvent, ...] = ()

    @property
    def is_open(self) -> bool:
        """True unless resolved."""
        return self.state is not IncidentState.RESOLVED

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """Fingerprints of the signals in the incident."""
        return tuple(ref.fingerprint for ref in self.anomalies)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as published on the incidents topic."""
        return {
            "id": self.id,
            "version": self.version,
            "state": str(self.state),
            "severity": str(self.severity),
            "title": self.title,
            "services": list(self.services),
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
            "anomalies": [ref.to_dict() for ref in self.anomalies],
            "anomaly_count": self.anomaly_count,
            "root_causes": [rc.to_dict() for rc in self.root_causes],
            "actions": [action.to_dict() for action in self.actions],
            "predicted": self.predicted,
            "time_left": self.time_left,
            "silenced": self.silenced,
            "silenced_until": self.silenced_until,
            "silenced_by": self.silenced_by,
            "acknowledged": self.acknowledged,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": self.acknowledged_at,
            "reopened": self.reopened,
            "timeline": [event.to_dict() for event in self.timeline],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""

        def _opt_float(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            id=str(data["id"]),
            version=int(data["version"]),
            state=IncidentState(data["state"]),
            severity=Severity(data["severity"]),
            title=str(data.get("title", "")),
            services=tuple(str(s) for s in data.get("services") or ()),
            opened_at=float(data["opened_at"]),
            updated_at=float(data["updated_at"]),
            resolved_at=_opt_float("resolved_at"),
            anomalies=tuple(AnomalyRef.from_dict(a) for a in data.get("anomalies") or ()),
            anomaly_count=int(data.get("anomaly_count", 0)),
            root_causes=tuple(
                RootCauseCandidate.from_dict(rc) for rc in data.get("root_causes") or ()
            ),
            actions=tuple(RemediationAction.from_dict(a) for a in data.get("actions") or ()),
            predicted=bool(data.get("predicted", False)),
            time_left=_opt_float("time_left"),
            silenced=bool(data.get("silenced", False)),
            silenced_until=_opt_float("silenced_until"),
            silenced_by=data.get("silenced_by"),
            acknowledged=bool(data.get("acknowledged", False)),
            acknowledged_by=data.get("acknowledged_by"),
            acknowledged_at=_opt_float("acknowledged_at"),
            reopened=int(data.get("reopened", 0)),
            timeline=tuple(TimelineEvent.from_dict(e) for e in data.get("timeline") or ()),
        )
