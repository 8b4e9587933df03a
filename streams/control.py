"""Commands on the control topic: silences, acknowledgements, approvals.

Slack buttons and operators (``aiops send control``) publish them; the worker that owns
correlation applies them to its incident engine, so they are ordered with the anomalies
and survive restarts like everything else on Kafka.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from notify.slack.interactions import Acknowledge, Approve, Reject
from notify.slack.interactions import Command as SlackCommand
from rca.engine import IncidentEngine, Outcome
from rca.exceptions import ConfigError, RcaError
from rca.silences import silence_of

log = logging.getLogger(__name__)


def command(kind: str, **fields: Any) -> bytes:
    """Encode one control command.

    >>> command("acknowledge", incident_id="inc-1", user="ana")
    b'{"type":"acknowledge","incident_id":"inc-1","user":"ana"}'
    """
    return orjson.dumps({"type": kind, **fields})


def slack_command(pressed: SlackCommand) -> bytes:
    """The control command for a Slack button press; the user is recorded as ``slack:<name>``.

    >>> slack_command(Acknowledge(incident_id="inc-1", user="ana"))
    b'{"type":"acknowledge","incident_id":"inc-1","user":"slack:ana"}'
    """
    user = f"slack:{pressed.user}"
    if isinstance(pressed, Acknowledge):
        return command("acknowledge", incident_id=pressed.incident_id, user=user)
    if isinstance(pressed, Approve):
        return command("approve", action_id=pressed.action_id, user=user)
    if isinstance(pressed, Reject):
        return command("reject", action_id=pressed.action_id, user=user)
    return command(
        "silence_incident",
        incident_id=pressed.incident_id,
        user=user,
        duration_s=pressed.duration_s,
    )


class InvalidCommand(ValueError):
    """A control record the engine cannot apply; ``reason`` is its dead-letter reason
    (``invalid_json``, ``unknown_command``, ``invalid_command`` or ``refused``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def apply_command(engine: IncidentEngine, payload: bytes, *, now: float | None) -> Outcome:
    """Apply one command to the engine; unreadable or invalid commands are logged, skipped."""
    try:
        return apply_command_checked(engine, payload, now=now)
    except InvalidCommand as exc:
        log.warning("control command skipped: %s", exc)
        return Outcome()


def apply_command_checked(engine: IncidentEngine, payload: bytes, *, now: float | None) -> Outcome:
    """Apply one command to the engine; raises :class:`InvalidCommand` saying why not.

    >>> from rca.engine import IncidentEngine
    >>> apply_command_checked(IncidentEngine(), b'{"type": "reboot"}', now=0.0)
    Traceback (most recent call last):
    ...
    streams.control.InvalidCommand: unknown_command: unknown command type 'reboot'
    """
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidCommand("invalid_json", f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidCommand("invalid_command", "a command must be a JSON object")
    kind = data.get("type")
    try:
        user = str(data.get("user") or "unknown")
        if kind == "silence":
            return engine.add_silence(silence_of(data), at=now)
        if kind == "expire_silence":
            return engine.expire_silence(str(data["id"]), at=now)
        if kind == "acknowledge":
            return engine.acknowledge(str(data["incident_id"]), user, at=now)
        if kind == "silence_incident":
            at = now if now is not None else engine.now
            until = at + float(data.get("duration_s", 3600))
            return engine.silence_incident(
                str(data["incident_id"]),
                until=until,
                user=user,
                at=now,
                comment=str(data.get("comment") or ""),
            )
        if kind == "resolve":
            return engine.resolve(str(data["incident_id"]), user, at=now)
        if kind == "approve":
            return engine.approve(str(data["action_id"]), user, at=now)
        if kind == "reject":
            return engine.reject(str(data["action_id"]), user, at=now)
    except KeyError as exc:
        raise InvalidCommand("invalid_command", f"{kind} command without {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise InvalidCommand("invalid_command", f"{kind} command: {exc}") from exc
    except ConfigError as exc:  # a malformed silence
        raise InvalidCommand("invalid_command", f"{kind} command: {exc}") from exc
    except RcaError as exc:  # an unknown incident or action, a decided action
        raise InvalidCommand("refused", f"{kind} command: {exc}") from exc
    raise InvalidCommand("unknown_command", f"unknown command type {kind!r}")
