"""Slack's button presses: request signature checks and payload parsing (pure).

Slack signs every interaction request: ``X-Slack-Signature`` is ``v0=`` and the hex
HMAC-SHA256 of ``v0:<X-Slack-Request-Timestamp>:<raw body>`` keyed by the app's signing
secret. A request without both headers, with a wrong signature, or with a timestamp
more than five minutes away from now is refused with 401, and so is a request whose
signature was already accepted within those five minutes (a replay); a body over
:data:`MAX_BODY_BYTES` gets 413 before anything else is looked at; a signed request whose
payload is not a button press of ours gets 400. The worker's HTTP
endpoint passes headers and the raw body to :meth:`InteractionHandler.handle`, applies
the returned command to the incident engine and answers Slack with the status.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from notify.slack.render import ACK_ACTION, APPROVE_ACTION, REJECT_ACTION, SILENCE_ACTION

MAX_SKEW_S = 300.0
MAX_BODY_BYTES = 64 * 1024
"""Slack's interaction payloads are a few kilobytes; anything much larger is not Slack."""
SILENCE_S = 3600.0
_MAX_SEEN = 100_000


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """Someone took the incident."""

    incident_id: str
    user: str


@dataclass(frozen=True, slots=True)
class Approve:
    """Someone approved a remediation action waiting for approval."""

    action_id: str
    incident_id: str
    user: str


@dataclass(frozen=True, slots=True)
class Reject:
    """Someone rejected a remediation action waiting for approval."""

    action_id: str
    incident_id: str
    user: str


@dataclass(frozen=True, slots=True)
class Silence:
    """Someone silenced the incident for ``duration_s``."""

    incident_id: str
    user: str
    duration_s: float = SILENCE_S


Command = Acknowledge | Approve | Reject | Silence


@dataclass(frozen=True, slots=True)
class InteractionResult:
    """What to answer Slack, and the command to apply (only with status 200).

    Parameters
    ----------
    status
        200, 400 (malformed or not ours) or 401 (unsigned, mis-signed, stale).
    command
        The parsed command.
    reason
        Why a request was refused (for logs; never contains the secret).
    channel, message_ts
        Where the button was pressed.
    """

    status: int
    command: Command | None = None
    reason: str = ""
    channel: str = ""
    message_ts: str = ""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's ``v0`` signature of a request (what Slack puts in ``X-Slack-Signature``).

    >>> sign("s3cret", "1700000000", b"payload=%7B%7D")[:3]
    'v0='
    """
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class InteractionHandler:
    """Verifies and parses Slack interaction requests.

    Parameters
    ----------
    signing_secret
        The Slack app's signing secret.
    clock
        Current time in epoch seconds.

    >>> handler = InteractionHandler("s3cret", clock=lambda: 1700000000.0)
    >>> handler.handle({}, b"payload=%7B%7D").status
    401
    """

    def __init__(self, signing_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not signing_secret:
            raise ValueError("a signing secret is required to accept interactions")
        self._secret = signing_secret
        self._clock = clock
        self._seen: dict[str, float] = {}  # accepted signature -> its timestamp

    def __repr__(self) -> str:
        return "InteractionHandler(signing_secret=<redacted>)"

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Empty string if the request is signed by Slack and fresh, else the reason."""
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp = lower.get("x-slack-request-timestamp", "")
        signature = lower.get("x-slack-signature", "")
        if not timestamp or not signature:
            return "unsigned request"
        try:
            sent = float(timestamp)
        except ValueError:
            return "bad timestamp"
        if abs(self._clock() - sent) > MAX_SKEW_S:
            return "stale timestamp"
        if not hmac.compare_digest(sign(self._secret, timestamp, body), signature):
            return "bad signature"
        seen = self._seen  # in arrival order: the oldest first
        horizon = self._clock() - MAX_SKEW_S
        while seen and (next(iter(seen.values())) < horizon or len(seen) > _MAX_SEEN):
            del seen[next(iter(seen))]
        if signature in seen:
            return "replayed request"
        seen[signature] = sent
        return ""

    def handle(self, headers: Mapping[str, str], body: bytes) -> InteractionResult:
        """Verify, then parse a ``block_actions`` payload into a command."""
        if len(body) > MAX_BODY_BYTES:
            return InteractionResult(413, reason=f"body over {MAX_BODY_BYTES} bytes")
        problem = self.verify(headers, body)
        if problem:
            return InteractionResult(401, reason=problem)
        try:
            payload = _payload(body)
        except ValueError as exc:
            return InteractionResult(400, reason=str(exc))
        return _parse(payload)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("body is not a form") from exc
    raw = form.get("payload")
    if not raw:
        raise ValueError("no payload field")
    try:
        payload = orjson.loads(raw[0])
    except orjson.JSONDecodeError as exc:
        raise ValueError("payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise ValueError("payload is not an object")
    return payload


def _parse(payload: dict[str, Any]) -> InteractionResult:
    if payload.get("type") != "block_actions":
        return InteractionResult(400, reason=f"unsupported interaction {payload.get('type')!r}")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return InteractionResult(400, reason="no action")
    action = actions[0]
    user_data = _obj(payload, "user")
    user = str(user_data.get("username") or user_data.get("name") or user_data.get("id") or "")
    if not user:
        return InteractionResult(400, reason="no user")
    try:
        value = orjson.loads(str(action.get("value", "")))
    except orjson.JSONDecodeError:
        return InteractionResult(400, reason="button value is not ours")
    if not isinstance(value, dict) or not isinstance(value.get("incident"), str):
        return InteractionResult(400, reason="button value names no incident")
    incident_id = value["incident"]
    action_id = str(action.get("action_id", ""))
    name, _, _ = action_id.partition(":")
    container = _obj(payload, "container")
    where = {
        "channel": str(container.get("channel_id", "")),
        "message_ts": str(container.get("message_ts", "")),
    }
    command: Command
    if name == ACK_ACTION:
        command = Acknowledge(incident_id=incident_id, user=user)
    elif name == SILENCE_ACTION:
        command = Silence(incident_id=incident_id, user=user, duration_s=SILENCE_S)
    elif name in (APPROVE_ACTION, REJECT_ACTION):
        target = value.get("action")
        if not isinstance(target, str) or not target:
            return InteractionResult(400, reason="button value names no action")
        cls = Approve if name == APPROVE_ACTION else Reject
        command = cls(action_id=target, incident_id=incident_id, user=user)
    else:
        return InteractionResult(400, reason=f"unknown button {action_id!r}")
    return InteractionResult(200, command=command, **where)


def _obj(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}
