"""Real telemetry producers (rsyslog, collectd, kcat) writing into the real broker.

The producers are Debian packages installed by ``.ci/install-producers``; nothing is
installed at test time. A missing producer skips its tests, or fails them when
``AIOPS_REQUIRE_PRODUCERS=1`` (CI, where a skip would hide a broken install).

Each test runs a private producer instance (its own configuration, pid file and work
directory under ``tmp_path``, never the system's) against unique topics, then checks
what a user would: the raw records, what the decoders make of them, and the counters of
a worker reading them.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.kafka_harness import WorkerProcess, consume_all

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "producers"
REQUIRE_ENV = "AIOPS_REQUIRE_PRODUCERS"
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "producers: drives a real producer (rsyslog, collectd, kcat) into Kafka"
    )


def require_binary(name: str, package: str) -> str:
    """Path of a producer's executable; skip (or fail under ``AIOPS_REQUIRE_PRODUCERS=1``)."""
    for directory in (None, "/usr/sbin", "/sbin"):
        path = shutil.which(name, path=directory)
        if path is not None:
            return path
    message = f"{name} is not installed (Debian package {package}); run .ci/install-producers"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 and {message}", pytrace=False)
    pytest.skip(message)


def require_file(pattern: str, package: str) -> Path:
    """A file a producer needs (a plugin, a glob); skip or fail like :func:`require_binary`."""
    found = sorted(glob.glob(pattern))
    if found:
        return Path(found[0])
    message = f"{pattern} is missing (Debian package {package}); run .ci/install-producers"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 and {message}", pytrace=False)
    pytest.skip(message)


def render(name: str, **values: str) -> str:
    """A configuration template of ``deploy/producers`` with its ``${NAME}`` filled in."""
    text = (DEPLOY / name).read_text()
    missing = set(_PLACEHOLDER.findall(text)) - set(values)
    assert not missing, f"{name}: no value for {sorted(missing)}"
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


@dataclass
class Daemon:
    """A producer process in the foreground of its own session, output in a log file."""

    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM (both daemons flush their Kafka queue on it), SIGKILL after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; all stopped at its end, pass or fail."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def create_topics(bootstrap: str, *names: str, partitions: int = 4) -> None:
    """Create topics up front: a consumer that subscribes before the producer's first
    record would otherwise not see the topic until its next metadata refresh."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
            )
        finally:
            await admin.close()

    asyncio.run(create())


def raw_records(bootstrap: str, topic: str, *, expect: int | None, timeout_s: float) -> list[bytes]:
    """Every record value of a topic, in (partition, offset) order."""
    records = asyncio.run(
        consume_all(bootstrap, topic, expect=expect, idle_s=1.0, timeout_s=timeout_s)
    )
    records.sort(key=lambda r: (r.partition, r.offset))
    return [bytes(r.value) for r in records]


def deadlettered(worker: WorkerProcess, topic: str) -> dict[str, float]:
    """Dead letters the worker counted for a source topic, per reason."""
    text = worker.get("/metrics").decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("aiops_events_deadlettered_total{"):
            continue
        series, _, value = line.rpartition(" ")
        labels = dict(part.split("=", 1) for part in series[series.index("{") + 1 : -1].split(","))
        if labels.get("topic") == f'"{topic}"':
            found[labels["reason"].strip('"')] = float(value)
    return found


def wait_for_accepted(worker: WorkerProcess, topic: str, expected: int, timeout: float) -> float:
    """The worker's accepted count for a topic once it reached ``expected`` (or timed out)."""
    deadline = time.monotonic() + timeout
    accepted = 0.0
    while time.monotonic() < deadline:
        accepted = worker.metric("aiops_events_accepted_total", topic=topic)
        if accepted >= expected:
            time.sleep(1.0)  # anything beyond?
            return worker.metric("aiops_events_accepted_total", topic=topic)
        time.sleep(0.3)
    return accepted
