"""The Block Kit message and thread replies a responder reads."""

from __future__ import annotations

import dataclasses

from notify.slack.render import COLOURS, render_event, render_incident
from rca.model import RootCauseCandidate, TimelineEvent, TimelineKind
from tests.notify.incidents import life, opened


def text_of(blocks: list[dict]) -> str:
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(f["text"] for f in block.get("fields", ()))
        parts.extend(
            e.get("text", "") for e in block.get("elements", ()) if block["type"] == "context"
        )
    return "\n".join(parts)


def test_message_shows_what_a_responder_needs() -> None:
    incident = life()[4]  # critical, two services, action waiting for approval
    message = render_incident(incident)
    body = text_of(message.blocks)
    assert message.blocks[0]["type"] == "header"
    assert "orders: latency anomaly" in message.blocks[0]["text"]["text"]
    assert "*Severity*\ncritical" in body
    assert "*Services*\ncarts, orders" in body
    assert "*Started*\n<!date^1700000000^" in body
    assert "*Open for*\n2m" in body
    # Top candidates, best first, with their evidence.
    assert body.index("*orders* `latency_p99`") < body.index("*carts* `cpu`")
    assert "first to move" in body and "cpu 41.0 robust sigma" in body
    assert "`restart` *orders*: waiting for approval" in body
    assert message.colour == COLOURS["critical"]
    assert message.text.startswith("[CRITICAL] orders: latency anomaly")


def test_resolved_message_is_green_with_duration_and_no_buttons() -> None:
    message = render_incident(life()[-1])
    body = text_of(message.blocks)
    assert message.colour == COLOURS["resolved"]
    assert "*Duration*\n10m" in body and "Resolved after 10m" in body
    assert "cancelled" in body
    assert not [b for b in message.blocks if b["type"] == "actions"]


def test_acknowledged_and_silenced_are_reflected() -> None:
    incident = dataclasses.replace(
        opened(),
        acknowledged=True,
        acknowledged_by="alice",
        silenced=True,
        silenced_until=1_700_003_600.0,
    )
    message = render_incident(incident)
    body = text_of(message.blocks)
    assert "acknowledged by alice" in body and "silenced until" in body
    assert message.colour == COLOURS["silenced"]
    buttons = [
        e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == []  # nothing left to press: acknowledged and silenced


def test_slack_limits_and_escaping() -> None:
    many = tuple(
        RootCauseCandidate(f"svc{i}", "cpu", "cpu", 0.9 - i / 100, "<b> & co") for i in range(10)
    )
    incident = dataclasses.replace(opened(), title="x" * 400, root_causes=many)
    message = render_incident(incident)
    assert len(message.blocks[0]["text"]["text"]) <= 150
    body = text_of(message.blocks)
    assert "svc2" in body and "svc3" not in body  # top three only
    assert "&lt;b&gt; &amp; co" in body and "<b>" not in body
    assert len(message.blocks) <= 50


def test_thread_reply_names_the_event() -> None:
    reply = render_event(TimelineEvent(TimelineKind.RANKING, 0.0, "top root cause: db cpu"))
    assert reply.startswith(":mag: *Root cause changed* · top root cause: db cpu")
