"""Without Slack credentials, the message is shown on the terminal and written to files."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
from rich.console import Console

from notify.config import SlackConfig
from notify.slack.delivery import SlackNotifier, make_transport
from notify.slack.state import InMemoryStateStore
from notify.terminal import RenderTransport
from tests.notify.incidents import life


async def test_no_credentials_renders_to_terminal_and_files(tmp_path: Path) -> None:
    config = SlackConfig(render_dir=str(tmp_path))
    assert config.mode == "render"
    assert isinstance(make_transport(config), RenderTransport)
    out = io.StringIO()
    transport = RenderTransport(
        render_dir=tmp_path, console=Console(file=out, width=100, color_system=None)
    )
    notifier = SlackNotifier(config, store=InMemoryStateStore(), transport=transport)
    for snapshot in life()[:5]:
        await notifier.deliver([snapshot])

    shown = out.getvalue()
    assert "orders: latency anomaly" in shown and "[Approve restart orders]" in shown
    assert "New service affected" in shown
    text = (tmp_path / "inc-carts.txt").read_text(encoding="utf-8")
    assert text.splitlines()[0].endswith("orders: latency anomaly (3 signals in 2 services)")
    assert "Severity: critical" in text and "Services: carts, orders" in text
    assert "Started: 2023-11-14 22:13:20 UTC" in text
    assert "[Acknowledge]  [Approve restart orders]  [Reject]  [Silence 1h]" in text
    thread = text.split("Thread:\n")[1].splitlines()
    assert [line.split(" · ")[0] for line in thread] == [
        "  ↳ + New service affected",
        "  ↳ 🔍 Root cause changed",
        "  ↳ 🔧 Action",
        "  ↳ 🚨 Severity changed",
    ]
    payload = orjson.loads((tmp_path / "inc-carts.json").read_bytes())
    assert payload["attachments"][0]["color"] == "#E01E5A"
    assert len(payload["thread"]) == 4


def test_preview_command_reads_published_snapshots(tmp_path: Path) -> None:
    from notify.__main__ import main

    source = tmp_path / "incidents.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(s.to_dict()) for s in life()) + b"\n")
    out = tmp_path / "out"
    assert main([str(source), "--quiet", "--render-dir", str(out)]) == 0
    text = (out / "inc-carts.txt").read_text(encoding="utf-8")
    assert "Status: ✅ Resolved after 10m" in text and "Duration: 10m" in text
    assert main(["--sample", "--quiet", "--render-dir", str(out)]) == 0
    assert len(list(out.glob("*.txt"))) == 2
