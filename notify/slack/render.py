"""Block Kit messages from incident snapshots (pure: same snapshot, same message).

One message per incident: a coloured attachment holding the blocks (title, severity,
state, services, start and duration, top root-cause candidates with their evidence,
remediation, buttons). Thread replies are one line per notable timeline event.
Slack's limits are respected (header 150 characters, section text 3,000, fields 10,
50 blocks, 25 buttons); longer text is cut with an ellipsis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from rca.model import (
    ActionStatus,
    Incident,
    IncidentState,
    RemediationAction,
    Severity,
    TimelineEvent,
    TimelineKind,
)

COLOURS: dict[str, str] = {
    "critical": "#E01E5A",
    "warning": "#ECB22E",
    "info": "#36C5F0",
    "resolved": "#2EB67D",
    "silenced": "#9E9EA6",
}
"""Attachment colour by severity, and for resolved and silenced incidents."""

SEVERITY_EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
}

ACK_ACTION = "aiops_acknowledge"
SILENCE_ACTION = "aiops_silence_1h"
APPROVE_ACTION = "aiops_approve"
REJECT_ACTION = "aiops_reject"
"""``action_id`` prefixes of the buttons; :mod:`notify.slack.interactions` parses them."""

NOTABLE_KINDS = frozenset(
    {
        TimelineKind.ESCALATED,
        TimelineKind.RANKING,
        TimelineKind.SEVERITY,
        TimelineKind.ACTION,
        TimelineKind.ACKNOWLEDGED,
        TimelineKind.SILENCED,
        TimelineKind.RESOLVED,
        TimelineKind.REOPENED,
    }
)
"""Timeline events that get a thread reply (plus "new service affected", derived)."""

_EVENT_EMOJI = {
    TimelineKind.ESCALATED: ":arrow_double_up:",
    TimelineKind.RANKING: ":mag:",
    TimelineKind.SEVERITY: ":rotating_light:",
    TimelineKind.ACTION: ":wrench:",
    TimelineKind.ACKNOWLEDGED: ":eyes:",
    TimelineKind.SILENCED: ":mute:",
    TimelineKind.RESOLVED: ":white_check_mark:",
    TimelineKind.REOPENED: ":repeat:",
}
_EVENT_LABEL = {
    TimelineKind.ESCALATED: "Escalated",
    TimelineKind.RANKING: "Root cause changed",
    TimelineKind.SEVERITY: "Severity changed",
    TimelineKind.ACTION: "Action",
    TimelineKind.ACKNOWLEDGED: "Acknowledged",
    TimelineKind.SILENCED: "Silence",
    TimelineKind.RESOLVED: "Resolved",
    TimelineKind.REOPENED: "Reopened",
}
_STATUS_TEXT = {
    ActionStatus.SUGGESTED: "suggested",
    ActionStatus.PENDING_APPROVAL: "waiting for approval",
    ActionStatus.APPROVED: "approved",
    ActionStatus.REJECTED: "rejected",
    ActionStatus.DISPATCHED: "dispatched",
    ActionStatus.DRY_RUN: "dry run (not executed)",
    ActionStatus.SUPPRESSED: "held back by a guardrail",
    ActionStatus.CANCELLED: "cancelled",
}
MAX_CANDIDATES = 3
MAX_ACTIONS = 5


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message ready for ``chat.postMessage`` / ``chat.update`` / a webhook.

    Parameters
    ----------
    text
        Plain fallback text (notifications, screen readers, webhook previews).
    attachments
        One attachment: the colour bar and the blocks.
    incident_id
        The incident shown (not sent to Slack; names files of the file renderer).
    """

    text: str
    attachments: tuple[dict[str, Any], ...]
    incident_id: str = ""

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The blocks inside the attachment."""
        return list(self.attachments[0]["blocks"]) if self.attachments else []

    @property
    def colour(self) -> str:
        """The attachment colour."""
        return str(self.attachments[0]["color"]) if self.attachments else ""

    def payload(self) -> dict[str, Any]:
        """JSON-ready fields shared by ``chat.postMessage``, ``chat.update`` and webhooks."""
        return {"text": self.text, "attachments": [dict(a) for a in self.attachments]}


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves.

    >>> escape("p99 > 2s & <rising>")
    'p99 &gt; 2s &amp; &lt;rising&gt;'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut.

    >>> cut("abcdef", 4)
    'abc…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_duration(seconds: float) -> str:
    """Short human duration.

    >>> format_duration(42), format_duration(3 * 3600 + 125), format_duration(90000)
    ('42s', '3h 2m', '1d 1h')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    minutes, sec = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m {sec}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def format_time(epoch: float) -> str:
    """Slack date token (shown in the reader's time zone) with a UTC fallback.

    >>> format_time(0.0)
    '<!date^0^{date_short_pretty} {time_secs}|1970-01-01 00:00:00 UTC>'
    """
    fallback = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def duration_of(incident: Incident) -> float:
    """Seconds from onset to resolution (or to the latest change while open)."""
    end = incident.resolved_at if incident.resolved_at is not None else incident.updated_at
    return max(0.0, end - incident.opened_at)


