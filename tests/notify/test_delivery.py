"""The notifier against the fake Slack server: what Slack receives over an incident's life."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pydantic import SecretStr

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import MetricEvent
from notify.chart import SeriesWindow
from notify.config import ChartConfig, RetryConfig, SlackConfig, SlackRoute
from notify.exceptions import SlackUnavailable
from notify.slack.delivery import SlackNotifier
from notify.slack.render import COLOURS
from notify.slack.state import InMemoryStateStore, MessageRef
from rca.model import Severity
from tests.notify.conftest import FAST_RETRY, SleepRecorder
from tests.notify.incidents import T0, life, opened
from tests.slack_server import FakeSlack


def methods(slack: FakeSlack) -> list[str]:
    """Successful calls, thread replies told apart from top-level posts."""
    out = []
    for call in slack.successful():
        if call.method == "chat.postMessage" and "thread_ts" in call.params:
            out.append("reply")
        else:
            out.append(call.method)
    return out


def reply_texts(slack: FakeSlack) -> list[str]:
    [top] = slack.top_level_messages()
    return [m.params["text"] for m in slack.thread(top.ts)]


def window_with_onset() -> SeriesWindow:
    window = SeriesWindow(ChartConfig(points=120, lookback_points=60))
    rng = np.random.default_rng(7)
    for i in range(90):
        t = T0 - 300 + 5 * i
        value = 40.0 + rng.normal(0, 2) + (50.0 if t >= T0 else 0.0)
        window.observe(MetricEvent(t, "carts", "cpu", value))
        if t == T0:
            window.mark(
                Anomaly(
                    "carts",
                    "cpu",
                    SignalKind.METRIC,
                    T0,
                    value,
                    0.99,
                    Direction.SPIKE,
                    "robust",
                    band=(35.0, 45.0),
                )
            )
    return window


async def test_incident_life_call_sequence(slack: FakeSlack, bot_config: SlackConfig) -> None:
    store = InMemoryStateStore()
    notifier = SlackNotifier(bot_config, store=store, series_window=window_with_onset())
    v1, v2, v3, v4, v5, v6 = life()

    await notifier.deliver([v1])
    assert methods(slack) == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    [top] = slack.top_level_messages()
    assert top.channel == "C-INCIDENTS"
    attachment = top.params["attachments"][0]
    assert attachment["color"] == COLOURS["warning"]
    assert "carts: cpu anomaly" in top.params["text"]
    # The chart went into the incident's thread, as a PNG.
    [chart] = [f for f in slack.files.values() if f["completed"]]
    assert chart["thread_ts"] == top.ts and chart["channel"] == "C-INCIDENTS"
    assert chart["content"][:8] == b"\x89PNG\r\n\x1a\n"

    slack.reset()
    await notifier.deliver([v2])
    assert methods(slack) == ["chat.update", "reply"]
    await notifier.deliver([v3])
    await notifier.deliver([v4])
    await notifier.deliver([v5])
    assert methods(slack) == ["chat.update", "reply"] * 4
    texts = [c.params["text"] for c in slack.successful("chat.postMessage")]
    assert "New service affected" in texts[0] and "orders" in texts[0]
    assert "Root cause changed" in texts[1] and "orders latency_p99" in texts[1]
    assert "restart orders" in texts[2]
    assert "warning -&gt; critical" in texts[3]
    assert all(c.params["thread_ts"] == top.ts for c in slack.successful("chat.postMessage"))

    # Pending approval shows Approve / Reject buttons on the updated message.
    updated = slack.successful("chat.update")[-1].params
    blocks = updated["attachments"][0]["blocks"]
    buttons = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Acknowledge", "Approve restart orders", "Reject", "Silence 1h"]
    assert updated["attachments"][0]["color"] == COLOURS["critical"]

    slack.reset()
    await notifier.deliver([v6])
    assert methods(slack) == ["chat.update", "reply"]
    final = slack.successful("chat.update")[0].params
    assert final["ts"] == top.ts
    assert final["attachments"][0]["color"] == COLOURS["resolved"]
    fields = " ".join(
        f["text"] for b in final["attachments"][0]["blocks"] for f in b.get("fields", ())
    )
    assert "*Duration*\n10m" in fields
    assert not [b for b in final["attachments"][0]["blocks"] if b["type"] == "actions"]
    assert "Resolved" in slack.successful("chat.postMessage")[0].params["text"]

    ref = store.get(v6.id)
    assert ref is not None and ref.last_version == 6 and ref.chart_posted
    assert ref.timeline_len == len(v6.timeline)
    assert all(c.authorized for c in slack.calls if c.method not in ("upload", "webhook"))


async def test_restart_does_not_post_twice(slack: FakeSlack, bot_config: SlackConfig) -> None:
    store = InMemoryStateStore()
    snapshots = life()
    await SlackNotifier(bot_config, store=store).deliver(snapshots[:3])
    assert len(slack.top_level_messages()) == 1
    before = len(slack.calls)

    # A new worker: same stored state, the same snapshots handed again, then new ones.
    restarted = SlackNotifier(bot_config, store=MessageRefCopy(store))
    report = await restarted.deliver(snapshots[:3])
    assert len(slack.calls) == before
    assert report.posted == report.updated == report.replies == 0
    await restarted.deliver(snapshots[3:])
    assert len(slack.top_level_messages()) == 1
    assert methods(slack)[-4:] == ["chat.update", "reply", "reply", "reply"]


class MessageRefCopy(InMemoryStateStore):
    """A store rebuilt from another one's bytes, as a worker restoring its table."""

    def __init__(self, other: InMemoryStateStore) -> None:
        super().__init__()
        for ref in other.refs.values():
            self.put(MessageRef.from_bytes(ref.to_bytes()))


