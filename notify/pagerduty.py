"""PagerDuty Events API v2: one PagerDuty alert per incident, triggered, acknowledged and
resolved with it.

The incident id is the ``dedup_key``, so PagerDuty folds every event of one incident into
one alert, and a repeated event (after a restart, say) changes nothing. An incident is
triggered when it opens (and again when its title or severity changes), acknowledged when
someone acknowledges it here, resolved when it resolves. The routing key comes from the
first route that matches the incident (severity, services, as Slack's routes do), else the
default one.

Calls are retried like Alertmanager's notifiers retry: 429 (its ``Retry-After`` honoured),
5xx, timeouts and connection errors with backoff; when the retries run out,
:class:`~notify.exceptions.PagerDutyUnavailable` is raised and the caller delivers the same
snapshots again later (the worker reads ``aiops.incidents`` as an outbox: nothing is
acknowledged meanwhile). A 4xx other than 429 (an event PagerDuty will not take) is not
retried: it is logged, counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, SecretStr

from notify.config import RetryConfig, SlackRoute
from notify.exceptions import PagerDutyUnavailable
from notify.slack.retry import CallOutcome, Verdict, backoff_s, classify
from rca.model import Incident, IncidentState, Severity

log = logging.getLogger("notify.pagerduty")

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

PD_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}
"""PagerDuty's severity of each incident severity."""


class PagerDutyRoute(SlackRoute, frozen=True, extra="forbid"):
    """Incidents that match (as a Slack route matches) go to ``routing_key``; the route's
    ``channel`` is not used."""

    channel: str = ""
    routing_key: SecretStr


class PagerDutyConfig(BaseModel, frozen=True, extra="forbid"):
    """PagerDuty Events API v2 settings.

    Parameters
    ----------
    routing_key
        Integration key of the service that incidents page by default; none and no route:
        PagerDuty is off.
    routes
        Checked in order; the first route that matches gives the routing key.
    url
        The Events API endpoint; point it at a local server in tests.
    min_severity
        Incidents below this severity are not sent.
    source
        The ``source`` of an event when an incident names no service.
    console_url
        Base URL of the incident console; each event links to ``<console_url>/incidents/<id>``.
    retry
        Retry and timeout policy.
    """

    routing_key: SecretStr | None = None
    routes: tuple[PagerDutyRoute, ...] = ()
    url: str = EVENTS_URL
    min_severity: Severity = Severity.WARNING
    source: str = "aiops-stream"
    console_url: str | None = None
    retry: RetryConfig = RetryConfig()

    @property
    def enabled(self) -> bool:
        """Whether any routing key is set."""
        key = self.routing_key.get_secret_value() if self.routing_key else ""
        return bool(key or self.routes)

    def routing_key_for(self, incident: Incident) -> str | None:
        """The routing key of an incident (None: it is not sent)."""
        if incident.severity.rank < self.min_severity.rank:
            return None
        for route in self.routes:
            if route.matches(incident):
                return route.routing_key.get_secret_value()
        return self.routing_key.get_secret_value() if self.routing_key else None


def event_action(incident: Incident, sent: tuple[str, str] | None) -> str | None:
    """What to send for a snapshot, given what was last sent for its incident (``(action,
    what it said)``): ``trigger``, ``acknowledge``, ``resolve`` or ``None`` (nothing new).

    >>> from rca.model import IncidentState, Severity
    >>> inc = Incident(id="i", version=1, state=IncidentState.OPENED, severity=Severity.WARNING,
    ...                title="api: latency", services=("api",), opened_at=0.0, updated_at=0.0)
    >>> event_action(inc, None), event_action(inc, ("trigger", "warning|api: latency"))
    ('trigger', None)
    """
    if incident.state is IncidentState.RESOLVED:
        return None if sent is not None and sent[0] == "resolve" else "resolve"
    said = f"{incident.severity}|{incident.title}"
    if sent is None or sent[0] == "resolve" or (sent[0] == "trigger" and sent[1] != said):
        return "trigger"
    if incident.acknowledged and sent[0] == "trigger":
        return "acknowledge"
    return None


