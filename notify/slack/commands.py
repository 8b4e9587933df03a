"""Applying a button press to the incident engine.

The worker's interaction endpoint calls :func:`apply_command` with the command parsed by
:class:`~notify.slack.interactions.InteractionHandler`, then publishes the outcome as
usual: incident snapshots to the incidents topic (the message is updated through the
normal delivery path) and approved actions to the actions topic. Operations that do not
apply (unknown incident, action already decided) raise :class:`rca.exceptions.RcaError`
subclasses; answer Slack 200 anyway and log them.
"""

from __future__ import annotations

from typing import Protocol

from notify.slack.interactions import Acknowledge, Approve, Command, Reject, Silence
from rca.engine import Outcome


class IncidentOperations(Protocol):
    """The operations of :class:`rca.engine.IncidentEngine` that buttons trigger."""

    def acknowledge(self, incident_id: str, user: str, *, at: float | None = None) -> Outcome:
        """See :meth:`rca.engine.IncidentEngine.acknowledge`."""
        ...

    def approve(self, action_id: str, user: str, *, at: float | None = None) -> Outcome:
        """See :meth:`rca.engine.IncidentEngine.approve`."""
        ...

    def reject(self, action_id: str, user: str, *, at: float | None = None) -> Outcome:
        """See :meth:`rca.engine.IncidentEngine.reject`."""
        ...

    def silence_incident(
        self, incident_id: str, *, until: float, user: str, at: float | None = None
    ) -> Outcome:
        """See :meth:`rca.engine.IncidentEngine.silence_incident`."""
        ...


def apply_command(engine: IncidentOperations, command: Command, *, at: float) -> Outcome:
    """Apply one button press; returns the engine's outcome to publish.

    ``user`` is recorded as ``slack:<name>`` so the timeline says where it came from.
    """
    user = f"slack:{command.user}"
    if isinstance(command, Acknowledge):
        return engine.acknowledge(command.incident_id, user, at=at)
    if isinstance(command, Approve):
        return engine.approve(command.action_id, user, at=at)
    if isinstance(command, Reject):
        return engine.reject(command.action_id, user, at=at)
    if isinstance(command, Silence):
        return engine.silence_incident(
            command.incident_id, until=at + command.duration_s, user=user, at=at
        )
    raise TypeError(f"not a command: {command!r}")
