"""The generic incident webhook against a local receiver that checks its signature."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson
import pytest
from aiohttp import web

from notify.config import RetryConfig
from notify.exceptions import WebhookUnavailable
from notify.webhook import WebhookConfig, WebhookNotifier, verify
from rca.model import Incident, IncidentState, Severity

SECRET = "webhook-secret"
V1 = Incident(
    id="inc-9",
    version=1,
    state=IncidentState.OPENED,
    severity=Severity.WARNING,
    title="cart: latency anomaly",
    services=("cart",),
    opened_at=1_796_292_000.0,
    updated_at=1_796_292_000.0,
)
V2 = replace(V1, version=2, state=IncidentState.UPDATED, updated_at=1_796_292_060.0)
V3 = replace(V1, version=3, state=IncidentState.RESOLVED, resolved_at=1_796_292_600.0)


class Receiver:
    """Accepts signed posts; fails the next ones on request."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.faults: list[int] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if self.faults:
            return web.Response(status=self.faults.pop(0), text="no")
        body = await request.read()
        if not verify(SECRET, dict(request.headers), body):
            return web.Response(status=401, text="bad signature")
        self.bodies.append(orjson.loads(body))
        self.content_types.append(request.content_type)
        return web.Response(status=204)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def no_sleep(_: float) -> None:
    return None


def notifier(url: str, **config: Any) -> WebhookNotifier:
    settings = WebhookConfig(
        url=url, secret=SECRET, retry=RetryConfig(max_attempts=3, backoff_s=0.01), **config
    )
    return WebhookNotifier(settings, sleep=no_sleep)


def test_every_change_once_in_version_order_and_signed() -> None:
    async def main() -> list[dict[str, Any]]:
        async with Receiver() as hook:
            sender = notifier(hook.url)
            await sender.deliver([V2, V1])
            await sender.deliver([V2, V3])  # v2 again: not sent twice
            await sender.close()
            return hook.bodies

    bodies = asyncio.run(main())
    assert [(b["id"], b["version"], b["state"]) for b in bodies] == [
        ("inc-9", 1, "opened"),
        ("inc-9", 2, "updated"),
        ("inc-9", 3, "resolved"),
    ]


def test_cloudevents() -> None:
    async def main() -> tuple[list[dict[str, Any]], list[str]]:
        async with Receiver() as hook:
            sender = notifier(hook.url, cloudevents=True)
            await sender.deliver([V1])
            await sender.close()
            return hook.bodies, hook.content_types

    (event,), (ctype,) = asyncio.run(main())
    assert ctype == "application/cloudevents+json"
    assert event["specversion"] == "1.0" and event["type"] == "io.aiops-stream.incident.opened"
    assert event["id"] == "inc-9-v1" and event["data"]["title"] == "cart: latency anomaly"


def test_5xx_is_retried_4xx_is_not_and_an_outage_raises() -> None:
    async def main() -> tuple[int, int, list[str]]:
        async with Receiver() as hook:
            sender = notifier(hook.url)
            hook.faults = [503, 429]
            first = await sender.deliver([V1])
            hook.faults = [400]
            refused = await sender.deliver([V2])
            hook.faults = [500, 500, 500]
            with pytest.raises(WebhookUnavailable):
                await sender.deliver([V3])
            await sender.deliver([V3])
            await sender.close()
            return first.retries, refused.retries, [f"{b['version']}" for b in hook.bodies]

    retries, refused_retries, versions = asyncio.run(main())
    assert retries == 2 and refused_retries == 0
    assert versions == ["1", "3"]


def test_a_wrong_secret_does_not_verify() -> None:
    async def main() -> int:
        async with Receiver() as hook:
            sender = WebhookNotifier(
                WebhookConfig(url=hook.url, secret="other", retry=RetryConfig(max_attempts=1)),
                sleep=no_sleep,
            )
            report = await sender.deliver([V1])
            await sender.close()
            return len(report.rejected)

    assert asyncio.run(main()) == 1