def colour_of(incident: Incident) -> str:
    """Attachment colour: green when resolved, grey when silenced, else by severity."""
    if incident.state is IncidentState.RESOLVED:
        return COLOURS["resolved"]
    if incident.silenced:
        return COLOURS["silenced"]
    return COLOURS[str(incident.severity)]


def status_line(incident: Incident) -> str:
    """One line: open, acknowledged, silenced or resolved (mrkdwn)."""
    if incident.state is IncidentState.RESOLVED:
        line = f":white_check_mark: Resolved after {format_duration(duration_of(incident))}"
        if incident.acknowledged:
            line += f", acknowledged by {escape(incident.acknowledged_by or 'someone')}"
        return line
    parts = [":fire: Open" if not incident.predicted else ":crystal_ball: Predicted"]
    if incident.reopened:
        parts.append(f"reopened {incident.reopened}x")
    if incident.acknowledged:
        parts.append(f"acknowledged by {escape(incident.acknowledged_by or 'someone')}")
    if incident.silenced:
        until = incident.silenced_until
        parts.append("silenced" + (f" until {format_time(until)}" if until else ""))
    return ", ".join(parts)


def render_incident(incident: Incident, *, interactive: bool = True) -> SlackMessage:
    """The incident's message.

    Parameters
    ----------
    incident
        The snapshot to show.
    interactive
        Add the buttons (Acknowledge, Approve / Reject, Silence 1h) while it is open.

    >>> from rca.model import IncidentState, Severity
    >>> inc = Incident(id="inc-1", version=1, state=IncidentState.OPENED,
    ...                severity=Severity.CRITICAL, title="carts: cpu anomaly",
    ...                services=("carts",), opened_at=0.0, updated_at=60.0)
    >>> msg = render_incident(inc)
    >>> msg.text
    '[CRITICAL] carts: cpu anomaly (carts)'
    >>> msg.colour, msg.blocks[0]["text"]["text"]
    ('#E01E5A', ':red_circle: carts: cpu anomaly')
    """
    resolved = incident.state is IncidentState.RESOLVED
    label = "RESOLVED" if resolved else str(incident.severity).upper()
    services = ", ".join(incident.services)
    text = cut(f"[{label}] {escape(incident.title)} ({escape(services)})", 3000)
    emoji = ":white_check_mark:" if resolved else SEVERITY_EMOJI[incident.severity]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": cut(f"{emoji} {incident.title}", 150)},
        },
        {
            "type": "section",
            "fields": [
                _field("Severity", str(incident.severity)),
                _field("Status", status_line(incident)),
                _field("Services", escape(services) or "-"),
                _field("Started", format_time(incident.opened_at)),
                _field(
                    "Duration" if resolved else "Open for",
                    format_duration(duration_of(incident)),
                ),
                _field(
                    "Signals",
                    f"{len(incident.anomalies)} ({incident.anomaly_count} anomalies)",
                ),
            ],
        },
    ]
    if incident.predicted and incident.time_left is not None:
        blocks.append(
            _section(
                f":hourglass_flowing_sand: Forecast: a limit is crossed in about "
                f"{format_duration(incident.time_left)}"
            )
        )
    blocks.append(_section(_candidates_text(incident)))
    if incident.actions:
        blocks.append(_section(_actions_text(incident.actions)))
    buttons = _buttons(incident) if interactive else []
    if buttons:
        blocks.append({"type": "actions", "block_id": "aiops_actions", "elements": buttons})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": cut(
                        f"incident `{incident.id}` · version {incident.version} · "
                        f"updated {format_time(incident.updated_at)}",
                        3000,
                    ),
                }
            ],
        }
    )
    attachment = {"color": colour_of(incident), "fallback": text, "blocks": blocks[:50]}
    return SlackMessage(text=text, attachments=(attachment,), incident_id=incident.id)


