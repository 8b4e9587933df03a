"""What to send for an incident, decided without any I/O.

:func:`collapse` folds a backlog of snapshots to one group per incident (latest version
last); :func:`plan_incident` turns a group and the stored :class:`MessageRef` into the
Slack operations still to do, in order. Each operation says how the reference advances
once it succeeded, so a delivery interrupted half-way resumes where it stopped and
nothing is sent twice.

Rules (``web_api`` and ``render`` modes):

* no reference yet: post the latest snapshot (unless nothing in the group was ever worth
  notifying: silenced, below ``min_severity``, or a forecast with ``notify_predicted``
  off), then the chart, then one thread reply per notable event after the first
  snapshot of the group;
* a reference: ``chat.update`` to the latest snapshot if it is newer, the chart if not
  posted yet, then one thread reply per notable timeline event not yet replied to
  (a new service gets its own reply); while the incident is silenced only the silence,
  acknowledgement and resolution events get replies.

``webhook`` mode cannot update nor reply: it posts on open, then a new message when the
severity changes, the incident resolves or reopens (one message per burst).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from notify.config import SlackConfig
from notify.slack.render import NOTABLE_KINDS
from notify.slack.state import MessageRef
from rca.model import Incident, TimelineEvent, TimelineKind

WEBHOOK_KINDS = frozenset({TimelineKind.SEVERITY, TimelineKind.RESOLVED, TimelineKind.REOPENED})
"""Timeline events that make webhook mode post a new message."""

SILENCED_KINDS = frozenset(
    {TimelineKind.SILENCED, TimelineKind.ACKNOWLEDGED, TimelineKind.RESOLVED}
)
"""Events still replied to while an incident is silenced."""


class OpKind(StrEnum):
    """A Slack operation."""

    POST = "post"
    UPDATE = "update"
    REPLY = "reply"
    CHART = "chart"


@dataclass(frozen=True, slots=True)
class SlackOp:
    """One operation of a plan.

    Parameters
    ----------
    kind
        Post, update, thread reply or chart upload.
    incident
        The snapshot a post or update shows (the latest of the group).
    event
        For a reply: the timeline event, or ``None`` for a new-service reply.
    timeline_index
        For a timeline reply: its index; the reference's ``timeline_len`` becomes
        ``timeline_index + 1`` once it is sent.
    service
        For a new-service reply: the service.
    at
        Event time of a new-service reply.
    channel
        For a post: the channel chosen by routing.
    """

    kind: OpKind
    incident: Incident
    event: TimelineEvent | None = None
    timeline_index: int = -1
    service: str = ""
    at: float = 0.0
    channel: str = ""

    def advance(self, ref: MessageRef) -> MessageRef:
        """The reference once this operation succeeded (posts build theirs elsewhere)."""
        if self.kind is OpKind.UPDATE or self.kind is OpKind.POST:
            return ref.replace(last_version=max(ref.last_version, self.incident.version))
        if self.kind is OpKind.CHART:
            return ref.replace(chart_posted=True)
        if self.event is not None:
            return ref.replace(timeline_len=max(ref.timeline_len, self.timeline_index + 1))
        return ref.replace(services=tuple(sorted({*ref.services, self.service})))


def collapse(snapshots: Sequence[Incident]) -> list[list[Incident]]:
    """Group snapshots by incident, in order of first appearance, each by version.

    Duplicates (same id and version) are dropped; the last element of each group is
    the state to show.

    >>> from rca.model import IncidentState, Severity
    >>> def inc(i, v):
    ...     return Incident(id=i, version=v, state=IncidentState.UPDATED,
    ...                     severity=Severity.WARNING, title="", services=(),
    ...                     opened_at=0.0, updated_at=0.0)
    >>> [[s.version for s in g] for g in collapse([inc("a", 2), inc("b", 1), inc("a", 1),
    ...                                            inc("a", 2)])]
    [[1, 2], [1]]
    """
    groups: dict[str, dict[int, Incident]] = {}
    for snapshot in snapshots:
        groups.setdefault(snapshot.id, {})[snapshot.version] = snapshot
    return [[group[v] for v in sorted(group)] for group in groups.values()]


def worth_notifying(incident: Incident, config: SlackConfig) -> bool:
    """True if a snapshot deserves a message of its own (not silenced, severe enough)."""
    if incident.silenced:
        return False
    if incident.severity.rank < config.min_severity.rank:
        return False
    return config.notify_predicted or not incident.predicted


def chart_signal(incident: Incident) -> str | None:
    """Fingerprint of the series to chart: the top metric root cause, else the first
    metric anomaly; ``None`` for incidents without metric signals."""
    metric = [ref for ref in incident.anomalies if ref.kind == "metric"]
    if not metric:
        return None
    for rc in incident.root_causes[:1]:
        for ref in metric:
            if ref.service == rc.service and ref.signal == rc.signal:
                return ref.fingerprint
    return metric[0].fingerprint


def initial_ref(op: SlackOp, ts: str, group_first: Incident) -> MessageRef:
    """The reference right after the incident's message was posted."""
    return MessageRef(
        incident_id=op.incident.id,
        channel=op.channel,
        ts=ts,
        last_version=op.incident.version,
        timeline_len=len(group_first.timeline),
        chart_posted=False,
        services=group_first.services,
    )