async def test_backlog_collapses_to_latest_with_replies_in_order(
    slack: FakeSlack, bot_config: SlackConfig
) -> None:
    a = life("inc-a")
    b = life("inc-b", at=T0 + 30)[:2]
    backlog = [a[0], b[0], a[1], a[2], b[1], a[3], a[4]]
    report = await SlackNotifier(bot_config, store=InMemoryStateStore()).deliver(backlog)

    tops = slack.top_level_messages()
    assert [m.params["text"].split("]")[0] for m in tops] == ["[CRITICAL", "[WARNING"]
    assert report.posted == 2 and report.updated == 0
    assert "orders: latency" in tops[0].params["text"]  # inc-a shown at version 5
    a_thread = [m.params["text"] for m in slack.thread(tops[0].ts)]
    assert [t.split(" · ")[0] for t in a_thread] == [
        ":heavy_plus_sign: *New service affected*",
        ":mag: *Root cause changed*",
        ":wrench: *Action*",
        ":rotating_light: *Severity changed*",
    ]
    assert len(slack.thread(tops[1].ts)) == 1  # inc-b: orders joined


async def test_outage_then_recovery_loses_and_duplicates_nothing(
    slack: FakeSlack, bot_config: SlackConfig
) -> None:
    store = InMemoryStateStore()
    notifier = SlackNotifier(bot_config, store=store)
    snapshots = life()
    await notifier.deliver(snapshots[:1])

    slack.fail(500, times=None)  # Slack is down
    pending = list(snapshots[1:3])
    with pytest.raises(SlackUnavailable) as info:
        await notifier.deliver(pending)
    assert info.value.reason == "http 500" and info.value.attempts == FAST_RETRY.max_attempts
    slack.heal()
    slack.hang(times=None, seconds=5.0)  # ... then it stops answering at all
    pending += snapshots[3:5]
    with pytest.raises(SlackUnavailable) as info:
        await notifier.deliver(pending)
    assert info.value.reason == "timeout"
    slack.heal()

    # Back: the agent hands over everything not yet acknowledged.
    pending += snapshots[5:]
    await notifier.deliver(pending)
    [top] = slack.top_level_messages()
    assert top.current["attachments"][0]["color"] == COLOURS["resolved"]
    replies = [m.params["text"].split(" · ")[0] for m in slack.thread(top.ts)]
    assert replies == [
        ":heavy_plus_sign: *New service affected*",
        ":mag: *Root cause changed*",
        ":wrench: *Action*",
        ":rotating_light: *Severity changed*",
        ":white_check_mark: *Resolved*",
    ]
    # The agent may hand the same batch once more (offsets committed late): no change.
    calls = len(slack.calls)
    await notifier.deliver(pending)
    assert len(slack.calls) == calls


