"""Broker and process plumbing of the end-to-end benchmark (``python -m benchmarks.e2e``).

A benchmark run owns a topic prefix; :class:`WorkerUnderTest` starts one ``aiops worker``
subprocess on those topics, and :class:`ProcessProbe` reads the CPU time and resident memory
of any process from ``/proc`` (Linux only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.config import LocalKafkaSettings
from streams.localkafka import LocalKafka, broker_answers
from streams.worker import subprocess_env

PRODUCE_WINDOW = 5000


class BenchmarkError(Exception):
    """The benchmark cannot run (no broker, a worker that does not start, ...)."""


def ensure_broker(bootstrap: str) -> LocalKafka | None:
    """Reuse the broker at ``bootstrap``, or start the local one; return it if started here."""
    if asyncio.run(broker_answers(bootstrap, timeout=10)):
        return None
    local = LocalKafka(LocalKafkaSettings())
    if local.bootstrap != bootstrap:
        raise BenchmarkError(f"no broker answers at {bootstrap}")
    local.up()
    return local


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """CPU seconds (user + system) and resident memory of a process at one moment."""

    at: float
    cpu_s: float
    rss_bytes: int


class ProcessProbe:
    """Reads ``/proc/<pid>/stat`` and ``/proc/<pid>/status`` of one process.

    >>> probe = ProcessProbe(os.getpid())
    >>> probe.sample().rss_bytes > 0
    True
    """

    _TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process (all its threads)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / self._TICKS  # utime, stime

    def rss_bytes(self) -> int:
        """Resident set size (``VmRSS``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def sample(self) -> ProcessSample:
        """CPU and memory now."""
        return ProcessSample(time.time(), self.cpu_s(), self.rss_bytes())


async def create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    """Create topics (name -> partitions) that do not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name=name, num_partitions=n, replication_factor=1)
            for name, n in partitions.items()
            if name not in existing
        ]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


async def delete_topics_with_prefix(bootstrap: str, prefix: str | tuple[str, ...]) -> int:
    """Delete every topic whose name starts with ``prefix`` (or one of them): a run's own
    topics, so that the broker's data directory does not pile them up."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        for i in range(0, len(names), 100):
            with contextlib.suppress(Exception):
                await admin.delete_topics(names[i : i + 100])
        return len(names)
    finally:
        await admin.close()


async def produce_all(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]
) -> tuple[int, float]:
    """Produce ``(key, value)`` records as fast as the broker takes them.

    Returns the number of records and the seconds it took.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=1_048_576,
        max_request_size=8 * 1_048_576,
        acks=1,
    )
    await producer.start()
    start = time.perf_counter()
    count = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            count += 1
            if len(pending) >= PRODUCE_WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return count, time.perf_counter() - start


@dataclass
class WorkerUnderTest:
    """One ``aiops worker`` subprocess on the topics ``<prefix>.<role>``.

    Parameters
    ----------
    bootstrap
        The broker.
    prefix
        Topic prefix and consumer group (application id) of this worker.
    workdir
        Where its data directory and log go.
    overrides
        Extra ``AIOPS_*`` variables (settings), e.g. topic names shared between runs.
    """

    bootstrap: str
    prefix: str
    workdir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def topic(self, role: str) -> str:
        """The topic this worker uses for ``role`` (``metrics``, ``anomalies``, ...)."""
        key = f"AIOPS_TOPICS__{role.upper()}"
        return self.overrides.get(key, f"{self.prefix}.{role}")

    def env(self) -> dict[str, str]:
        return subprocess_env(
            bootstrap=self.bootstrap,
            app_id=self.prefix,
            web_port=self.web_port,
            datadir=self.workdir / f"data-{self.prefix}",
            overrides=self.overrides,
        )

    @property
    def log_path(self) -> Path:
        return self.workdir / f"worker-{self.prefix}.log"

    def start(self, timeout: float = 120.0) -> ProcessProbe:
        """Start the worker and wait until its web server answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchmarkError(f"worker exited early:\n{self.log_tail()}")
            try:
                self.get("/health")
                return ProcessProbe(self.proc.pid)
            except OSError:
                time.sleep(0.3)
        raise BenchmarkError(f"worker not healthy in {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.web_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())

    def counter(self, name: str, labels: Sequence[tuple[str, str]] = ()) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
        want = [f'{k}="{v}"' for k, v in labels]
        total = 0.0
        for line in self.get("/metrics").decode().splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            base = series.split("{", 1)[0]
            if base != name:
                continue
            if all(w in series for w in want):
                total += float(value)
        return total

    def stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL after 20 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
