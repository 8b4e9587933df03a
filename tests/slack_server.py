"""A local server that speaks enough of Slack's Web API for tests and demos.

It implements ``auth.test``, ``chat.postMessage``, ``chat.update``,
``files.getUploadURLExternal``, the upload URL it hands out,
``files.completeUploadExternal`` and an incoming-webhook path; it records every call
(method, parameters from the query string, form or JSON body, headers without the
token) and keeps the messages, threads and files it was given. It checks the bot token
in the ``Authorization`` header as Slack does (``not_authed`` / ``invalid_auth``).

It can be told to fail: answer 429 with ``Retry-After``, answer 500, or not answer at
all, for the next N calls or until :meth:`FakeSlack.heal`.

Use it in the running event loop::

    async with FakeSlack() as slack:
        config = SlackConfig(bot_token=slack.token, base_url=slack.base_url)

or from synchronous code (a background thread with its own loop)::

    with FakeSlack.threaded() as slack:
        ...
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

DEFAULT_TOKEN = "xoxb-test-0000-secret"
WEBHOOK_PATH = "/services/T000/B000/whsecret0000"


@dataclass(frozen=True)
class RecordedCall:
    """One request the server received.

    Parameters
    ----------
    method
        Slack method (``chat.postMessage``...), ``upload`` or ``webhook``.
    params
        Query string, form fields and JSON body merged.
    headers
        Request headers without ``Authorization``.
    authorized
        Whether the bot token was right.
    status
        HTTP status answered (``0``: no answer, the server hung).
    body_size
        Raw body size in bytes.
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    authorized: bool
    status: int
    body_size: int = 0


@dataclass
class Fault:
    """Answer ``status`` (or hang when ``status`` is 0) for ``times`` calls (None: until
    healed), only for ``methods`` if given."""

    status: int
    times: int | None
    retry_after: float | None = None
    methods: frozenset[str] = frozenset()
    hang_s: float = 30.0


@dataclass
class StoredMessage:
    """A message as Slack would hold it."""

    channel: str
    ts: str
    params: dict[str, Any]
    thread_ts: str | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current(self) -> dict[str, Any]:
        """The latest content (after updates)."""
        return self.updates[-1] if self.updates else self.params