async def test_failure_between_calls_resumes_without_duplicates(
    slack: FakeSlack, bot_config: SlackConfig
) -> None:
    store = InMemoryStateStore()
    notifier = SlackNotifier(bot_config, store=store)
    v = life()
    await notifier.deliver(v[:1])
    # The update goes through, then the first thread reply fails for good.
    slack.fail(503, times=None, methods={"chat.postMessage"})
    with pytest.raises(SlackUnavailable):
        await notifier.deliver(v[1:3])
    assert len(slack.successful("chat.update")) == 1
    slack.heal()
    await notifier.deliver(v[1:3])
    assert len(slack.successful("chat.update")) == 1  # not repeated
    assert len(slack.thread(slack.top_level_messages()[0].ts)) == 2


async def test_rate_limit_honours_retry_after(slack: FakeSlack, bot_config: SlackConfig) -> None:
    sleep = SleepRecorder()
    config = bot_config.model_copy(
        update={"retry": RetryConfig(max_attempts=4, backoff_s=0.5, max_backoff_s=30)}
    )
    notifier = SlackNotifier(config, store=InMemoryStateStore(), sleep=sleep)
    slack.fail(429, times=2, retry_after=7)
    report = await notifier.deliver([opened()])
    assert sleep.waits == [7.0, 7.0]
    assert [c.status for c in slack.calls] == [429, 429, 200]
    assert len(slack.top_level_messages()) == 1
    assert report.retries == 2 and report.calls[("chat.postMessage", "retry")] == 2


async def test_backoff_doubles_on_server_errors(slack: FakeSlack, bot_config: SlackConfig) -> None:
    sleep = SleepRecorder()
    config = bot_config.model_copy(
        update={"retry": RetryConfig(max_attempts=4, backoff_s=1.0, max_backoff_s=30)}
    )
    slack.fail(502, times=3)
    await SlackNotifier(config, store=InMemoryStateStore(), sleep=sleep).deliver([opened()])
    assert len(sleep.waits) == 3
    assert [round(w) for w in sleep.waits] == [1, 2, 4]
    assert len(slack.top_level_messages()) == 1


async def test_refused_call_is_logged_skipped_and_not_retried(
    slack: FakeSlack, bot_config: SlackConfig, caplog: pytest.LogCaptureFixture
) -> None:
    slack.unknown_channels.add("C-GONE")
    config = bot_config.model_copy(
        update={"routes": (SlackRoute(channel="C-GONE", services=("payments",)),)}
    )
    notifier = SlackNotifier(config, store=InMemoryStateStore())
    lost = opened("inc-pay", services=("payments",))
    fine = opened("inc-carts")
    with caplog.at_level(logging.WARNING, logger="notify.slack"):
        report = await notifier.deliver([lost, fine])
    assert [c.params["channel"] for c in slack.calls] == ["C-GONE", "C-INCIDENTS"]
    assert [(r.incident_id, r.reason) for r in report.rejected] == [
        ("inc-pay", "channel_not_found")
    ]
    assert "channel_not_found" in caplog.text and "inc-pay" in caplog.text
    assert report.posted == 1


async def test_bad_token_is_refused_not_retried(slack: FakeSlack) -> None:
    config = SlackConfig(
        bot_token=SecretStr("xoxb-wrong"), base_url=slack.base_url, retry=FAST_RETRY
    )
    report = await SlackNotifier(config, store=InMemoryStateStore()).deliver([opened()])
    assert [r.reason for r in report.rejected] == ["invalid_auth"]
    assert len(slack.calls) == 1 and not slack.calls[0].authorized


