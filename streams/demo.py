"""``aiops demo``: a fresh worker, the sample fault scenario, and what came out of it.

The demo runs on topics of its own (``demo-<time>.*``) so it never mixes with other data,
starts ``aiops worker`` as a child process, replays :mod:`streams.scenario` with a
progress bar, and prints anomalies, incident snapshots and actions as they arrive, then
the Slack message a responder would get. The incident console runs beside the worker; in
a terminal it stays up after the summary until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from streams.config import Settings
from streams.kafka_clients import client_options
from streams.scenario import ROOT_CAUSE, STEP_S, ScenarioShape, config_dir, generate
from streams.tools import format_record

console = Console(highlight=False)

_KINDS = ("anomalies", "incidents", "actions", "deadletter")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker_env(
    settings: Settings, topics: dict[str, str], port: int, home: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_TOPICS__")}
    env.update(
        {
            "AIOPS_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
            "AIOPS_WORKER__APP_ID": topics["metrics"].rsplit(".", 1)[0],
            "AIOPS_WORKER__WEB_PORT": str(port),
            "AIOPS_WORKER__DATADIR": str(home / "worker-data"),
            "AIOPS_WORKER__LOG_LEVEL": "warning",
            "AIOPS_INCIDENTS__TOPOLOGY_FILE": str(config_dir() / "topology.yaml"),
            "AIOPS_INCIDENTS__REMEDIATION_FILE": str(config_dir() / "remediation.yaml"),
        }
    )
    if "slack" in Settings.model_fields:
        env["AIOPS_SLACK__RENDER_DIR"] = str(home / "slack")
    for name, topic in topics.items():
        env[f"AIOPS_TOPICS__{name.upper()}"] = topic
    return env


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited during start-up; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the worker did not become healthy in {timeout:.0f}s; see {log}")


class _Watcher:
    """Consumes the output topics and prints what arrives."""

    def __init__(self, settings: Settings, topics: dict[str, str]) -> None:
        self.settings = settings
        self.topics = topics
        self.incidents: dict[str, dict[str, Any]] = {}
        self.actions: list[dict[str, Any]] = []
        self.anomalies = 0
        self.dead_letters = 0
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            **client_options(self.settings.kafka),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        kind_of = {self.topics[k]: k for k in _KINDS}
        try:
            consumer.subscribe(list(kind_of))
            while not self.stopped.is_set():
                batch = await consumer.getmany(timeout_ms=300)
                for tp, records in batch.items():
                    for record in records:
                        self._show(kind_of[tp.topic], record)
        finally:
            await consumer.stop()

    def _show(self, kind: str, record: Any) -> None:
        value = record.value or b""
        if kind == "anomalies":
            self.anomalies += 1
        elif kind == "deadletter":
            self.dead_letters += 1
        elif kind == "incidents":
            snap = orjson.loads(value)
            self.incidents[snap["id"]] = snap
        elif kind == "actions":
            self.actions.append(orjson.loads(value))
        console.print(format_record(kind, record.key, value, record.headers))


async def _replay(settings: Settings, topics: dict[str, str], speed: float) -> int:
    shape = ScenarioShape()
    span = shape.total_steps * STEP_S
    start = time.time() - span  # the scenario ends now
    producer = AIOKafkaProducer(**client_options(settings.kafka), linger_ms=5)
    await producer.start()
    sent = 0
    began = time.monotonic()
    try:
        with Progress(
            TextColumn("[cyan]replaying the scenario"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} min of telemetry"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("replay", total=span / 60)
            for message in generate(start, shape):
                due = began + (message.at - start) / speed
                delay = due - time.monotonic()
                if delay > 0.02:
                    await producer.flush()
                    await asyncio.sleep(delay)
                await producer.send(topics[message.topic], message.value, key=message.key)
                sent += 1
                progress.update(task, completed=(message.at - start) / 60)
            await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _demo(
    settings: Settings, topics: dict[str, str], speed: float, wait_s: float
) -> _Watcher:
    watcher = _Watcher(settings, topics)
    watching = asyncio.create_task(watcher.run())
    sent = await _replay(settings, topics, speed)
    console.print(f"[cyan]demo[/] sent {sent} messages; waiting for the incident to resolve ...")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if any(i.get("state") == "resolved" for i in watcher.incidents.values()):
            await asyncio.sleep(2)
            break
        await asyncio.sleep(0.5)
    watcher.stopped.set()
    await watching
    return watcher


def _summary(watcher: _Watcher, home: Path) -> None:
    lines = [f"anomalies published: {watcher.anomalies}", f"dead letters: {watcher.dead_letters}"]
    for snap in watcher.incidents.values():
        top = (snap.get("root_causes") or [{}])[0]
        lines.append(
            f"incident {snap['id']}: {snap['state']} (v{snap['version']}, {snap['severity']}) "
            f"— {snap['title']}\n  root cause: {top.get('service')} / {top.get('signal')}: "
            f"{top.get('explanation', '')}"
        )
    for action in watcher.actions:
        lines.append(
            f"action: {action['action']} {action['target']} ({action['mode']}, "
            f"{action['status']}) key={action['idempotency_key']}"
        )
    expected = any(
        (s.get("root_causes") or [{}])[0].get("service") == ROOT_CAUSE
        for s in watcher.incidents.values()
    )
    lines.append(f"root cause found: {'yes' if expected else 'no'} (injected fault: {ROOT_CAUSE})")
    console.print(Panel("\n".join(lines), title="what happened"))
    rendered = sorted((home / "slack").glob("*.txt"))
    if rendered:
        console.print(Panel(rendered[-1].read_text(), title="the Slack message (rendered locally)"))


def _spawn(command: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``aiops <command>`` as a child in a session of its own, its output in ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _start_console(
    env: dict[str, str], home: Path
) -> tuple[subprocess.Popen[bytes], str, str] | None:
    """``aiops console`` over the demo's topics, with a one-time password; None (and a
    warning) if it does not come up: the demo goes on without it."""
    port = _free_port()
    password = secrets.token_urlsafe(9)
    env = {**env, "AIOPS_CONSOLE__PORT": str(port), "AIOPS_CONSOLE__USERS": f"{{demo: {password}}}"}
    log_path = home / "console.log"
    proc = _spawn("console", env, log_path)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "health", timeout=2):
                return proc, url, password
        except urllib.error.HTTPError:  # 503 while it reads the topics: it is up
            return proc, url, password
        except OSError:
            time.sleep(0.3)
    _stop(proc)
    console.print(f"[yellow]demo[/] the console did not start; see {log_path}")
    return None


def _console_incidents(url: str, password: str, *, expect: int, timeout: float = 15) -> int:
    """How many incidents the console's API lists (waiting a little for ``expect``)."""
    auth = base64.b64encode(f"demo:{password}".encode()).decode()
    request = urllib.request.Request(
        url + "api/incidents", headers={"Authorization": f"Basic {auth}"}
    )
    deadline = time.monotonic() + timeout
    total = 0
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                total = int(orjson.loads(response.read())["total"])
        except (OSError, ValueError, KeyError):
            pass
        if total >= expect or time.monotonic() > deadline:
            return total
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _keep_console_up(url: str) -> None:
    console.print(f"[cyan]demo[/] the console stays up at {url}; press Ctrl-C to stop")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def run_demo(
    settings: Settings,
    *,
    speed: float = 240.0,
    wait_s: float = 120.0,
    wait_for_user: bool | None = None,
) -> int:
    """Run the whole demo; returns 0 when an incident with the right root cause resolved.

    The incident console runs beside the worker; with ``wait_for_user`` (by default: when
    standard input is a terminal) it stays up after the summary until Ctrl-C."""
    run_id = time.strftime("%Y%m%d-%H%M%S")
    prefix = f"demo-{run_id}"
    topics = {k: f"{prefix}.{k}" for k in ("metrics", "logs", *_KINDS, "control", "series")}
    home = Path(settings.local_kafka.home).expanduser() / "demo" / run_id
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log_path = home / "worker.log"
    console.print(f"[cyan]demo[/] starting a worker (topics {prefix}.*, log {log_path})")
    env = _worker_env(settings, topics, port, home)
    proc = _spawn("worker", env, log_path)
    viewer = None
    try:
        _wait_healthy(proc, port, log_path, timeout=120)
        console.print(f"[cyan]demo[/] worker ready: http://127.0.0.1:{port}/metrics")
        viewer = _start_console(env, home)
        if viewer is not None:
            console.print(
                f"[cyan]demo[/] incident console: {viewer[1]} (sign in as demo, "
                f"password {viewer[2]})"
            )
        watcher = asyncio.run(_demo(settings, topics, speed, wait_s))
        _summary(watcher, home)
        if viewer is not None:
            shown = _console_incidents(viewer[1], viewer[2], expect=len(watcher.incidents))
            console.print(f"[cyan]demo[/] the console shows {shown} incident(s) at {viewer[1]}")
            if wait_for_user if wait_for_user is not None else sys.stdin.isatty():
                _keep_console_up(viewer[1])
    finally:
        if viewer is not None:
            _stop(viewer[0])
        _stop(proc)
    resolved = [s for s in watcher.incidents.values() if s.get("state") == "resolved"]
    ok = any((s.get("root_causes") or [{}])[0].get("service") == ROOT_CAUSE for s in resolved)
    return 0 if ok else 1
