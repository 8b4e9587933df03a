"""Preview Slack messages without Slack: ``python -m notify [FILE] [--render-dir DIR]``.

Reads incident snapshots (JSON lines, as published on the incidents topic; ``-`` for
standard input) or, with ``--sample``, a built-in incident's life, and shows what the
notifier would post, update and reply, on the terminal and/or as files.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Sequence

import orjson

from notify.config import SlackConfig
from notify.sample import sample_life
from notify.slack.delivery import SlackNotifier
from notify.slack.state import InMemoryStateStore
from rca.model import Incident


def read_snapshots(lines: Iterable[str]) -> list[Incident]:
    """Incidents from JSON lines (blank lines skipped)."""
    return [Incident.from_dict(orjson.loads(line)) for line in lines if line.strip()]


async def preview(snapshots: Sequence[Incident], config: SlackConfig, *, one_by_one: bool) -> None:
    """Deliver to the terminal/file renderer, one snapshot at a time or all at once."""
    notifier = SlackNotifier(config, store=InMemoryStateStore())
    batches = [[s] for s in snapshots] if one_by_one else [list(snapshots)]
    for batch in batches:
        await notifier.deliver(batch)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m notify", description=__doc__)
    parser.add_argument("file", nargs="?", help="JSON lines of incident snapshots, - for stdin")
    parser.add_argument("--sample", action="store_true", help="use a built-in incident's life")
    parser.add_argument("--render-dir", help="also write <incident>.json/.txt there")
    parser.add_argument("--quiet", action="store_true", help="do not print on the terminal")
    parser.add_argument(
        "--collapse", action="store_true", help="deliver all snapshots as one backlog"
    )
    args = parser.parse_args(argv)
    if args.sample:
        snapshots = sample_life()
    elif args.file == "-":
        snapshots = read_snapshots(sys.stdin)
    elif args.file:
        with open(args.file, encoding="utf-8") as handle:
            snapshots = read_snapshots(handle)
    else:
        parser.error("give a FILE, - or --sample")
    config = SlackConfig(render_dir=args.render_dir, render_terminal=not args.quiet)
    asyncio.run(preview(snapshots, config, one_by_one=not args.collapse))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
