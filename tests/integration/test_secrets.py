"""Secrets planted in every secret setting never show in what a run puts out: the worker's
and the console's logs at debug level, their /health and /metrics, ``aiops config show``,
the records they publish, and the answers to requests that fail authentication."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_console_flow import ConsoleProcess
from tests.integration.test_incident_flow import incident_worker, replay
from tests.kafka_harness import BrokerHandle, consume_all, free_port, wait_until
from tests.pagerduty_server import FakePagerDuty
from tests.slack_server import FakeSlack

pytestmark = pytest.mark.kafka

SLACK_TOKEN = "xoxb-planted-4f1d2c9e8b7a"
PLANTED = {
    "slack bot token": SLACK_TOKEN,
    "slack signing secret": "planted-signing-7c2e91d0",
    "worker api token": "planted-api-token-5b8a3f",
    "pagerduty routing key": "planted0pagerduty0routing0key042",
    "webhook secret": "planted-webhook-9e4d21",
    "console token": "planted-console-token-1a7f",
    "console password": "planted-console-password-3c6e",
}


def fetch(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> str:
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return f"{reply.status} {reply.read().decode(errors='replace')}"
    except urllib.error.HTTPError as err:
        return f"{err.code} {err.read().decode(errors='replace')}"


def leaks(text: str) -> list[str]:
    return [name for name, secret in PLANTED.items() if secret in text]


def test_planted_secrets_never_show_in_logs_endpoints_or_records(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    with FakeSlack.threaded(token=SLACK_TOKEN) as slack, FakePagerDuty.threaded() as pager:
        worker = incident_worker(kafka, tmp_path, "secrets")
        worker.extra_env.update(
            {
                "AIOPS_WORKER__LOG_LEVEL": "debug",
                "AIOPS_SLACK__BOT_TOKEN": SLACK_TOKEN,
                "AIOPS_SLACK__BASE_URL": slack.base_url,
                "AIOPS_SLACK__SIGNING_SECRET": PLANTED["slack signing secret"],
                "AIOPS_SLACK__DEFAULT_CHANNEL": "#incidents",
                "AIOPS_WORKER__API_TOKEN": PLANTED["worker api token"],
                "AIOPS_PAGERDUTY__ROUTING_KEY": PLANTED["pagerduty routing key"],
                "AIOPS_PAGERDUTY__URL": pager.url,
                # nobody listens there: the failing deliveries are logged too
                "AIOPS_WEBHOOK__URL": f"http://127.0.0.1:{free_port()}/hook",
                "AIOPS_WEBHOOK__SECRET": PLANTED["webhook secret"],
                "AIOPS_WEBHOOK__RETRY__MAX_ATTEMPTS": "2",
                "AIOPS_CONSOLE__TOKENS": f"{{ops: {PLANTED['console token']}}}",
                "AIOPS_CONSOLE__USERS": f"{{alice: {PLANTED['console password']}}}",
            }
        )
        worker.start()
        users = f"{{alice: {PLANTED['console password']}}}"
        console = ConsoleProcess(worker, tmp_path, users=users)
        try:
            console.wait_ready()
            asyncio.run(replay(kafka.bootstrap, worker.topics, time.time() - 5 * 3600))
            assert wait_until(lambda: slack.top_level_messages() and pager.actions(), 240)
            base = f"http://127.0.0.1:{worker.web_port}"
            said = [
                fetch(f"{base}/health"),
                fetch(f"{base}/metrics"),
                # failed authentication, each its own way
                fetch(f"{base}/api/alerts", {"Authorization": "Bearer wrong"}, b"{}"),
                fetch(f"{base}/slack/interactions", {"X-Slack-Signature": "v0=00"}, b"x=1"),
                fetch(f"{console.url}/health"),
                fetch(f"{console.url}/api/incidents", {"Authorization": "Bearer wrong"}),
                fetch(
                    f"{console.url}/api/incidents",
                    {"Authorization": f"Bearer {PLANTED['console token']}"},
                ),
            ]
            assert said[-1].startswith("200 ") and '"total":' in said[-1], said[-1]
            shown = subprocess.run(
                [sys.executable, "-m", "streams.cli", "config", "show"],
                env=worker.env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            assert "console:" in shown.stdout and "tokens:" in shown.stdout
            said.append(shown.stdout + shown.stderr)
            for role in ("incidents", "actions", "anomalies", "deadletter", "control", "series"):
                records = asyncio.run(
                    consume_all(kafka.bootstrap, worker.topics[role], idle_s=2, timeout_s=30)
                )
                said.extend((r.value or b"").decode(errors="replace") for r in records)
        finally:
            console.stop()
            worker.stop()
        logs = worker.log_text() + console.log.read_text(errors="replace")
        assert "DEBUG" in logs or "debug" in logs.lower(), "the worker logged at debug level"
        assert len(logs) > 10_000, "a run long enough to say something"
        assert not leaks(logs), f"in the logs: {leaks(logs)}"
        for text in said:
            assert not leaks(text), (leaks(text), text[:500])
