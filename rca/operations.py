"""Operations people apply to incidents (from Slack buttons or the control topic).

Pure functions: each takes an incident snapshot and returns the next one, with the version
bumped by one and a timeline entry. :class:`rca.engine.IncidentEngine` applies them to
the incidents it owns and publishes the result; call them directly only on a copy you own.
"""

from __future__ import annotations

import dataclasses

from rca.exceptions import InvalidTransitionError, UnknownActionError
from rca.model import (
    ActionStatus,
    Incident,
    RemediationAction,
    TimelineEvent,
    TimelineKind,
)

_DECIDABLE = {ActionStatus.PENDING_APPROVAL, ActionStatus.SUGGESTED}


def _next(incident: Incident, at: float, event: TimelineEvent, **changes: object) -> Incident:
    return dataclasses.replace(
        incident,
        version=incident.version + 1,
        updated_at=max(incident.updated_at, at),
        timeline=(*incident.timeline, event),
        **changes,  # type: ignore[arg-type]
    )


def acknowledge(incident: Incident, *, user: str, at: float) -> Incident:
    """Mark the incident as taken by ``user``.

    >>> from rca.model import IncidentState, Severity
    >>> inc = Incident(id="i", version=1, state=IncidentState.OPENED,
    ...                severity=Severity.WARNING, title="t", services=("a",),
    ...                opened_at=0.0, updated_at=0.0)
    >>> acked = acknowledge(inc, user="alice", at=5.0)
    >>> acked.acknowledged_by, acked.version
    ('alice', 2)
    """
    return _next(
        incident,
        at,
        TimelineEvent(TimelineKind.ACKNOWLEDGED, at, f"acknowledged by {user}"),
        acknowledged=True,
        acknowledged_by=user,
        acknowledged_at=at,
    )


def silence(incident: Incident, *, until: float, by: str, at: float) -> Incident:
    """Mark the incident silenced until ``until`` (no notifications nor actions)."""
    if until <= at:
        raise InvalidTransitionError(f"silence of {incident.id} would end before it starts")
    return _next(
        incident,
        at,
        TimelineEvent(TimelineKind.SILENCED, at, f"silenced by {by} until {until:.0f}"),
        silenced=True,
        silenced_until=until,
        silenced_by=by,
    )


def unsilence(incident: Incident, *, at: float, reason: str) -> Incident:
    """Clear the silenced flag (the silence ended or was expired)."""
    return _next(
        incident,
        at,
        TimelineEvent(TimelineKind.SILENCED, at, f"no longer silenced ({reason})"),
        silenced=False,
        silenced_until=None,
        silenced_by=None,
    )


def find_action(incident: Incident, action_id: str) -> RemediationAction:
    """The incident's action with that id."""
    for action in incident.actions:
        if action.id == action_id:
            return action
    raise UnknownActionError(f"incident {incident.id} has no action {action_id}")


def decide_action(
    incident: Incident, action_id: str, *, approve: bool, user: str, at: float
) -> tuple[Incident, RemediationAction]:
    """Approve or reject a pending (or suggested) action.

    Returns the new incident and the decided action (status ``approved`` or
    ``rejected``). The engine then dispatches approved actions through its guardrails.
    Raises :class:`~rca.exceptions.InvalidTransitionError` if the action was already
    decided or the incident is resolved (approving), and
    :class:`~rca.exceptions.UnknownActionError` for an unknown id.
    """
    action = find_action(incident, action_id)
    if action.status not in _DECIDABLE:
        raise InvalidTransitionError(f"action {action_id} is already {action.status}")
    if approve and not incident.is_open:
        raise InvalidTransitionError(f"incident {incident.id} is resolved; nothing to approve")
    status = ActionStatus.APPROVED if approve else ActionStatus.REJECTED
    decided = dataclasses.replace(action, status=status, decided_by=user, decided_at=at)
    verb = "approved" if approve else "rejected"
    return (
        _next(
            incident,
            at,
            TimelineEvent(
                TimelineKind.ACTION, at, f"{action.action} {action.target} {verb} by {user}"
            ),
            actions=replace_action(incident.actions, decided),
        ),
        decided,
    )


def replace_action(
    actions: tuple[RemediationAction, ...], new: RemediationAction
) -> tuple[RemediationAction, ...]:
    """The actions with the one of the same id replaced (or appended)."""
    if any(a.id == new.id for a in actions):
        return tuple(new if a.id == new.id else a for a in actions)
    return (*actions, new)
