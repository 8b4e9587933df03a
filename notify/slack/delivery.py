"""The Slack notifier: snapshots in, Slack calls out, with retries and remembered state.

The incidents topic is the durable outbox: the worker's agent hands :meth:`SlackNotifier.
deliver` the snapshots it consumed and lets offsets advance only once ``deliver``
returned. If Slack stays unreachable, ``deliver`` raises
:class:`~notify.exceptions.SlackUnavailable` and the agent calls again later with the same
(and newer) snapshots; the :class:`~notify.slack.state.MessageRef` stored after every
successful call makes the repeat send only what is missing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from notify.chart import SeriesWindow, render_chart
from notify.config import SlackConfig
from notify.exceptions import SlackCallFailed, SlackRejected, SlackUnavailable
from notify.slack.plan import OpKind, SlackOp, chart_signal, collapse, initial_ref, plan_incident
from notify.slack.render import render_event, render_incident, render_new_service
from notify.slack.retry import Verdict, backoff_s, classify
from notify.slack.state import MessageRef, MessageStateStore
from notify.slack.transport import (
    SlackTransport,
    WebApiTransport,
    WebhookTransport,
    redacting_logger,
)
from rca.model import Incident

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A call Slack refused for good (logged, counted, not retried)."""

    incident_id: str
    method: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one :meth:`SlackNotifier.deliver` call did.

    Parameters
    ----------
    incidents
        Incidents in the batch (after collapsing).
    snapshots
        Snapshots in the batch.
    posted, updated, replies, charts
        Successful operations of each kind.
    suppressed
        Incidents not posted (silenced, below ``min_severity``, forecast filtered).
    retries
        Calls repeated after a retryable failure.
    rejected
        Calls Slack refused for good.
    calls
        ``(method, outcome)`` counts, outcome ``ok``, ``retry`` or ``rejected``: what
        the ``aiops_slack_deliveries_total`` metric counts.
    """

    incidents: int = 0
    snapshots: int = 0
    posted: int = 0
    updated: int = 0
    replies: int = 0
    charts: int = 0
    suppressed: int = 0
    retries: int = 0
    rejected: tuple[Rejection, ...] = ()
    calls: dict[tuple[str, str], int] = field(default_factory=dict)

    def counts(self) -> dict[tuple[str, str], int]:
        """``(method, outcome)`` counts (see ``calls``)."""
        return dict(self.calls)


@dataclass
class _Tally:
    posted: int = 0
    updated: int = 0
    replies: int = 0
    charts: int = 0
    suppressed: int = 0
    retries: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)


def make_transport(config: SlackConfig) -> SlackTransport:
    """The transport the configuration asks for (bot token, else webhook, else render)."""
    mode = config.mode
    if mode == "web_api" and config.bot_token is not None:
        return WebApiTransport(
            config.bot_token.get_secret_value(),
            base_url=config.base_url,
            timeout_s=config.retry.timeout_s,
            username=config.username,
            icon_emoji=config.icon_emoji,
        )
    if mode == "webhook" and config.webhook_url is not None:
        return WebhookTransport(
            config.webhook_url.get_secret_value(),
            timeout_s=config.retry.timeout_s,
            username=config.username,
            icon_emoji=config.icon_emoji,
        )
    from notify.terminal import RenderTransport

    return RenderTransport(render_dir=config.render_dir, terminal=config.render_terminal)


def _secrets(config: SlackConfig) -> list[str]:
    return [
        s.get_secret_value()
        for s in (config.bot_token, config.webhook_url, config.signing_secret)
        if s is not None and s.get_secret_value()
    ]


class SlackNotifier:
    """Posts, updates and threads one Slack message per incident.

    Parameters
    ----------
    config
        Slack settings (routing, mode, retries, chart).
    store
        Where message references are kept (a Faust table in the worker).
    series_window
        Recent metric points, for charts; without it no chart is posted.
    transport
        Overrides the transport chosen from ``config`` (tests).
    sleep
        How to wait between attempts (tests pass a fake).

    Examples
    --------
    >>> import asyncio
    >>> from notify.slack.state import InMemoryStateStore
    >>> from rca.model import IncidentState, Severity
    >>> inc = Incident(id="inc-1", version=1, state=IncidentState.OPENED,
    ...                severity=Severity.WARNING, title="api: latency anomaly",
    ...                services=("api",), opened_at=0.0, updated_at=0.0)
    >>> notifier = SlackNotifier(SlackConfig(render_terminal=False),
    ...                          store=InMemoryStateStore())
    >>> asyncio.run(notifier.deliver([inc])).posted
    1
    """

    def __init__(
        self,
        config: SlackConfig,
        *,
        store: MessageStateStore,
        series_window: SeriesWindow | None = None,
        transport: SlackTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.store = store
        self.series_window = series_window
        self.transport = transport or make_transport(config)
        self._sleep = sleep
        self.interactive = config.interactive
        self.log = redacting_logger("notify.slack", _secrets(config))
        self.name = "slack"

    async def deliver(self, snapshots: Sequence[Incident]) -> DeliveryReport:
        """Deliver a batch of snapshots (any order, duplicates allowed).

        Incidents go out in order of their first snapshot in the batch, each collapsed
        to its latest state plus thread replies for the events in between. Raises
        :class:`~notify.exceptions.SlackUnavailable` when Slack stays unreachable;
        refused calls are logged, counted in the report and skipped.
        """
        tally = _Tally()
        groups = collapse(snapshots)
        for group in groups:
            await self._deliver_incident(group, tally)
        return DeliveryReport(
            incidents=len(groups),
            snapshots=len(snapshots),
            posted=tally.posted,
            updated=tally.updated,
            replies=tally.replies,
            charts=tally.charts,
            suppressed=tally.suppressed,
            retries=tally.retries,
            rejected=tuple(tally.rejected),
            calls=dict(tally.calls),
        )

    async def close(self) -> None:
        """Release the transport's connections."""
        await self.transport.close()

    async def _deliver_incident(self, group: list[Incident], tally: _Tally) -> None:
        latest = group[-1]
        ref = self.store.get(latest.id)
        fingerprint = chart_signal(latest)
        window = self.series_window
        chart_ok = (
            self.config.mode != "webhook"
            and window is not None
            and fingerprint is not None
            and fingerprint in window
        )
        ops = plan_incident(group, ref, self.config, chart_available=chart_ok)
        if ref is None and not ops:
            tally.suppressed += 1
            return
        for op in ops:
            try:
                ref = await self._execute(op, ref, group[0], fingerprint, tally)
            except SlackRejected as exc:
                tally.rejected.append(Rejection(latest.id, exc.method, exc.reason))
                self.log.warning(
                    "slack refused %s for incident %s: %s (not retried)",
                    exc.method,
                    latest.id,
                    exc.reason,
                )
                if ref is None:
                    return  # the post failed: nothing to update or thread
                ref = op.advance(ref)
            self.store.put(ref)
        if ref is not None and ref.last_version >= latest.version:
            done = ref.replace(timeline_len=max(ref.timeline_len, len(latest.timeline)))
            if done != ref:
                self.store.put(done)

    async def _execute(
        self,
        op: SlackOp,
        ref: MessageRef | None,
        first: Incident,
        fingerprint: str | None,
        tally: _Tally,
    ) -> MessageRef:
        incident = op.incident
        if op.kind is OpKind.POST:
            message = render_incident(incident, interactive=self.interactive)
            channel = op.channel
            ts = await self._retrying(
                "chat.postMessage", lambda: self.transport.post(channel, message), tally
            )
            tally.posted += 1
            if ref is None:
                return initial_ref(op, ts, first)
            return ref.replace(  # webhook mode: a new message per notable change
                last_version=incident.version,
                timeline_len=len(incident.timeline),
                services=incident.services,
            )
        assert ref is not None, "only a post can come without a message reference"
        if op.kind is OpKind.UPDATE:
            message = render_incident(incident, interactive=self.interactive)
            await self._retrying(
                "chat.update", lambda: self.transport.update(ref.channel, ref.ts, message), tally
            )
            tally.updated += 1
        elif op.kind is OpKind.REPLY:
            text = (
                render_event(op.event)
                if op.event is not None
                else render_new_service(op.service, op.at)
            )
            await self._retrying(
                "chat.postMessage", lambda: self.transport.reply(ref.channel, ref.ts, text), tally
            )
            tally.replies += 1
        elif op.kind is OpKind.CHART:
            png = await self._chart(incident, fingerprint)
            if png is None:
                return ref
            await self._retrying(
                "files.upload",
                lambda: self.transport.upload(
                    ref.channel,
                    ref.ts,
                    png,
                    filename=f"{incident.id}.png",
                    title=f"{incident.title} around onset",
                ),
                tally,
            )
            tally.charts += 1
        return op.advance(ref)

    async def _chart(self, incident: Incident, fingerprint: str | None) -> bytes | None:
        if self.series_window is None or fingerprint is None:
            return None
        series = self.series_window.points(fingerprint)
        if series is None:
            return None
        onset = next(
            (a.first_seen for a in incident.anomalies if a.fingerprint == fingerprint), None
        )
        mark = series.mark
        title = mark.label if mark else ""
        band = mark.band if mark else None
        return await asyncio.to_thread(
            render_chart,
            series.times,
            series.values,
            onset=onset,
            band=band,
            title=title,
            config=self.config.chart,
        )

    async def _retrying(self, method: str, call: Callable[[], Awaitable[T]], tally: _Tally) -> T:
        retry = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await call()
            except SlackCallFailed as exc:
                outcome = exc.outcome
                verdict, reason = classify(outcome)
                if verdict is not Verdict.RETRY:
                    tally.calls[(exc.method, "rejected")] += 1
                    raise SlackRejected(exc.method, reason, outcome.status or 0) from None
                tally.calls[(exc.method, "retry")] += 1
                if attempt >= retry.max_attempts:
                    self.log.warning(
                        "slack unavailable: %s %s after %d attempt(s)", exc.method, reason, attempt
                    )
                    raise SlackUnavailable(exc.method, reason, attempt) from None
                retry_after = outcome.retry_after if outcome.status == 429 else None
                wait = backoff_s(attempt, retry, retry_after=retry_after)
                tally.retries += 1
                self.log.info(
                    "slack %s: %s; attempt %d/%d, next in %.1fs",
                    exc.method,
                    reason,
                    attempt,
                    retry.max_attempts,
                    wait,
                )
                await self._sleep(wait)
                continue
            tally.calls[(method, "ok")] += 1
            return result
