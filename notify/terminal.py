"""Slack messages rendered on the terminal (rich) or written to files, without Slack.

Used when no bot token nor webhook is configured, so that a demo (or a user trying the
service) sees the message responders would get. :class:`RenderTransport` speaks the same
interface as the Slack transports: posts, updates, thread replies and chart uploads are
printed and, with ``render_dir``, written there: ``<incident>.json`` (the latest message
payload and its thread), ``<incident>.txt`` (the same as text) and ``<incident>.png``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from notify.slack.render import SlackMessage

_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_BOLD = re.compile(r"\*([^*\n]+)\*")
_ITALIC = re.compile(r"(?<!\w)_([^_\n]+)_(?!\w)")
_CODE = re.compile(r"`([^`\n]+)`")
_EMOJI = {
    ":red_circle:": "🔴",
    ":large_orange_circle:": "🟠",
    ":large_blue_circle:": "🔵",
    ":white_check_mark:": "✅",
    ":fire:": "🔥",
    ":crystal_ball:": "🔮",
    ":hourglass_flowing_sand:": "⏳",
    ":arrow_double_up:": "⏫",
    ":mag:": "🔍",
    ":rotating_light:": "🚨",
    ":wrench:": "🔧",
    ":eyes:": "👀",
    ":mute:": "🔇",
    ":repeat:": "🔁",
    ":heavy_plus_sign:": "+",
}


def mrkdwn_to_text(text: str) -> str:
    """Slack mrkdwn as plain text: dates to their fallback, emoji codes to emoji,
    bold, italics and code marks dropped, entities decoded.

    >>> mrkdwn_to_text("*Started* <!date^0^{date_short_pretty}|1970-01-01 00:00 UTC> &gt; :fire:")
    'Started 1970-01-01 00:00 UTC > 🔥'
    """
    text = _DATE.sub(lambda m: m.group(1), text)
    text = _CODE.sub(lambda m: m.group(1), _ITALIC.sub(lambda m: m.group(1), text))
    text = _BOLD.sub(lambda m: m.group(1), text)
    for code, emoji in _EMOJI.items():
        text = text.replace(code, emoji)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def message_to_text(message: SlackMessage) -> str:
    """The message as plain lines, block by block (buttons shown as ``[Label]``)."""
    lines: list[str] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(mrkdwn_to_text(block["text"]["text"]))
        elif kind == "section":
            if "text" in block:
                lines.append(mrkdwn_to_text(block["text"]["text"]))
            for fld in block.get("fields", ()):
                lines.append(mrkdwn_to_text(fld["text"]).replace("\n", ": ", 1))
        elif kind == "actions":
            lines.append("  ".join(f"[{el['text']['text']}]" for el in block["elements"]))
        elif kind == "context":
            lines.append(" ".join(mrkdwn_to_text(el.get("text", "")) for el in block["elements"]))
    return "\n".join(lines)


class RenderTransport:
    """A Slack transport that prints and/or writes files instead of calling Slack.

    Parameters
    ----------
    render_dir
        Directory for the files (created); ``None``: nothing written.
    terminal
        Print to the terminal.
    console
        The rich console to print to (default: standard output).
    """

    def __init__(
        self,
        *,
        render_dir: str | Path | None = None,
        terminal: bool = True,
        console: Console | None = None,
    ) -> None:
        self.render_dir = Path(render_dir).expanduser() if render_dir else None
        self.terminal = terminal
        self.console = console or Console()
        self._seq = 0
        self._channels: dict[str, str] = {}
        self._messages: dict[str, SlackMessage] = {}
        self._threads: dict[str, list[str]] = {}

    async def post(self, channel: str, message: SlackMessage) -> str:
        """Print/write a new message; returns a made-up ``ts``."""
        self._seq += 1
        ts = f"{self._seq}.000000"
        self._channels[ts] = channel
        self._messages[ts] = message
        self._threads[ts] = []
        self._show(channel, message, "posted")
        self._write(ts)
        return ts

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        """Print/write the message's new state."""
        self._channels.setdefault(ts, channel)
        self._messages[ts] = message
        self._threads.setdefault(ts, [])
        self._show(channel, message, "updated")
        self._write(ts)

    async def reply(self, channel: str, thread_ts: str, text: str) -> str:
        """Print/write a thread reply."""
        self._threads.setdefault(thread_ts, []).append(text)
        if self.terminal:
            self.console.print(Text(f"  ↳ {channel} thread: {mrkdwn_to_text(text)}"))
        self._write(thread_ts)
        self._seq += 1
        return f"{self._seq}.000000"

    async def upload(
        self, channel: str, thread_ts: str, content: bytes, *, filename: str, title: str
    ) -> None:
        """Write the file into ``render_dir`` (and say so)."""
        where = "(not written: no render_dir)"
        if self.render_dir is not None:
            self.render_dir.mkdir(parents=True, exist_ok=True)
            path = self.render_dir / Path(filename).name
            path.write_bytes(content)
            where = str(path)
        self._threads.setdefault(thread_ts, []).append(f"[file] {title}: {where}")
        if self.terminal:
            self.console.print(Text(f"  ↳ {channel} thread: chart {title} -> {where}"))
        self._write(thread_ts)

    async def close(self) -> None:
        """Nothing to release."""

    def _show(self, channel: str, message: SlackMessage, verb: str) -> None:
        if not self.terminal:
            return
        body = Group(*(Text(line) for line in message_to_text(message).splitlines()))
        self.console.print(
            Panel(
                body,
                title=f"Slack {channel} ({verb})",
                title_align="left",
                border_style=message.colour or "white",
            )
        )

    def _write(self, ts: str) -> None:
        if self.render_dir is None or ts not in self._messages:
            return
        message = self._messages[ts]
        self.render_dir.mkdir(parents=True, exist_ok=True)
        stem = _stem(message)
        payload: dict[str, Any] = {
            "channel": self._channels.get(ts, ""),
            "ts": ts,
            **message.payload(),
            "thread": list(self._threads.get(ts, [])),
        }
        (self.render_dir / f"{stem}.json").write_bytes(
            orjson.dumps(payload, option=orjson.OPT_INDENT_2)
        )
        thread = "\n".join(f"  ↳ {mrkdwn_to_text(t)}" for t in self._threads.get(ts, []))
        text = message_to_text(message) + ("\n\nThread:\n" + thread if thread else "") + "\n"
        (self.render_dir / f"{stem}.txt").write_text(text, encoding="utf-8")


def _stem(message: SlackMessage) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", message.incident_id) or "message"
