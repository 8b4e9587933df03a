"""The console's HTTP side: the JSON API, the server-rendered pages and live updates.

Every read comes from a :class:`~console.view.ConsoleView`; every change is a command
handed to a :class:`Publisher` (the control topic in production) and answered 202 once
the broker has it. The engine applies the command and publishes the new snapshot, which
comes back through the view to every open page.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import jinja2
import orjson
from aiohttp import web

from console import commands
from console.auth import SESSION_COOKIE, Authenticator
from console.commands import Command, RequestError
from console.view import Change, ConsoleView, summary
from notify.chart import render_chart
from notify.config import ChartConfig
from rca.model import Incident
from rca.silences import Matcher

MAX_BODY_BYTES = 64 * 1024
_PACKAGE = Path(str(resources.files("console")))
_STATES = {"open", "resolved"}
USER = web.RequestKey("user", str)
CHART_CACHE = 256  # rendered charts kept, by series and its latest point

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Publisher(Protocol):
    """Where commands go; ``send`` returns once the command is durable."""

    async def send(self, command: Command) -> None:
        """Publish one command."""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        content_type="application/json",
    )


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    return _json(RequestError(status, message, field).to_dict(), status)


def _time_text(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _age_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


class Console:
    """The console's aiohttp application around a view, a publisher and an authenticator.

    Parameters
    ----------
    view
        What the topics say.
    publisher
        Where commands go.
    auth
        Credentials; without any, the console refuses to start unless ``open_access``.
    read_without_login
        Let anyone who reaches the port read (changes still need credentials).
    open_access
        No credentials at all (a local demo): every request acts as ``anonymous``.
    ready
        Called by ``/health``: True once the view has read the topics to their end.
    """

    def __init__(
        self,
        view: ConsoleView,
        publisher: Publisher,
        auth: Authenticator,
        *,
        read_without_login: bool = False,
        open_access: bool = False,
        ready: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        chart_config: ChartConfig | None = None,
    ) -> None:
        if not auth.configured and not open_access:
            raise ValueError("the console needs a token or a user (console.tokens / users)")
        self.view = view
        self.publisher = publisher
        self.auth = auth
        self.read_without_login = read_without_login
        self.open_access = open_access
        self.ready = ready
        self.clock = clock
        self.chart_config = chart_config or ChartConfig()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_PACKAGE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["time"] = _time_text
        self.templates.filters["age"] = lambda t: _age_text(self.clock() - t)
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        self._charts: OrderedDict[tuple[str, float, int], bytes] = OrderedDict()
        self._unsubscribe = view.subscribe(self._on_change)

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        """The aiohttp application (middlewares, routes, static files)."""
        app = web.Application(
            client_max_size=MAX_BODY_BYTES,
            middlewares=[self._errors, self._headers, self._authenticate],
        )
        r = app.router
        r.add_get("/health", self.health)
        r.add_get("/openapi.json", self.openapi)
        r.add_get("/api/incidents", self.api_incidents)
        r.add_get("/api/incidents/{id}", self.api_incident)
        r.add_get("/api/incidents/{id}/history", self.api_history)
        r.add_post("/api/incidents/{id}/acknowledge", self.api_acknowledge)
        r.add_post("/api/incidents/{id}/resolve", self.api_resolve)
        r.add_post("/api/incidents/{id}/silence", self.api_silence_incident)
        r.add_get("/api/anomalies", self.api_anomalies)
        r.add_get("/api/silences", self.api_silences)
        r.add_post("/api/silences", self.api_create_silence)
        r.add_get("/api/silences/preview", self.api_preview)
        r.add_post("/api/silences/{id}/expire", self.api_expire)
        r.add_get("/api/actions", self.api_actions)
        r.add_post("/api/actions/{id}/approve", self.api_approve)
        r.add_post("/api/actions/{id}/reject", self.api_reject)
        r.add_get("/api/events", self.events)
        r.add_get("/", self.page_list)
        r.add_get("/incidents/{id}", self.page_incident)
        r.add_get("/silences", self.page_silences)
        r.add_get("/charts/{fingerprint}.png", self.chart)
        r.add_get("/fragments/incidents", self.fragment_list)
        r.add_get("/fragments/incidents/{id}", self.fragment_incident)
        r.add_get("/login", self.page_login)
        r.add_post("/login", self.login)
        r.add_post("/logout", self.logout)
        r.add_static("/static", _PACKAGE / "static", append_version=True, name="static")
        app.on_shutdown.append(self._close_streams)
        return app

    # ----------------------------------------------------------- middlewares

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as exc:
            return _json(exc.to_dict(), exc.status)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException as exc:
            if request.path.startswith("/api/") and exc.status >= 400:
                return _error(exc.status, exc.reason)
            raise

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in ("/health", "/login") or path.startswith("/static/"):
            return await handler(request)
        user = self._user(request)
        if request.method == "POST" and path != "/logout":
            if user is None or (user == "anonymous" and not self.open_access):
                return _error(401, "sign in or send 'Authorization: Bearer <token>'")
            self._same_origin(request)
            has_body = request.can_read_body or request.content_length
            if (has_body or request.content_type != "application/octet-stream") and (
                request.content_type != "application/json"
            ):
                return _error(415, "send the body as application/json")
        elif user is None and not self.read_without_login:
            if path.startswith(("/api/", "/fragments/", "/openapi")):
                return _error(401, "sign in or send 'Authorization: Bearer <token>'")
            raise web.HTTPSeeOther(f"/login?next={request.rel_url}")
        request[USER] = user or "anonymous"
        return await handler(request)

    def _user(self, request: web.Request) -> str | None:
        if self.open_access:
            return "anonymous"
        header = request.headers.get("Authorization")
        if header:
            return self.auth.header(header)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return self.auth.session(cookie, now=self.clock())
        return None

    def _same_origin(self, request: web.Request) -> None:
        """A change from a browser must come from this console's own pages."""
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser, or a same-origin request that sent none
            return
        if origin.split("://", 1)[-1] != request.host:
            raise RequestError(403, f"cross-site request from {origin} refused")

    # ------------------------------------------------------------- reading

    async def health(self, request: web.Request) -> web.Response:
        ready = self.ready()
        return _json({"ready": ready, "incidents": len(self.view)}, 200 if ready else 503)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(
            body=(_PACKAGE / "openapi.json").read_bytes(), content_type="application/json"
        )

    def _page_args(self, request: web.Request) -> dict[str, Any]:
        q = request.query
        state = q.get("state") or None
        if state is not None and state not in _STATES:
            raise RequestError(422, "'state' must be open or resolved", field="state")
        return {
            "state": state,
            "service": q.get("service") or None,
            "since": _number(q, "since"),
            "offset": int(_number(q, "offset") or 0),
            "limit": int(_number(q, "limit", high=500) or 50),
        }

    async def api_incidents(self, request: web.Request) -> web.Response:
        page = self.view.incidents(**self._page_args(request))
        return _json(
            {
                "items": [summary(i) for i in page.items],
                "total": page.total,
                "next_offset": page.next_offset,
            }
        )

    def _incident(self, request: web.Request) -> Incident:
        incident = self.view.get(request.match_info["id"])
        if incident is None:
            raise RequestError(404, f"unknown incident {request.match_info['id']}")
        return incident

    async def api_incident(self, request: web.Request) -> web.Response:
        incident = self._incident(request)
        return _json({**incident.to_dict(), "evidence": self.view.evidence(incident)})

    async def api_history(self, request: web.Request) -> web.Response:
        incident = self._incident(request)
        return _json({"items": [v.to_dict() for v in self.view.history(incident.id)]})

    async def api_anomalies(self, request: web.Request) -> web.Response:
        q = request.query
        items = self.view.anomalies(
            service=q.get("service") or None,
            since=_number(q, "since"),
            limit=int(_number(q, "limit", high=1000) or 100),
        )
        return _json({"items": items})

    async def api_silences(self, request: web.Request) -> web.Response:
        at = self.view.now
        return _json(
            {
                "items": [
                    {**s.to_dict(), "active": s.active(at), "ended": s.ends_at <= at}
                    for s in self.view.silence_list()
                ]
            }
        )

    async def api_preview(self, request: web.Request) -> web.Response:
        texts = request.query.getall("matcher", [])
        if not texts:
            raise RequestError(422, "give at least one 'matcher'", field="matcher")
        try:
            matchers = [Matcher.parse(t) for t in texts]
        except ValueError as exc:
            raise RequestError(422, str(exc), field="matcher") from exc
        return _json({"items": [summary(i) for i in self.view.would_mute(matchers)]})

    async def api_actions(self, request: web.Request) -> web.Response:
        state = request.query.get("state") or None
        return _json({"items": [a.to_dict() for a in self.view.actions(state=state)]})

    # ------------------------------------------------------------- changing

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RequestError(400, f"the body is not JSON: {exc}") from exc

    async def _publish(self, command: Command) -> web.Response:
        await self.publisher.send(command)
        return _json({"accepted": command.body}, 202)

    async def api_acknowledge(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        cmd = commands.acknowledge(self.view, request.match_info["id"], body, request[USER])
        return await self._publish(cmd)

    async def api_resolve(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        cmd = commands.resolve(self.view, request.match_info["id"], body, request[USER])
        return await self._publish(cmd)

    async def api_silence_incident(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        cmd = commands.silence_incident(self.view, request.match_info["id"], body, request[USER])
        return await self._publish(cmd)

    async def api_create_silence(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        cmd = commands.silence(self.view, body, request[USER], now=self.clock())
        return await self._publish(cmd)

    async def api_expire(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        cmd = commands.expire_silence(self.view, request.match_info["id"], body, request[USER])
        return await self._publish(cmd)

    async def api_approve(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        cmd = commands.decide(
            self.view, request.match_info["id"], body, request[USER], approve=True
        )
        return await self._publish(cmd)

    async def api_reject(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        cmd = commands.decide(
            self.view, request.match_info["id"], body, request[USER], approve=False
        )
        return await self._publish(cmd)

    # ------------------------------------------------------------- live

    def _on_change(self, change: Change) -> None:
        data = orjson.dumps(summary(change.incident))
        message = b"event: incident\ndata: " + data + b"\n\n"
        for queue in list(self._streams):
            if queue.full():  # a client that does not read: drop it, it reconnects
                self._streams.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: one ``incident`` event per new snapshot (its summary)."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1000)
        self._streams.add(queue)
        try:
            await response.write(b"retry: 2000\n: connected\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    message = b": keep-alive\n\n"
                if message is None:
                    break
                await response.write(message)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(queue)
        return response

    async def _close_streams(self, app: web.Application) -> None:
        for queue in list(self._streams):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._streams.clear()

    # ------------------------------------------------------------- pages

    def _render(self, request: web.Request, name: str, **context: Any) -> web.Response:
        text = self.templates.get_template(name).render(
            user=request.get(USER, ""),
            signed_in=request.get(USER) not in (None, "anonymous") or self.open_access,
            static=lambda p: str(request.app.router["static"].url_for(filename=p)),
            **context,
        )
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    def _list_context(self, request: web.Request) -> dict[str, Any]:
        args = self._page_args(request)
        page = self.view.incidents(**args)
        return {"page": page, "filters": args, "query": request.query_string}

    async def page_list(self, request: web.Request) -> web.Response:
        return self._render(request, "incidents.html", **self._list_context(request))

    async def fragment_list(self, request: web.Request) -> web.Response:
        return self._render(request, "_incident_rows.html", **self._list_context(request))

    def _incident_context(self, request: web.Request) -> dict[str, Any]:
        incident = self._incident(request)
        evidence = {e.get("fingerprint"): e for e in self.view.evidence(incident)}
        logs = [e for e in evidence.values() if e.get("kind") == "log"]
        return {
            "incident": incident,
            "evidence": evidence,
            "charts": _candidate_charts(incident),
            "logs": logs,
            "versions": len(self.view.history(incident.id)),
        }

    async def page_incident(self, request: web.Request) -> web.Response:
        return self._render(request, "incident.html", **self._incident_context(request))

    async def fragment_incident(self, request: web.Request) -> web.Response:
        return self._render(request, "_incident_body.html", **self._incident_context(request))

    async def chart(self, request: web.Request) -> web.Response:
        """The chart of a series around its onset with its normal band: the picture the
        Slack thread gets, drawn from the points on the series topic."""
        fingerprint = request.match_info["fingerprint"]
        series = self.view.series(fingerprint)
        if series is None:
            raise RequestError(404, f"no points of series {fingerprint!r} (yet)")
        key = (fingerprint, float(series.times[-1]), len(series.times))
        png = self._charts.get(key)
        if png is None:
            png = await asyncio.to_thread(
                render_chart,
                series.times,
                series.values,
                onset=series.onset,
                band=series.band,
                title=series.label,
                config=self.chart_config,
            )
            self._charts[key] = png
            while len(self._charts) > CHART_CACHE:
                self._charts.popitem(last=False)
        self._charts.move_to_end(key)
        return web.Response(
            body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=5"}
        )

    async def page_silences(self, request: web.Request) -> web.Response:
        at = self.view.now
        return self._render(request, "silences.html", silences=self.view.silence_list(), now=at)

    async def page_login(self, request: web.Request) -> web.Response:
        return self._render(
            request, "login.html", next=_local(request.query.get("next", "/")), failed=False
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        self._same_origin(request)
        form = await request.post()
        user = str(form.get("user", ""))
        secret = str(form.get("password", ""))
        who = self.auth.password(user, secret) if user else self.auth.bearer(secret)
        target = _local(str(form.get("next", "/")))
        if who is None:
            response = self._render(request, "login.html", next=target, failed=True)
            response.set_status(401)
            return response
        response = web.Response(status=303, headers={"Location": target})
        response.set_cookie(
            SESSION_COOKIE,
            self.auth.issue(who, now=self.clock()),
            httponly=True,
            samesite="Strict",
            max_age=int(self.auth.session_s),
            path="/",
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(status=303, headers={"Location": "/login"})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response


def _local(target: str) -> str:
    """Only paths of this console are followed after sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _number(query: Any, name: str, *, high: float | None = None) -> float | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise RequestError(422, f"{name!r} must be a number", field=name) from exc
    if value < 0 or (high is not None and value > high) or value != value:
        limit = f" and at most {high:.0f}" if high is not None else ""
        raise RequestError(422, f"{name!r} must be 0 or more{limit}", field=name)
    return value


def _candidate_charts(incident: Incident, top: int = 3) -> dict[int, str]:
    """For each of the top root-cause candidates whose signal is a metric series, the
    fingerprint of that series (its strongest one when several share the name)."""
    charts: dict[int, str] = {}
    for index, candidate in enumerate(incident.root_causes[:top]):
        refs = [
            ref
            for ref in incident.anomalies
            if ref.kind == "metric"
            and ref.service == candidate.service
            and ref.signal == candidate.signal
        ]
        if refs:
            best = max(refs, key=lambda r: (r.peak_z or 0.0, r.peak_score))
            charts[index] = best.fingerprint
    return charts
