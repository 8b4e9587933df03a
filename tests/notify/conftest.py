"""Fixtures of the notifier tests: a fake Slack server per test, fast retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from notify.config import RetryConfig, SlackConfig
from tests.slack_server import FakeSlack

FAST_RETRY = RetryConfig(max_attempts=3, backoff_s=0.01, max_backoff_s=0.05, timeout_s=0.5)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def bot_config(slack: FakeSlack) -> SlackConfig:
    return SlackConfig(
        bot_token=SecretStr(slack.token),
        signing_secret=SecretStr("signing-secret-for-tests"),
        base_url=slack.base_url,
        default_channel="C-INCIDENTS",
        retry=FAST_RETRY,
    )


class SleepRecorder:
    """Stands in for ``asyncio.sleep``: records the waits, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
