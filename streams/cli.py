"""The ``aiops`` command line: local Kafka, topics, the worker, and tools to watch it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError
from rich.console import Console
from rich.markup import escape

from rca.exceptions import ConfigError as RuleFileError
from streams.config import Settings, load_settings
from streams.exceptions import StreamsError

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, os.environ)


def _cmd_kafka(args: argparse.Namespace) -> int:
    from streams.localkafka import LocalKafka, broker_answers

    settings = _settings(args)
    local = settings.local_kafka
    if args.brokers is not None:
        local = local.model_copy(update={"brokers": args.brokers})
    kafka = LocalKafka(local, say=lambda line: console.print(f"[cyan]kafka[/] {line}"))
    external = not kafka.serves(settings.kafka.bootstrap)
    if args.action == "up":
        if external:
            if asyncio.run(broker_answers(settings.kafka.bootstrap)):
                console.print(f"using the broker at {settings.kafka.bootstrap}")
                return 0
            console.print(f"[red]no broker answers at {settings.kafka.bootstrap}[/]")
            return 1
        with console.status("starting the local Kafka broker ..."):
            kafka.up()
        if len(kafka.nodes) > 1:
            factor, min_isr = kafka.replication
            console.print(
                f"brokers {kafka.bootstrap}: topics replicated {factor}x, min.insync.replicas "
                f"{min_isr}; for the worker: AIOPS_KAFKA_BOOTSTRAP={kafka.bootstrap} "
                f"AIOPS_TOPICS__REPLICATION_FACTOR={factor}"
            )
        return 0
    if args.action == "down":
        if args.brokers is not None:
            kafka.down()
            return 0
        # without --brokers: whatever this home runs, a single broker or a cluster
        found = [
            LocalKafka(local.model_copy(update={"brokers": n}), say=kafka.say) for n in range(1, 6)
        ]
        running = [k for k in found if any(k.node_pid(node) for node in k.nodes)]
        for cluster in running or [kafka]:
            cluster.down()
        return 0
    if args.action == "reset":
        kafka.reset()
        console.print(f"deleted {kafka.data_dir}")
        return 0
    status = kafka.status()
    answers = asyncio.run(broker_answers(settings.kafka.bootstrap))
    console.print(
        f"local broker: {f'running (pid {status.pid})' if status.running else 'stopped'}; "
        f"data {status.data_dir}; log {status.log_file}\n"
        f"{settings.kafka.bootstrap}: {'answering' if answers else 'not answering'}"
    )
    return 0 if answers else 1


def _cmd_topics(args: argparse.Namespace) -> int:
    from streams.topics import ensure_topics

    settings = _settings(args)
    created = asyncio.run(ensure_topics(settings))
    for name in settings.topics.all_names():
        console.print(f"{name}{'  (created)' if name in created else ''}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from streams.config_reference import effective_yaml, reference_markdown

    if args.action == "reference":
        sys.stdout.write(reference_markdown())
    else:
        sys.stdout.write(effective_yaml(_settings(args)))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from streams.doctor import Status, diagnose

    colours = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
    findings = diagnose(_settings(args))
    for f in findings:
        line = f"[{colours[f.status]}]{f.status:4}[/] {escape(f.check)}: {escape(f.detail)}"
        if f.fix and f.status is not Status.OK:
            line += f"\n     fix: {escape(f.fix)}"
        out.print(line, soft_wrap=True)
    failed = sum(f.status is Status.FAIL for f in findings)
    out.print(f"{failed} problem{'s' if failed != 1 else ''} found" if failed else "all good")
    return 1 if failed else 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    return run_worker(_settings(args))


def _cmd_console(args: argparse.Namespace) -> int:
    from console.main import run_console

    return run_console(_settings(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiops", description="aiops-stream: event-driven AIOps over Kafka"
    )
    parser.add_argument(
        "-c", "--config", help="YAML settings file (default: $AIOPS_CONFIG, else built-in defaults)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="run a local Apache Kafka broker (KRaft, 127.0.0.1)")
    kafka.add_argument("action", choices=["up", "down", "status", "reset"])
    kafka.add_argument(
        "--brokers",
        type=int,
        choices=range(1, 6),
        default=None,
        help="brokers of the local cluster (default local_kafka.brokers, 1); 3 gives "
        "replication 3 with min.insync.replicas 2",
    )
    kafka.set_defaults(func=_cmd_kafka)

    topics = sub.add_parser("topics", help="create the configured topics if missing")
    topics.set_defaults(func=_cmd_topics)

    config = sub.add_parser("config", help="show the settings in effect, or the reference")
    config.add_argument("action", choices=["show", "reference"])
    config.set_defaults(func=_cmd_config)

    doctor = sub.add_parser(
        "doctor", help="check Java, Maven, the broker, topics, folders, ports and Slack settings"
    )
    doctor.set_defaults(func=_cmd_doctor)

    worker = sub.add_parser("worker", help="run the stream processing worker")
    worker.set_defaults(func=_cmd_worker)

    console_cmd = sub.add_parser(
        "console", help="run the incident console (web UI and HTTP API) over the topics"
    )
    console_cmd.set_defaults(func=_cmd_console)

    from streams.tools import register_tools

    register_tools(sub)
    return parser


def _fail(message: str) -> int:
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "worker":  # the tools say a broker problem in one line of their own
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        result: int = args.func(args)
        return result
    except (StreamsError, RuleFileError) as exc:  # the message names the file and the key
        return _fail(str(exc))
    except KafkaError as exc:
        bootstrap = _settings(args).kafka.bootstrap  # it loaded before the client failed
        return _fail(
            f"Kafka at {bootstrap}: {exc}; start the local broker with `aiops kafka up`, "
            "or set kafka.bootstrap (AIOPS_KAFKA_BOOTSTRAP)"
        )
    except OSError as exc:
        if exc.filename is None:
            raise
        return _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