def render_event(event: TimelineEvent) -> str:
    """Thread reply for one timeline event (mrkdwn).

    >>> reply = render_event(TimelineEvent(TimelineKind.RESOLVED, 0.0, "quiet for 300s"))
    >>> reply.split(" · ")[:2]
    [':white_check_mark: *Resolved*', 'quiet for 300s']
    """
    emoji = _EVENT_EMOJI.get(event.kind, ":small_blue_diamond:")
    label = _EVENT_LABEL.get(event.kind, str(event.kind).capitalize())
    return cut(f"{emoji} *{label}* · {escape(event.text)} · {format_time(event.at)}", 3000)


def render_new_service(service: str, at: float) -> str:
    """Thread reply saying a service joined the incident."""
    return cut(
        f":heavy_plus_sign: *New service affected* · {escape(service)} · {format_time(at)}", 3000
    )


def button_value(incident_id: str, action_id: str | None = None) -> str:
    """The ``value`` of a button: what :mod:`notify.slack.interactions` needs back."""
    data = {"incident": incident_id}
    if action_id is not None:
        data["action"] = action_id
    return orjson.dumps(data).decode()


def _field(name: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": cut(f"*{name}*\n{value}", 2000)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, 3000)}}


def _candidates_text(incident: Incident) -> str:
    if not incident.root_causes:
        return "*Root cause*\nNo candidate yet."
    lines = ["*Top root-cause candidates*"]
    for rank, rc in enumerate(incident.root_causes[:MAX_CANDIDATES], start=1):
        lines.append(
            f"{rank}. *{escape(rc.service)}* `{escape(rc.signal)}` ({escape(rc.kind)}, "
            f"score {rc.score:.2f})"
        )
        if rc.explanation:
            lines.append(f"      ↳ {escape(rc.explanation)}")
    return "\n".join(lines)


def _actions_text(actions: tuple[RemediationAction, ...]) -> str:
    lines = ["*Remediation*"]
    for action in actions[-MAX_ACTIONS:]:
        status = _STATUS_TEXT.get(action.status, str(action.status))
        who = f" by {escape(action.decided_by)}" if action.decided_by else ""
        dry = " (dry run)" if action.dry_run and action.status is not ActionStatus.DRY_RUN else ""
        params = ", ".join(f"{k}={v}" for k, v in sorted(action.params.items()))
        lines.append(
            f"• `{action.action}` *{escape(action.target)}*"
            + (f" ({escape(params)})" if params else "")
            + f": {status}{who}{dry} · confidence {action.confidence:.2f}"
        )
        if action.reason:
            lines.append(f"      ↳ {escape(action.reason)}")
    if len(actions) > MAX_ACTIONS:
        lines.append(f"_…and {len(actions) - MAX_ACTIONS} earlier action(s)_")
    return "\n".join(lines)


def _buttons(incident: Incident) -> list[dict[str, Any]]:
    if not incident.is_open:
        return []
    buttons: list[dict[str, Any]] = []
    if not incident.acknowledged:
        buttons.append(_button("Acknowledge", ACK_ACTION, button_value(incident.id)))
    for action in incident.actions:
        if action.status is not ActionStatus.PENDING_APPROVAL:
            continue
        value = button_value(incident.id, action.id)
        approve = _button(
            f"Approve {action.action} {action.target}",
            f"{APPROVE_ACTION}:{action.id}",
            value,
            style="primary",
        )
        approve["confirm"] = {
            "title": {"type": "plain_text", "text": "Run this action?"},
            "text": {
                "type": "mrkdwn",
                "text": cut(f"`{action.action}` on *{escape(action.target)}*", 300),
            },
            "confirm": {"type": "plain_text", "text": "Approve"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        buttons.append(approve)
        buttons.append(_button("Reject", f"{REJECT_ACTION}:{action.id}", value, style="danger"))
    if not incident.silenced:
        buttons.append(_button("Silence 1h", SILENCE_ACTION, button_value(incident.id)))
    return buttons[:25]


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": cut(text, 75)},
        "action_id": cut(action_id, 255),
        "value": cut(value, 2000),
    }
    if style:
        button["style"] = style
    return button