def plan_incident(
    group: Sequence[Incident],
    ref: MessageRef | None,
    config: SlackConfig,
    *,
    chart_available: bool = False,
) -> list[SlackOp]:
    """The operations still to do for one incident (see the module docstring).

    Parameters
    ----------
    group
        Snapshots of one incident, oldest first (see :func:`collapse`).
    ref
        What was delivered before, if anything.
    config
        Routing, filters and mode.
    chart_available
        Whether points of the incident's chart series are at hand.
    """
    if not group:
        return []
    latest = group[-1]
    mode = config.mode
    if ref is None:
        if not any(worth_notifying(s, config) for s in group):
            return []
        post = SlackOp(OpKind.POST, latest, channel=config.channel_for(latest))
        if mode == "webhook":
            return [post]
        ops = [post]
        if chart_available and config.chart.enabled:
            ops.append(SlackOp(OpKind.CHART, latest))
        if config.thread_replies:
            first = group[0]
            ops.extend(_replies(latest, len(first.timeline), first.services))
        return ops
    if mode == "webhook":
        new_events = latest.timeline[ref.timeline_len :]
        if latest.version > ref.last_version and any(e.kind in WEBHOOK_KINDS for e in new_events):
            return [SlackOp(OpKind.POST, latest, channel=ref.channel)]
        return []
    ops = []
    if latest.version > ref.last_version:
        ops.append(SlackOp(OpKind.UPDATE, latest))
    if chart_available and config.chart.enabled and not ref.chart_posted:
        ops.append(SlackOp(OpKind.CHART, latest))
    if config.thread_replies:
        ops.extend(_replies(latest, ref.timeline_len, ref.services))
    return ops


def _replies(latest: Incident, start: int, known: Sequence[str]) -> list[SlackOp]:
    """Thread replies for ``latest.timeline[start:]`` and for services not in ``known``."""
    silenced = latest.silenced
    ops = []
    for index in range(start, len(latest.timeline)):
        event = latest.timeline[index]
        if event.kind not in NOTABLE_KINDS:
            continue
        if silenced and event.kind not in SILENCED_KINDS:
            continue
        ops.append(SlackOp(OpKind.REPLY, latest, event=event, timeline_index=index))
    if silenced:
        return ops
    onset: dict[str, float] = {}
    for anomaly in latest.anomalies:
        if anomaly.service in latest.services and anomaly.service not in known:
            onset[anomaly.service] = min(
                onset.get(anomaly.service, anomaly.first_seen), anomaly.first_seen
            )
    for service in latest.services:
        if service not in known and service not in onset:
            onset[service] = latest.updated_at
    if not onset:
        return ops
    new = [
        SlackOp(OpKind.REPLY, latest, service=service, at=at)
        for service, at in sorted(onset.items(), key=lambda item: (item[1], item[0]))
    ]
    # Merge by time, timeline events first on ties (stable: both lists are in time order).
    merged: list[SlackOp] = []
    i = j = 0
    while i < len(ops) or j < len(new):
        if j >= len(new) or (i < len(ops) and _at(ops[i]) <= new[j].at):
            merged.append(ops[i])
            i += 1
        else:
            merged.append(new[j])
            j += 1
    return merged


def _at(op: SlackOp) -> float:
    return op.event.at if op.event is not None else op.at