def event_body(
    incident: Incident, action: str, routing_key: str, config: PagerDutyConfig
) -> dict[str, Any]:
    """The Events API v2 body of one action on one incident."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": incident.id,
    }
    if action != "trigger":
        return body
    top = incident.root_causes[0] if incident.root_causes else None
    details: dict[str, Any] = {
        "incident_id": incident.id,
        "version": incident.version,
        "state": str(incident.state),
        "services": list(incident.services),
        "root_causes": [
            {"service": c.service, "signal": c.signal, "score": c.score, "why": c.explanation}
            for c in incident.root_causes[:3]
        ],
        "actions": [f"{a.action} {a.target} ({a.status})" for a in incident.actions],
    }
    payload: dict[str, Any] = {
        "summary": (incident.title or f"incident {incident.id}")[:1024],
        "source": incident.services[0] if incident.services else config.source,
        "severity": PD_SEVERITY[incident.severity],
        "timestamp": datetime.fromtimestamp(incident.opened_at, UTC).isoformat(),
        "group": ",".join(incident.services)[:255],
        "custom_details": details,
    }
    if top is not None:
        payload["component"] = top.service
        payload["class"] = top.kind
    body["payload"] = payload
    if config.console_url:
        href = f"{config.console_url.rstrip('/')}/incidents/{incident.id}"
        body["links"] = [{"href": href, "text": "aiops-stream incident"}]
    return body


@dataclass
class PagerDutyReport:
    """What one :meth:`PagerDutyNotifier.deliver` did."""

    sent: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    retries: int = 0

    def counts(self) -> dict[tuple[str, str], int]:
        """``(event action, outcome)`` counts."""
        out = {(action, "ok"): n for action, n in self.sent.items()}
        for rejected in self.rejected:
            key = (rejected.split(" ", 1)[0], "rejected")
            out[key] = out.get(key, 0) + 1
        if self.retries:
            out[("any", "retry")] = self.retries
        return out


Post = Callable[[str, dict[str, Any], float], Awaitable[CallOutcome]]


class PagerDutyNotifier:
    """Sends incident snapshots to PagerDuty (see the module's description).

    Parameters
    ----------
    config
        PagerDuty settings.
    post
        Overrides the HTTP call (tests); by default an ``aiohttp`` POST.
    sleep
        How to wait between attempts.
    max_incidents
        Incidents whose last event is remembered (a forgotten one is sent again: PagerDuty
        folds it by its ``dedup_key``).
    """

    def __init__(
        self,
        config: PagerDutyConfig,
        *,
        post: Post | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_incidents: int = 10_000,
    ) -> None:
        self.config = config
        self._post = post or self._aiohttp_post
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._sent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.max_incidents = max_incidents
        self.name = "pagerduty"

    async def deliver(self, snapshots: Sequence[Incident]) -> PagerDutyReport:
        """Send what is new in a batch of snapshots (latest per incident, in order of
        first appearance). Raises :class:`PagerDutyUnavailable` when PagerDuty stays
        unreachable; what was sent before is remembered and not sent again."""
        report = PagerDutyReport()
        latest: dict[str, Incident] = {}
        for snap in snapshots:
            known = latest.get(snap.id)
            if known is None or snap.version >= known.version:
                latest[snap.id] = snap
        for incident in latest.values():
            if incident.predicted and not incident.anomalies:
                continue
            key = self.config.routing_key_for(incident)
            if key is None:
                continue
            sent = self._sent.get(incident.id)
            action = event_action(incident, sent)
            if action is None:
                continue
            if action == "acknowledge" and sent is None:
                continue
            body = event_body(incident, action, key, self.config)
            if await self._send(body, report):
                report.sent[action] = report.sent.get(action, 0) + 1
            said = f"{incident.severity}|{incident.title}" if action == "trigger" else action
            self._remember(incident.id, (action, said))
            if action == "trigger" and incident.acknowledged:
                ack = event_body(incident, "acknowledge", key, self.config)
                if await self._send(ack, report):
                    report.sent["acknowledge"] = report.sent.get("acknowledge", 0) + 1
                self._remember(incident.id, ("acknowledge", "acknowledge"))
        return report

    async def close(self) -> None:
        """Release the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _remember(self, incident_id: str, sent: tuple[str, str]) -> None:
        self._sent[incident_id] = sent
        self._sent.move_to_end(incident_id)
        while len(self._sent) > self.max_incidents:
            self._sent.popitem(last=False)

    async def _send(self, body: dict[str, Any], report: PagerDutyReport) -> bool:
        """One event, retried; False if PagerDuty refused it (logged and counted)."""
        retry = self.config.retry
        action = body["event_action"]
        for attempt in range(1, retry.max_attempts + 1):
            outcome = await self._post(self.config.url, body, retry.timeout_s)
            verdict, reason = classify(outcome)
            if verdict is Verdict.OK:
                return True
            if verdict is Verdict.REJECT:
                log.error("PagerDuty refused %s of %s: %s", action, body["dedup_key"], reason)
                report.rejected.append(f"{action} {body['dedup_key']}: {reason}")
                return False
            if attempt == retry.max_attempts:
                raise PagerDutyUnavailable(action, reason, attempt)
            report.retries += 1
            await self._sleep(backoff_s(attempt, retry, retry_after=outcome.retry_after))
        return False  # pragma: no cover - the loop returns or raises

    async def _aiohttp_post(self, url: str, body: dict[str, Any], timeout: float) -> CallOutcome:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                text = await response.text()
                retry_after = response.headers.get("Retry-After")
                error = None if 200 <= response.status < 300 else (text[:200] or None)
                return CallOutcome(
                    response.status,
                    None if response.status == 429 or response.status >= 500 else error,
                    float(retry_after) if retry_after and retry_after.isdigit() else None,
                )
        except TimeoutError:
            return CallOutcome(None, failure="timeout")
        except aiohttp.ClientError:
            return CallOutcome(None, failure="connection")
