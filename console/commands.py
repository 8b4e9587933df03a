"""The console's buttons and forms as commands on the control topic; pure.

Each request is checked against the console's view (an unknown incident is 404, one that
has resolved meanwhile is 409) and its body against the command's fields (a bad field is
422 naming it); what comes out is the same command the Slack buttons send, for the engine
to apply. The engine stays the one owner of incident state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from console.view import ConsoleView
from rca.exceptions import ConfigError
from rca.model import ActionStatus
from rca.silences import parse_silence

MAX_SILENCE_S = 90 * 86400.0
"""The longest silence the console creates (90 days): longer ones are a mistake."""


class RequestError(Exception):
    """A request the console refuses: HTTP status, the field at fault (if one), the reason."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body."""
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


@dataclass(frozen=True, slots=True)
class Command:
    """A control command to publish: its key (the incident, so it is ordered with it)."""

    key: str
    body: dict[str, Any]


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise RequestError(422, "the body must be a JSON object")
    for name in body:
        if name not in allowed:
            raise RequestError(422, f"unknown field {name!r}", field=str(name))
    return body


def _text(body: dict[str, Any], name: str, *, limit: int = 1000) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RequestError(422, f"{name!r} must be a string", field=name)
    if len(value) > limit:
        raise RequestError(422, f"{name!r} is longer than {limit} characters", field=name)
    return value


def _duration(body: dict[str, Any], name: str = "duration_s", default: float = 3600.0) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(422, f"{name!r} must be a number of seconds", field=name)
    if not 0 < value <= MAX_SILENCE_S:
        raise RequestError(
            422, f"{name!r} must be more than 0 and at most {MAX_SILENCE_S:.0f}", field=name
        )
    return float(value)


def _open_incident(view: ConsoleView, incident_id: str) -> None:
    incident = view.get(incident_id)
    if incident is None:
        raise RequestError(404, f"unknown incident {incident_id}")
    if not incident.is_open:
        raise RequestError(409, f"incident {incident_id} is resolved; nothing was changed")


def acknowledge(view: ConsoleView, incident_id: str, body: Any, user: str) -> Command:
    """Acknowledge an open incident."""
    _object(body, set())
    _open_incident(view, incident_id)
    return Command(incident_id, {"type": "acknowledge", "incident_id": incident_id, "user": user})


def resolve(view: ConsoleView, incident_id: str, body: Any, user: str) -> Command:
    """Resolve an open incident by hand."""
    _object(body, set())
    _open_incident(view, incident_id)
    return Command(incident_id, {"type": "resolve", "incident_id": incident_id, "user": user})


def silence_incident(view: ConsoleView, incident_id: str, body: Any, user: str) -> Command:
    """Silence an open incident's services for ``duration_s``."""
    fields = _object(body, {"duration_s", "comment"})
    duration = _duration(fields)
    comment = _text(fields, "comment")
    _open_incident(view, incident_id)
    return Command(
        incident_id,
        {
            "type": "silence_incident",
            "incident_id": incident_id,
            "user": user,
            "duration_s": duration,
            "comment": comment,
        },
    )


def silence(view: ConsoleView, body: Any, user: str, *, now: float) -> Command:
    """A new silence: ``matchers`` (Alertmanager style), ``duration_s`` or ``ends_at``,
    optional ``starts_at`` and ``comment``; the author is the signed-in user."""
    fields = _object(body, {"matchers", "duration_s", "starts_at", "ends_at", "comment"})
    matchers = fields.get("matchers")
    if not isinstance(matchers, list) or not matchers:
        raise RequestError(422, "'matchers' must be a non-empty list", field="matchers")
    starts_at = fields.get("starts_at", now)
    if "ends_at" in fields and "duration_s" in fields:
        raise RequestError(422, "give 'duration_s' or 'ends_at', not both", field="ends_at")
    if "ends_at" not in fields:
        if isinstance(starts_at, bool) or not isinstance(starts_at, int | float):
            raise RequestError(422, "'starts_at' must be epoch seconds", field="starts_at")
        ends_at: Any = float(starts_at) + _duration(fields)
    else:
        ends_at = fields["ends_at"]
    comment = _text(fields, "comment")
    digest = hashlib.sha256(
        repr((sorted(map(str, matchers)), starts_at, ends_at, user, comment)).encode()
    ).hexdigest()[:12]
    data = {
        "id": f"console-{digest}",
        "matchers": matchers,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "created_by": user,
        "comment": comment,
    }
    try:
        checked = parse_silence(data, source="request", index=0)
    except ConfigError as exc:
        raise RequestError(422, exc.problem, field=_field_of(exc.problem)) from exc
    except ValueError as exc:
        raise RequestError(422, str(exc), field="matchers") from exc
    if checked.ends_at <= checked.starts_at:
        raise RequestError(422, "the silence ends before it starts", field="ends_at")
    return Command(checked.id, {"type": "silence", **checked.to_dict()})


def expire_silence(view: ConsoleView, silence_id: str, body: Any, user: str) -> Command:
    """End a silence now."""
    _object(body, set())
    known = {s.id: s for s in view.silences}
    silence = known.get(silence_id)
    if silence is None:
        raise RequestError(404, f"unknown silence {silence_id}")
    if silence.ends_at <= view.now:
        raise RequestError(409, f"silence {silence_id} has already ended")
    return Command(silence_id, {"type": "expire_silence", "id": silence_id, "user": user})


def decide(view: ConsoleView, action_id: str, body: Any, user: str, *, approve: bool) -> Command:
    """Approve or reject an action that awaits approval."""
    _object(body, set())
    action = view.action(action_id)
    if action is None:
        raise RequestError(404, f"unknown action {action_id}")
    if action.status is not ActionStatus.PENDING_APPROVAL:
        raise RequestError(409, f"action {action_id} is {action.status}, not pending approval")
    incident = view.get(action.incident_id)
    if incident is not None and not incident.is_open:
        raise RequestError(409, f"incident {action.incident_id} is resolved; nothing was changed")
    kind = "approve" if approve else "reject"
    return Command(action.incident_id, {"type": kind, "action_id": action_id, "user": user})


def _field_of(message: str) -> str:
    """The field a silence problem names first (a matcher that does not parse names none)."""
    found = [
        (message.find(f"'{name}'"), name)
        for name in ("matchers", "starts_at", "ends_at", "comment", "created_by", "id")
        if f"'{name}'" in message
    ]
    return min(found)[1] if found else "matchers"
