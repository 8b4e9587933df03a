"""Delivery decisions without a network: collapsing, thread replies, webhook limits."""

from __future__ import annotations

import dataclasses

from pydantic import SecretStr

from notify.config import SlackConfig
from notify.slack.plan import OpKind, collapse, plan_incident
from notify.slack.state import MessageRef
from rca.model import Severity
from tests.notify.incidents import life, opened

BOT = SlackConfig(bot_token=SecretStr("xoxb-x"))
HOOK = SlackConfig(webhook_url=SecretStr("https://hooks.slack.com/services/T/B/x"))


def kinds(ops: list) -> list[str]:
    return [str(op.kind) if op.event is None else f"reply:{op.event.kind}" for op in ops]


def test_collapse_keeps_first_appearance_order_and_latest_last() -> None:
    a, b = life("a"), life("b")
    groups = collapse([b[0], a[2], a[0], b[1], a[1], a[2]])
    assert [g[0].id for g in groups] == ["b", "a"]
    assert [s.version for s in groups[1]] == [1, 2, 3]


def test_first_delivery_posts_latest_and_replies_for_events_after_first_snapshot() -> None:
    v = life()
    ops = plan_incident(v[:4], None, BOT)
    assert ops[0].kind is OpKind.POST and ops[0].incident.version == 4
    assert [op.service for op in ops if op.kind is OpKind.REPLY and op.event is None] == ["orders"]
    assert kinds(ops)[1:] == ["reply", "reply:ranking", "reply:action"]


def test_nothing_is_planned_twice() -> None:
    v = life()
    ref = MessageRef(v[0].id, "C1", "1.0", 6, len(v[5].timeline), True, v[5].services)
    assert plan_incident(v, ref, BOT, chart_available=True) == []


def test_update_only_when_version_is_newer() -> None:
    v = life()
    ref = MessageRef(v[0].id, "C1", "1.0", 3, len(v[2].timeline), False, v[2].services)
    assert kinds(plan_incident(v[:3], ref, BOT)) == []
    assert kinds(plan_incident(v[:4], ref, BOT)) == ["update", "reply:action"]
    assert kinds(plan_incident(v[:4], ref, BOT, chart_available=True)) == [
        "update",
        "chart",
        "reply:action",
    ]


def test_silenced_incident_gets_updates_but_few_replies() -> None:
    v = life()
    ref = MessageRef(v[0].id, "C1", "1.0", 1, len(v[0].timeline), False, v[0].services)
    silenced = dataclasses.replace(v[4], silenced=True)
    assert kinds(plan_incident([silenced], ref, BOT)) == ["update"]


def test_suppressed_unless_some_snapshot_deserved_a_message() -> None:
    config = BOT.model_copy(update={"min_severity": Severity.CRITICAL})
    v = life()
    assert plan_incident(v[:4], None, config) == []
    assert kinds(plan_incident(v[:5], None, config))[0] == "post"
    predicted = opened(predicted=True)
    assert (
        plan_incident([predicted], None, BOT.model_copy(update={"notify_predicted": False})) == []
    )


def test_webhook_posts_only_on_open_severity_and_resolution() -> None:
    v = life()
    ref: MessageRef | None = None
    posted = []
    for snapshot in v:
        ops = plan_incident([snapshot], ref, HOOK, chart_available=True)
        assert all(op.kind is OpKind.POST for op in ops)
        if ops:
            posted.append(snapshot.version)
            ref = MessageRef(snapshot.id, "", "", snapshot.version, len(snapshot.timeline))
    assert posted == [1, 5, 6]


def test_webhook_burst_is_one_message() -> None:
    v = life()
    ref = MessageRef(v[0].id, "", "", 1, len(v[0].timeline))
    assert len(plan_incident(v, ref, HOOK)) == 1
