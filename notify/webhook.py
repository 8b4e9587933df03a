"""A generic webhook: every incident change as JSON, signed, retried.

Each snapshot of ``aiops.incidents`` is POSTed as it is (or as a CloudEvent, ``cloudevents``
on) to ``url``. With a ``secret`` the request carries the signature of Slack's scheme, so a
receiver can check it the same way:

- ``X-Aiops-Request-Timestamp``: epoch seconds of the request;
- ``X-Aiops-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed by the secret, of
  ``v1:<timestamp>:<body>``.

A receiver recomputes the HMAC over the raw body and refuses a timestamp more than five
minutes old (replays). 429, 5xx, timeouts and connection errors are retried with backoff;
when the retries run out, :class:`~notify.exceptions.WebhookUnavailable` is raised and the
same snapshots are delivered later (the worker reads ``aiops.incidents`` as an outbox).
Another 4xx is logged, counted and skipped. Within a batch, each incident's snapshots are
sent in version order, each once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import orjson
from pydantic import BaseModel, SecretStr

from notify.config import RetryConfig
from notify.exceptions import WebhookUnavailable
from notify.slack.retry import CallOutcome, Verdict, backoff_s, classify
from rca.model import Incident

log = logging.getLogger("notify.webhook")

TIMESTAMP_HEADER = "X-Aiops-Request-Timestamp"
SIGNATURE_HEADER = "X-Aiops-Signature"


class WebhookConfig(BaseModel, frozen=True, extra="forbid"):
    """The generic incident webhook.

    Parameters
    ----------
    url
        Where every incident change is POSTed; none: the webhook is off.
    secret
        Key of the HMAC-SHA256 signature (none: requests are not signed).
    cloudevents
        Send each snapshot as a CloudEvent (structured mode, ``application/cloudevents+json``,
        type ``io.aiops-stream.incident.<state>``) instead of the bare snapshot.
    retry
        Retry and timeout policy.
    """

    url: str | None = None
    secret: SecretStr | None = None
    cloudevents: bool = False
    retry: RetryConfig = RetryConfig()

    @property
    def enabled(self) -> bool:
        """Whether a URL is set."""
        return bool(self.url)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Aiops-Signature`` value of a body sent at ``timestamp``.

    >>> sign("s3cret", 1796292000, b'{"id":"inc-1"}')[:12]
    'v1=adcba114e'
    """
    base = b"v1:" + str(timestamp).encode() + b":" + body
    return "v1=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> bool:
    """Whether a request's signature holds and its timestamp is at most 5 minutes old
    (what a receiver does).

    >>> verify("k", {TIMESTAMP_HEADER: "100", SIGNATURE_HEADER: sign("k", 100, b"x")}, b"x",
    ...        now=130.0)
    True
    """
    try:
        stamp = int(headers[TIMESTAMP_HEADER])
        given = headers[SIGNATURE_HEADER]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - stamp) > 300:
        return False
    return hmac.compare_digest(given, sign(secret, stamp, body))


def request_body(incident: Incident, *, cloudevents: bool) -> tuple[bytes, str]:
    """The body of one snapshot and its content type."""
    data = incident.to_dict()
    if not cloudevents:
        return orjson.dumps(data), "application/json"
    event = {
        "specversion": "1.0",
        "id": f"{incident.id}-v{incident.version}",
        "source": "aiops-stream",
        "type": f"io.aiops-stream.incident.{incident.state}",
        "subject": incident.id,
        "time": _rfc3339(incident.updated_at),
        "datacontenttype": "application/json",
        "data": data,
    }
    return orjson.dumps(event), "application/cloudevents+json"


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class WebhookReport:
    """What one :meth:`WebhookNotifier.deliver` did."""

    sent: int = 0
    rejected: list[str] = field(default_factory=list)
    retries: int = 0

    def counts(self) -> dict[tuple[str, str], int]:
        """``("post", outcome)`` counts."""
        out = {("post", "ok"): self.sent, ("post", "rejected"): len(self.rejected)}
        if self.retries:
            out[("post", "retry")] = self.retries
        return {k: v for k, v in out.items() if v}


Post = Callable[[str, bytes, dict[str, str], float], Awaitable[CallOutcome]]


class WebhookNotifier:
    """Posts incident snapshots to a webhook (see the module's description)."""

    def __init__(
        self,
        config: WebhookConfig,
        *,
        post: Post | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._post = post or self._aiohttp_post
        self._sleep = sleep
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._done: dict[str, int] = {}  # incident id -> highest version sent
        self.name = "webhook"

    async def deliver(self, snapshots: Sequence[Incident]) -> WebhookReport:
        """Send each new snapshot once, each incident's in version order. Raises
        :class:`WebhookUnavailable` when the receiver stays unreachable."""
        report = WebhookReport()
        first: dict[str, int] = {}
        for index, snap in enumerate(snapshots):
            first.setdefault(snap.id, index)
        unique = {(s.id, s.version): s for s in snapshots}
        ordered = sorted(unique.values(), key=lambda s: (first[s.id], s.version))
        for snap in ordered:
            if snap.version <= self._done.get(snap.id, 0):
                continue
            if await self._send(snap, report):
                report.sent += 1
            self._done[snap.id] = snap.version
            if len(self._done) > 100_000:
                self._done.pop(next(iter(self._done)))
        return report

    async def close(self) -> None:
        """Release the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, snap: Incident, report: WebhookReport) -> bool:
        assert self.config.url is not None
        retry = self.config.retry
        body, content_type = request_body(snap, cloudevents=self.config.cloudevents)
        for attempt in range(1, retry.max_attempts + 1):
            headers = {"Content-Type": content_type, "User-Agent": "aiops-stream"}
            if self.config.secret is not None:
                stamp = int(self._clock())
                headers[TIMESTAMP_HEADER] = str(stamp)
                headers[SIGNATURE_HEADER] = sign(self.config.secret.get_secret_value(), stamp, body)
            outcome = await self._post(self.config.url, body, headers, retry.timeout_s)
            verdict, reason = classify(outcome)
            if verdict is Verdict.OK:
                return True
            if verdict is Verdict.REJECT:
                log.error("webhook refused %s v%d: %s", snap.id, snap.version, reason)
                report.rejected.append(f"{snap.id} v{snap.version}: {reason}")
                return False
            if attempt == retry.max_attempts:
                raise WebhookUnavailable(reason, attempt)
            report.retries += 1
            await self._sleep(backoff_s(attempt, retry, retry_after=outcome.retry_after))
        return False  # pragma: no cover - the loop returns or raises

    async def _aiohttp_post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> CallOutcome:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                text = await response.text()
                retry_after = response.headers.get("Retry-After")
                transient = response.status == 429 or response.status >= 500
                ok = 200 <= response.status < 300
                return CallOutcome(
                    response.status,
                    None if ok or transient else (text[:200] or f"http {response.status}"),
                    float(retry_after) if retry_after and retry_after.isdigit() else None,
                )
        except TimeoutError:
            return CallOutcome(None, failure="timeout")
        except aiohttp.ClientError:
            return CallOutcome(None, failure="connection")