async def test_routing_by_severity_and_service(slack: FakeSlack, bot_config: SlackConfig) -> None:
    config = bot_config.model_copy(
        update={
            "routes": (
                SlackRoute(channel="C-PAGE", min_severity=Severity.CRITICAL),
                SlackRoute(channel="C-DB", services=("postgres",)),
            )
        }
    )
    notifier = SlackNotifier(config, store=InMemoryStateStore())
    await notifier.deliver(
        [
            opened("inc-1", severity=Severity.CRITICAL),
            opened("inc-2", services=("api", "postgres")),
            opened("inc-3"),
        ]
    )
    assert [m.channel for m in slack.top_level_messages()] == ["C-PAGE", "C-DB", "C-INCIDENTS"]


async def test_silenced_and_minor_incidents_are_not_posted(
    slack: FakeSlack, bot_config: SlackConfig
) -> None:
    config = bot_config.model_copy(update={"min_severity": Severity.WARNING})
    report = await SlackNotifier(config, store=InMemoryStateStore()).deliver(
        [opened("inc-1", silenced=True), opened("inc-2", severity=Severity.INFO)]
    )
    assert slack.calls == [] and report.suppressed == 2


async def test_webhook_posts_on_open_severity_change_and_resolve(slack: FakeSlack) -> None:
    config = SlackConfig(webhook_url=SecretStr(slack.webhook_url), retry=FAST_RETRY)
    notifier = SlackNotifier(config, store=InMemoryStateStore(), series_window=window_with_onset())
    v = life()
    for snapshot in v:
        await notifier.deliver([snapshot])
    assert {c.method for c in slack.calls} == {"webhook"}
    posted = [p["text"].split("]")[0] for p in slack.webhook_posts]
    assert posted == ["[WARNING", "[CRITICAL", "[RESOLVED"]
    assert slack.webhook_posts[-1]["attachments"][0]["color"] == COLOURS["resolved"]
    # Nothing could update the message after a press: no buttons.
    blocks = [b for p in slack.webhook_posts for b in p["attachments"][0]["blocks"]]
    assert blocks and not [b for b in blocks if b["type"] == "actions"]


async def test_no_buttons_without_a_signing_secret(slack: FakeSlack) -> None:
    config = SlackConfig(bot_token=SecretStr(slack.token), base_url=slack.base_url)
    await SlackNotifier(config, store=InMemoryStateStore()).deliver([opened()])
    [top] = slack.top_level_messages()
    assert not [b for b in top.params["attachments"][0]["blocks"] if b["type"] == "actions"]


async def test_webhook_outage_is_retried(slack: FakeSlack) -> None:
    config = SlackConfig(webhook_url=SecretStr(slack.webhook_url), retry=FAST_RETRY)
    notifier = SlackNotifier(config, store=InMemoryStateStore())
    slack.fail(500, times=None)
    with pytest.raises(SlackUnavailable):
        await notifier.deliver([opened()])
    slack.heal()
    slack.fail(429, times=1, retry_after=0)
    await notifier.deliver([opened()])
    assert len(slack.webhook_posts) == 1


async def test_secrets_never_reach_logs(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    secret = "signing-secret-abc"
    bot = SlackConfig(
        bot_token=SecretStr(slack.token),
        signing_secret=SecretStr(secret),
        base_url=slack.base_url,
        retry=FAST_RETRY,
    )
    hook = SlackConfig(
        webhook_url=SecretStr(slack.webhook_url), signing_secret=SecretStr(secret), retry=FAST_RETRY
    )
    assert slack.token not in repr(bot) and slack.webhook_url not in repr(hook)
    with caplog.at_level(logging.DEBUG):
        for config in (bot, hook):
            notifier = SlackNotifier(config, store=InMemoryStateStore())
            slack.fail(500, times=None)
            with pytest.raises(SlackUnavailable):
                await notifier.deliver([opened()])
            slack.heal()
            slack.fail(429, times=1, retry_after=0)
            await notifier.deliver(life())
    assert len(caplog.records) > 10  # slack-sdk's debug output was captured
    webhook_secret = slack.webhook_url.rsplit("/", 1)[1]
    for needle in (slack.token, webhook_secret, secret):
        assert needle not in caplog.text