class FakeSlack:
    """The fake Slack server (see the module docstring).

    Parameters
    ----------
    token
        The bot token it accepts.
    host, port
        Where to listen (port 0: a free port).
    unknown_channels
        Channels answered with ``channel_not_found``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        unknown_channels: set[str] | None = None,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.unknown_channels = set(unknown_channels or ())
        self.messages: dict[str, StoredMessage] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.webhook_posts: list[dict[str, Any]] = []
        self._calls: list[RecordedCall] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- addresses -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Server root."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Web API root, for ``SlackConfig.base_url``."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        """Incoming-webhook URL, for ``SlackConfig.webhook_url``."""
        return f"{self.url}{WEBHOOK_PATH}"

    # -- faults ----------------------------------------------------------------------

    def fail(
        self,
        status: int = 500,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        methods: set[str] | None = None,
    ) -> None:
        """Answer ``status`` to the next ``times`` calls (``None``: until :meth:`heal`)."""
        with self._lock:
            self._faults.append(Fault(status, times, retry_after, frozenset(methods or ())))

    def hang(
        self, *, times: int | None = 1, seconds: float = 30.0, methods: set[str] | None = None
    ) -> None:
        """Do not answer the next ``times`` calls (each waits ``seconds``, then drops)."""
        with self._lock:
            self._faults.append(Fault(0, times, None, frozenset(methods or ()), seconds))

    def heal(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    # -- what was received -----------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call so far, in order."""
        with self._lock:
            return list(self._calls)

    def successful(self, method: str | None = None) -> list[RecordedCall]:
        """Calls answered 200 (optionally of one method)."""
        return [
            c
            for c in self.calls
            if c.status == 200 and c.authorized and (method is None or c.method == method)
        ]

    def top_level_messages(self) -> list[StoredMessage]:
        """Messages that are not thread replies, in posting order."""
        with self._lock:
            return [m for m in self.messages.values() if m.thread_ts is None]

    def thread(self, ts: str) -> list[StoredMessage]:
        """Replies in the thread of ``ts``, in order."""
        with self._lock:
            return [m for m in self.messages.values() if m.thread_ts == ts]

    def reset(self) -> None:
        """Forget calls, messages, files and faults."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self.messages.clear()
            self.files.clear()
            self.webhook_posts.clear()

    # -- running ---------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        """Listen in the running event loop."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/services/{rest:.*}", self._webhook)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def threaded(cls, **kwargs: Any) -> Iterator[FakeSlack]:
        """Run a server in a background thread for the duration of the ``with``."""
        server = cls(**kwargs)
        server.start_in_thread()
        try:
            yield server
        finally:
            server.stop_thread()

    def start_in_thread(self) -> None:
        """Start in a daemon thread with its own loop; returns once listening."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-slack", daemon=True)
        self._thread.start()
        if not ready.wait(10.0):
            raise RuntimeError("fake Slack server did not start")

    def stop_thread(self) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10.0)
            self._loop = self._thread = None

    # -- handlers --------------------------------------------------------------------

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], int]:
        params: dict[str, Any] = dict(request.query)
        raw = await request.read()
        ctype = request.content_type
        if ctype == "application/json" and raw:
            body = orjson.loads(raw)
            if isinstance(body, dict):
                params.update(body)
        elif ctype == "application/x-www-form-urlencoded" and raw:
            params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        elif ctype.startswith("multipart/"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params, len(raw)

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.methods and method not in fault.methods:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    async def _faulted(
        self, method: str, params: dict[str, Any], headers: dict[str, str], size: int, ok: bool
    ) -> web.Response | None:
        fault = self._take_fault(method)
        if fault is None:
            return None
        if fault.status == 0:
            self._record(RecordedCall(method, params, headers, ok, 0, size))
            await asyncio.sleep(fault.hang_s)
            raise web.HTTPServiceUnavailable()
        self._record(RecordedCall(method, params, headers, ok, fault.status, size))
        extra = {}
        if fault.retry_after is not None:
            extra["Retry-After"] = str(int(fault.retry_after))
        if fault.status == 429:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers=extra
            )
        return web.Response(status=fault.status, text="upstream trouble", headers=extra)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, size = await self._params(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        auth = request.headers.get("Authorization", "")
        authorized = auth == f"Bearer {self.token}"
        faulted = await self._faulted(method, params, headers, size, authorized)
        if faulted is not None:
            return faulted
        if not auth:
            result: dict[str, Any] = {"ok": False, "error": "not_authed"}
        elif not authorized:
            result = {"ok": False, "error": "invalid_auth"}
        else:
            result = self._dispatch(method, params, request)
        self._record(RecordedCall(method, params, headers, authorized, 200, size))
        return web.json_response(result)

    def _dispatch(
        self, method: str, params: dict[str, Any], request: web.Request
    ) -> dict[str, Any]:
        with self._lock:
            if method == "auth.test":
                return {"ok": True, "team": "test", "user": "aiops", "bot_id": "B1"}
            if method == "chat.postMessage":
                channel = str(params.get("channel", ""))
                if not channel or channel in self.unknown_channels:
                    return {"ok": False, "error": "channel_not_found"}
                thread_ts = params.get("thread_ts")
                if thread_ts is not None and str(thread_ts) not in self.messages:
                    return {"ok": False, "error": "thread_not_found"}
                ts = f"1700000000.{next(self._ts):06d}"
                self.messages[ts] = StoredMessage(
                    channel, ts, params, None if thread_ts is None else str(thread_ts)
                )
                return {"ok": True, "channel": channel, "ts": ts, "message": params}
            if method == "chat.update":
                message = self.messages.get(str(params.get("ts", "")))
                if message is None or message.channel != params.get("channel"):
                    return {"ok": False, "error": "message_not_found"}
                message.updates.append(params)
                return {"ok": True, "channel": message.channel, "ts": message.ts}
            if method == "files.getUploadURLExternal":
                if not params.get("filename") or not params.get("length"):
                    return {"ok": False, "error": "invalid_arguments"}
                file_id = f"F{next(self._file_ids):08d}"
                self.files[file_id] = {
                    "filename": params["filename"],
                    "length": int(params["length"]),
                    "content": None,
                    "completed": False,
                }
                return {
                    "ok": True,
                    "file_id": file_id,
                    "upload_url": f"{self.url}/upload/{file_id}",
                }
            if method == "files.completeUploadExternal":
                files = orjson.loads(params.get("files", "[]"))
                done = []
                for item in files:
                    stored = self.files.get(item.get("id", ""))
                    if stored is None or stored["content"] is None:
                        return {"ok": False, "error": "file_not_found"}
                    stored.update(
                        completed=True,
                        title=item.get("title"),
                        channel=params.get("channel_id"),
                        thread_ts=params.get("thread_ts"),
                    )
                    done.append({"id": item["id"], "title": item.get("title")})
                return {"ok": True, "files": done}
        return {"ok": False, "error": "unknown_method"}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        raw = await request.read()
        headers = dict(request.headers)
        faulted = await self._faulted("upload", {"file_id": file_id}, headers, len(raw), True)
        if faulted is not None:
            return faulted
        with self._lock:
            stored = self.files.get(file_id)
            if stored is not None:
                stored["content"] = raw
        status = 200 if stored is not None else 404
        self._record(RecordedCall("upload", {"file_id": file_id}, headers, True, status, len(raw)))
        return web.Response(status=status, text=f"OK - {len(raw)}", content_type="text/plain")

    async def _webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        ok = request.path == WEBHOOK_PATH
        params = orjson.loads(raw) if raw else {}
        faulted = await self._faulted("webhook", params, headers, len(raw), ok)
        if faulted is not None:
            return faulted
        if not ok:
            self._record(RecordedCall("webhook", params, headers, False, 404, len(raw)))
            return web.Response(status=404, text="no_service", content_type="text/plain")
        if not params.get("text") and not params.get("blocks") and not params.get("attachments"):
            self._record(RecordedCall("webhook", params, headers, True, 400, len(raw)))
            return web.Response(status=400, text="no_text", content_type="text/plain")
        with self._lock:
            self.webhook_posts.append(params)
        self._record(RecordedCall("webhook", params, headers, True, 200, len(raw)))
        return web.Response(status=200, text="ok", content_type="text/plain")
