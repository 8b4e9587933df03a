"""Button presses: Slack's request signature, and the commands parsed from payloads."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from notify.slack.interactions import (
    Acknowledge,
    Approve,
    InteractionHandler,
    Reject,
    Silence,
    sign,
)
from notify.slack.render import render_incident
from tests.notify.incidents import life

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_700_000_000.0


def press(button: dict[str, Any], *, user: str = "alice") -> bytes:
    """The form body Slack posts when someone presses ``button``."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U123", "username": user, "name": user},
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": "C1"},
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": "aiops_actions",
                "value": button["value"],
                "action_ts": "1700000001.000000",
            }
        ],
        "response_url": "https://hooks.slack.com/actions/T/1/xyz",
    }
    return urlencode({"payload": orjson.dumps(payload).decode()}).encode()


def signed(body: bytes, *, at: float = NOW, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(at))
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(secret, ts, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def buttons_of_pending_incident() -> dict[str, dict[str, Any]]:
    incident = life()[3]  # restart orders waiting for approval
    blocks = render_incident(incident).blocks
    elements = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return {e["text"]["text"]: e for e in elements}


@pytest.fixture
def handler() -> InteractionHandler:
    return InteractionHandler(SECRET, clock=lambda: NOW)


def test_every_button_of_a_message_parses_to_its_command(handler: InteractionHandler) -> None:
    buttons = buttons_of_pending_incident()
    incident = life()[3]
    action_id = incident.actions[0].id
    expected = {
        "Acknowledge": Acknowledge(incident_id=incident.id, user="alice"),
        "Approve restart orders": Approve(action_id, incident.id, "alice"),
        "Reject": Reject(action_id, incident.id, "alice"),
        "Silence 1h": Silence(incident.id, "alice", 3600.0),
    }
    assert set(buttons) == set(expected)
    for label, button in buttons.items():
        body = press(button)
        result = handler.handle(signed(body), body)
        assert result.status == 200, result.reason
        assert result.command == expected[label]
        assert (result.channel, result.message_ts) == ("C1", "1700000000.000001")


def test_header_names_are_case_insensitive(handler: InteractionHandler) -> None:
    body = press(buttons_of_pending_incident()["Acknowledge"])
    headers = {k.lower(): v for k, v in signed(body).items()}
    assert handler.handle(headers, body).status == 200


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "unsigned request"),
        ("no timestamp", "unsigned request"),
        ("wrong secret", "bad signature"),
        ("tampered body", "bad signature"),
        ("stale", "stale timestamp"),
        ("from the future", "stale timestamp"),
        ("garbage timestamp", "bad timestamp"),
    ],
)
def test_unsigned_missigned_and_stale_requests_get_401(
    handler: InteractionHandler, case: str, reason: str
) -> None:
    body = press(buttons_of_pending_incident()["Approve restart orders"])
    headers = signed(body)
    if case == "unsigned":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif case == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif case == "wrong secret":
        headers = signed(body, secret="not-the-secret")
    elif case == "tampered body":
        body = body.replace(b"alice", b"mallory")
    elif case == "stale":
        headers = signed(body, at=NOW - 301)
    elif case == "from the future":
        headers = signed(body, at=NOW + 301)
    elif case == "garbage timestamp":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    result = handler.handle(headers, body)
    assert (result.status, result.command, result.reason) == (401, None, reason)


def test_a_request_within_five_minutes_is_accepted(handler: InteractionHandler) -> None:
    body = press(buttons_of_pending_incident()["Silence 1h"])
    assert handler.handle(signed(body, at=NOW - 299), body).status == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not a form",
        b"payload=not-json",
        b"other=1",
        urlencode({"payload": orjson.dumps({"type": "view_submission"}).decode()}).encode(),
        urlencode(
            {
                "payload": orjson.dumps(
                    {
                        "type": "block_actions",
                        "user": {"id": "U1"},
                        "actions": [{"action_id": "someone_elses", "value": "{}"}],
                    }
                ).decode()
            }
        ).encode(),
    ],
)
def test_signed_but_malformed_requests_get_400(handler: InteractionHandler, body: bytes) -> None:
    result = handler.handle(signed(body), body)
    assert result.status == 400 and result.command is None and result.reason


def test_the_secret_is_not_shown_and_required() -> None:
    assert SECRET not in repr(InteractionHandler(SECRET))
    with pytest.raises(ValueError):
        InteractionHandler("")


def test_default_clock_is_wall_time() -> None:
    body = press(buttons_of_pending_incident()["Acknowledge"])
    handler = InteractionHandler(SECRET)
    assert handler.handle(signed(body, at=time.time()), body).status == 200
    assert handler.handle(signed(body, at=NOW), body).status == 401


def test_signature_matches_slack_sdks_verifier() -> None:
    from slack_sdk.signature import SignatureVerifier

    body = press(buttons_of_pending_incident()["Acknowledge"])
    verifier = SignatureVerifier(SECRET)
    ts = str(int(NOW))
    assert sign(SECRET, ts, body) == verifier.generate_signature(timestamp=ts, body=body)


def test_a_replayed_request_gets_401_and_changes_nothing(handler: InteractionHandler) -> None:
    body = press(buttons_of_pending_incident()["Approve restart orders"])
    headers = signed(body, at=NOW - 10)
    first = handler.handle(headers, body)
    assert first.status == 200 and first.command is not None
    again = handler.handle(headers, body)
    assert (again.status, again.command, again.reason) == (401, None, "replayed request")


def test_an_oversized_body_gets_413_unread(handler: InteractionHandler) -> None:
    body = b"payload=" + b"x" * (64 * 1024)
    result = handler.handle(signed(body), body)
    assert (result.status, result.command) == (413, None)
