"""A local server that speaks PagerDuty's Events API v2 (``POST /v2/enqueue``) for tests.

It validates events as PagerDuty documents them (``routing_key`` of 32 characters,
``event_action`` trigger / acknowledge / resolve, a ``dedup_key`` for acknowledge and
resolve, a trigger's ``payload`` with ``summary``, ``source`` and ``severity``), answers
``202 {"status": "success", "dedup_key": ...}`` or ``400 {"status": "invalid event"}``, and
keeps every event and each alert's state by ``dedup_key``. It can be told to answer 429
(with ``Retry-After``) or 500, or not answer, for its next N events.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
SEVERITIES = {"critical", "error", "warning", "info"}


class FakePagerDuty:
    """See the module's description."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.alerts: dict[str, str] = {}  # dedup_key -> triggered / acknowledged / resolved
        self._faults: list[str] = []  # "429", "500", "hang", one per coming event
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/enqueue"

    def fail(self, *faults: str) -> None:
        """Answer the next events with these faults, in order."""
        with self._lock:
            self._faults.extend(faults)

    def actions(self) -> list[tuple[str, str]]:
        """``(event_action, dedup_key)`` of every accepted event, in order."""
        with self._lock:
            return [(e["event_action"], e["dedup_key"]) for e in self.events]

    async def _enqueue(self, request: web.Request) -> web.Response:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else ""
        if fault == "hang":
            await asyncio.sleep(30)
        if fault == "429":
            return web.json_response(
                {"status": "throttled"}, status=429, headers={"Retry-After": "1"}
            )
        if fault == "500":
            return web.json_response({"status": "error"}, status=500)
        try:
            event = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response(
                {"status": "invalid event", "errors": ["not JSON"]}, status=400
            )
        problem = _problem(event)
        if problem:
            return web.json_response({"status": "invalid event", "errors": [problem]}, status=400)
        key = event.get("dedup_key") or f"generated-{len(self.events)}"
        state = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}
        with self._lock:
            self.events.append({**event, "dedup_key": key})
            current = self.alerts.get(key)
            if not (event["event_action"] == "trigger" and current == "acknowledged"):
                self.alerts[key] = state[event["event_action"]]
        return web.json_response({"status": "success", "dedup_key": key}, status=202)

    async def start(self) -> FakePagerDuty:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePagerDuty:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def threaded(cls) -> Iterator[FakePagerDuty]:
        """Run a server in a background thread for the duration of the ``with``."""
        server = cls()
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(server.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(server.stop())
            loop.close()

        thread = threading.Thread(target=run, name="fake-pagerduty", daemon=True)
        thread.start()
        if not ready.wait(10.0):
            raise RuntimeError("fake PagerDuty server did not start")
        try:
            yield server
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10.0)


def _problem(event: Any) -> str:
    if not isinstance(event, dict):
        return "event must be an object"
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        return "routing_key must be 32 characters"
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        return "event_action must be trigger, acknowledge or resolve"
    if action != "trigger" and not event.get("dedup_key"):
        return "dedup_key is required for acknowledge and resolve"
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return "payload is required for trigger"
        for name in ("summary", "source", "severity"):
            if not payload.get(name):
                return f"payload.{name} is required"
        if payload["severity"] not in SEVERITIES:
            return "payload.severity must be critical, error, warning or info"
        if len(payload["summary"]) > 1024:
            return "payload.summary is longer than 1024"
    return ""
