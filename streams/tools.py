"""Commands to feed and watch a running aiops-stream: ``aiops send`` and ``aiops tail``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.markup import escape

from streams.config import Settings, load_settings
from streams.deadletter import parse_headers
from streams.kafka_clients import client_options

out = Console(highlight=False)

TOPIC_KINDS = ("metrics", "logs", "anomalies", "incidents", "actions", "deadletter", "control")


def _topic(settings: Settings, name: str) -> str:
    return str(getattr(settings.topics, name)) if name in TOPIC_KINDS else name


def service_key(line: bytes) -> bytes | None:
    """The key a line is sent with: the ``service`` of its (first) event, so that one
    service's series stay on one partition and in order; no key for anything else.

    >>> service_key(b'{"service": "checkout", "metric": "cpu"}')
    b'checkout'
    >>> service_key(b'[{"service": "payments"}]'), service_key(b"cpu,host=a usage=1")
    (b'payments', None)
    """
    if line.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    first = parsed[0] if isinstance(parsed, list) and parsed else parsed
    service = first.get("service") if isinstance(first, dict) else None
    return service.encode() if isinstance(service, str) and service else None


async def send_lines(settings: Settings, topic: str, lines: list[bytes]) -> int:
    """Produce one message per non-empty line, keyed by service where it names one."""
    producer = AIOKafkaProducer(**client_options(settings.kafka), linger_ms=5)
    try:
        await producer.start()
        futures = [
            await producer.send(topic, line, key=service_key(line))
            for line in lines
            if line.strip()
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)


def _cmd_send(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, os.environ)
    data = sys.stdin.buffer.read() if args.file in (None, "-") else Path(args.file).read_bytes()
    lines = data.splitlines()
    topic = _topic(settings, args.topic)
    sent = asyncio.run(send_lines(settings, topic, lines))
    out.print(f"sent {sent} messages to {topic}")
    return 0


def shown(value: object, limit: int = 300) -> str:
    """A value as the terminal may show it: rich markup escaped, control characters as
    escapes, cut at ``limit`` characters.

    >>> shown("[bold]x[/]\\n\\u200f")
    '\\\\[bold]x\\\\[/]\\\\n\\\\u200f'
    """
    text = str(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text)


def format_record(kind: str, key: bytes | None, value: bytes, headers: Any) -> str:
    """One line (or a few) describing a record of one of the output topics, in rich markup
    (every value from the record escaped)."""
    if kind == "deadletter":
        info = parse_headers(list(headers or []))
        source_key = f" (key {shown(info['key'])})" if info.get("key") else ""
        return (
            f"[red]dead letter[/] {shown(info.get('reason'))} from {shown(info.get('topic'))}/"
            f"{shown(info.get('partition'))}/{shown(info.get('offset'))}{source_key}: "
            f"{shown(info.get('detail'))}"
        )
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return shown(value[:200].decode(errors="replace"))
    if kind == "incidents" and isinstance(data, dict):
        causes = ", ".join(
            f"{shown(c.get('service'))}/{shown(c.get('signal'))} ({_number(c.get('score')):.2f})"
            for c in (data.get("root_causes") or [])[:3]
        )
        colour = {"opened": "red", "updated": "yellow", "resolved": "green"}.get(
            str(data.get("state")), "white"
        )
        services = ", ".join(shown(s) for s in data.get("services") or [])
        return (
            f"[{colour}]{shown(data.get('state', '?')):8}[/] {shown(data.get('id'))} "
            f"v{shown(data.get('version'))} [bold]{shown(data.get('severity', ''))}[/] "
            f"{shown(data.get('title', ''))}\n"
            f"          services: {services}; root cause: {causes}"
        )
    if kind == "actions" and isinstance(data, dict):
        return (
            f"[magenta]action[/] {shown(data.get('action'))} → {shown(data.get('target'))} "
            f"mode={shown(data.get('mode'))} status={shown(data.get('status'))} "
            f"confidence={shown(data.get('confidence'))}: {shown(data.get('reason'))}"
        )
    if kind == "anomalies" and isinstance(data, dict):
        return (
            f"[yellow]anomaly[/] {shown(data.get('service'))}/{shown(data.get('signal'))} "
            f"{shown(data.get('direction'))} score={_number(data.get('score')):.2f} "
            f"value={shown(data.get('value'))} expected={shown(data.get('expected'))} "
            f"({shown(data.get('detector'))})"
        )
    return shown(orjson.dumps(data).decode())


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


async def tail(
    settings: Settings,
    kind: str,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_exit_s: float | None,
    show: Callable[[str], None],
) -> int:
    """Print records of one topic as they arrive."""
    topic = _topic(settings, kind)
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    seen = 0
    try:
        await consumer.start()
        consumer.subscribe([topic])
        idle = 0.0
        while limit is None or seen < limit:
            batch = await consumer.getmany(timeout_ms=500)
            records = [r for recs in batch.values() for r in recs]
            records.sort(key=lambda r: r.timestamp)
            for record in records:
                show(format_record(kind, record.key, record.value or b"", record.headers))
                seen += 1
            idle = 0.0 if records else idle + 0.5
            if idle_exit_s is not None and idle >= idle_exit_s:
                break
    finally:
        await consumer.stop()
    return seen


def _cmd_tail(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, os.environ)
    asyncio.run(
        tail(
            settings,
            args.topic,
            from_beginning=args.from_beginning,
            limit=args.limit,
            idle_exit_s=args.idle_exit,
            show=out.print,
        )
    )
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from streams.scenario import write_sample

    written = write_sample(Path(args.folder), end=time.time())
    for kind, (path, count) in written.items():
        out.print(f"wrote {count} {kind} messages to {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(
        load_settings(args.config, os.environ),
        speed=args.speed,
        wait_for_user=False if args.no_wait else None,
    )


def register_tools(sub: Any) -> None:
    """Add the tool sub-commands to the ``aiops`` parser."""
    send = sub.add_parser("send", help="produce one message per line of a file (or stdin)")
    send.add_argument("topic", help=f"one of {', '.join(TOPIC_KINDS)}, or a topic name")
    send.add_argument("file", nargs="?", help="file of messages, one per line (default: stdin)")
    send.set_defaults(func=_cmd_send)

    tail_cmd = sub.add_parser("tail", help="pretty-print records of an output topic")
    tail_cmd.add_argument("topic", help=f"one of {', '.join(TOPIC_KINDS)}, or a topic name")
    tail_cmd.add_argument("--from-beginning", action="store_true")
    tail_cmd.add_argument("--limit", type=int, default=None)
    tail_cmd.add_argument(
        "--idle-exit", type=float, default=None, help="stop after this many idle seconds"
    )
    tail_cmd.set_defaults(func=_cmd_tail)

    sample = sub.add_parser(
        "sample", help="write the demo's fault scenario, ending now, as files for `aiops send`"
    )
    sample.add_argument("folder", help="where to write metrics.jsonl and logs.jsonl")
    sample.set_defaults(func=_cmd_sample)

    demo = sub.add_parser("demo", help="replay a sample fault scenario through a fresh worker")
    demo.add_argument("--speed", type=float, default=60.0, help="replay speed-up factor")
    demo.add_argument(
        "--no-wait",
        action="store_true",
        help="exit after the summary even in a terminal (the console stops with the demo)",
    )
    demo.set_defaults(func=_cmd_demo)
