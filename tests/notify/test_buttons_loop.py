"""A button press goes through the engine and comes back as an updated Slack message."""

from __future__ import annotations

from detectors.anomaly import Anomaly, Direction, SignalKind
from notify.config import SlackConfig
from notify.slack.delivery import SlackNotifier
from notify.slack.interactions import InteractionHandler, sign
from notify.slack.render import COLOURS, render_incident
from notify.slack.state import InMemoryStateStore
from rca.engine import IncidentEngine
from rca.model import Incident
from streams.control import apply_command, slack_command
from tests.notify.test_interactions import SECRET, press
from tests.slack_server import FakeSlack

T0 = 1_700_000_000.0


def open_incident(engine: IncidentEngine) -> list[Incident]:
    snapshots: list[Incident] = []
    for i, (service, signal) in enumerate([("carts", "cpu"), ("orders", "latency_p99")]):
        anomaly = Anomaly(
            service,
            signal,
            SignalKind.METRIC,
            T0 + 5 * i,
            99.0,
            0.99,
            Direction.SPIKE,
            "robust",
            details={"z": 30.0},
        )
        snapshots += engine.on_anomaly(anomaly).incidents
    return snapshots


def signed_press(incident: Incident, label: str, at: float) -> tuple[dict[str, str], bytes]:
    blocks = render_incident(incident).blocks
    [button] = [
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"] == label
    ]
    body = press(button, user="alice")
    ts = str(int(at))
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(SECRET, ts, body)}, body


async def test_acknowledge_and_silence_update_the_message(
    slack: FakeSlack, bot_config: SlackConfig
) -> None:
    engine = IncidentEngine()
    notifier = SlackNotifier(bot_config, store=InMemoryStateStore())
    snapshots = open_incident(engine)
    assert snapshots
    await notifier.deliver(snapshots)
    [top] = slack.top_level_messages()

    now = T0 + 60
    handler = InteractionHandler(SECRET, clock=lambda: now)
    for label in ("Acknowledge", "Silence 1h"):
        result = handler.handle(*signed_press(snapshots[-1], label, now))
        assert result.status == 200 and result.command is not None
        outcome = apply_command(engine, slack_command(result.command), now=now)
        snapshots = list(outcome.incidents)
        await notifier.deliver(snapshots)

    current = top.current
    text = " ".join(
        f["text"] for b in current["attachments"][0]["blocks"] for f in b.get("fields", ())
    )
    assert "acknowledged by slack:alice" in text and "silenced until" in text
    assert current["attachments"][0]["color"] == COLOURS["silenced"]
    replies = [m.params["text"].split(" · ")[0] for m in slack.thread(top.ts)]
    assert replies[-2:] == [":eyes: *Acknowledged*", ":mute: *Silence*"]
    assert len(slack.top_level_messages()) == 1
