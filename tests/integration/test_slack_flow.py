"""Slack through the real broker and worker: one message per incident, kept current, buttons
verified by signature, and a restarted worker that does not post twice."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from notify.slack.interactions import sign
from notify.slack.render import COLOURS, render_incident
from rca.model import Incident
from streams.scenario import ROOT_CAUSE
from tests.integration.test_incident_flow import incident_worker, replay
from tests.kafka_harness import BrokerHandle, consume_all, wait_until
from tests.notify.test_interactions import press
from tests.slack_server import FakeSlack

pytestmark = pytest.mark.kafka

SECRET = "signing-secret-for-tests"


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/interactions", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def button(incident: Incident, label: str) -> dict[str, object]:
    for block in render_incident(incident).blocks:
        for element in block.get("elements", ()):
            if block["type"] == "actions" and element["text"]["text"] == label:
                return dict(element)
    raise AssertionError(f"no {label} button")


def test_slack_message_per_incident_buttons_and_restart(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    with FakeSlack.threaded() as slack:
        worker = incident_worker(kafka, tmp_path, "slack")
        worker.extra_env.update(
            {
                "AIOPS_SLACK__BOT_TOKEN": slack.token,
                "AIOPS_SLACK__BASE_URL": slack.base_url,
                "AIOPS_SLACK__SIGNING_SECRET": SECRET,
                "AIOPS_SLACK__DEFAULT_CHANNEL": "#incidents",
            }
        )
        worker.start()
        try:
            asyncio.run(replay(kafka.bootstrap, worker.topics, time.time() - 5 * 3600))
            records = asyncio.run(
                consume_all(kafka.bootstrap, worker.topics["incidents"], idle_s=20, timeout_s=240)
            )
            latest: dict[str, Incident] = {}
            opened: dict[str, Incident] = {}
            for record in records:
                snap = Incident.from_dict(orjson.loads(record.value))
                latest[snap.id] = snap
                if snap.is_open:
                    opened[snap.id] = snap
            assert any(
                i.root_causes and i.root_causes[0].service == ROOT_CAUSE for i in latest.values()
            )
            assert wait_until(
                lambda: (
                    len(slack.top_level_messages()) == len(latest)
                    and all(
                        m.current["attachments"][0]["color"] == COLOURS["resolved"]
                        for m in slack.top_level_messages()
                    )
                ),
                timeout=60,
            ), [m.current for m in slack.top_level_messages()]
            assert not slack.calls or all(c.authorized for c in slack.calls)
            fault = next(i for i in latest.values() if i.root_causes[0].service == ROOT_CAUSE)
            [message] = [
                m
                for m in slack.top_level_messages()
                if fault.id in orjson.dumps(m.current).decode()
            ]
            assert slack.thread(message.ts), "timeline events go to the thread"
            assert slack.files, "a chart of the anomalous series is uploaded"

            # Buttons: unsigned, mis-signed and stale requests are refused.
            # the button as the message showed it while the incident was open
            body = press(button(opened[fault.id], "Acknowledge"), user="bob")
            now = str(int(time.time()))
            assert post(worker.web_port, body, {}) == 401
            assert (
                post(
                    worker.web_port,
                    body,
                    {
                        "X-Slack-Request-Timestamp": now,
                        "X-Slack-Signature": sign("wrong", now, body),
                    },
                )
                == 401
            )
            stale = str(int(time.time()) - 600)
            assert (
                post(
                    worker.web_port,
                    body,
                    {
                        "X-Slack-Request-Timestamp": stale,
                        "X-Slack-Signature": sign(SECRET, stale, body),
                    },
                )
                == 401
            )

            # A restarted worker keeps the message reference: the acknowledgement updates the
            # same message, no second one is posted.
            worker.stop()
            posted = len(slack.top_level_messages())
            worker.start()
            now = str(int(time.time()))
            headers = {
                "X-Slack-Request-Timestamp": now,
                "X-Slack-Signature": sign(SECRET, now, body),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            assert post(worker.web_port, body, headers) == 200
            assert post(worker.web_port, body, headers) == 401, "the same request again: a replay"
            assert wait_until(
                lambda: "slack:bob" in orjson.dumps(message.current).decode(), timeout=60
            ), [(c.method, c.params.get("text")) for c in slack.calls][-3:]
            assert len(slack.top_level_messages()) == posted
            assert slack.successful("chat.update"), "the message is updated in place"

            def replies() -> list[str]:
                return [m.params.get("text", "") for m in slack.thread(message.ts)]

            assert wait_until(
                lambda: any("acknowledged by slack:bob" in r for r in replies()), timeout=30
            ), replies()
        finally:
            worker.stop()
