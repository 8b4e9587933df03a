"""Test harness for the real broker and real worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.e2e_kafka import delete_topics_with_prefix
from streams.config import LocalKafkaSettings
from streams.localkafka import LocalKafka, broker_answers
from streams.worker import TOPIC_ROLES, subprocess_env


@dataclass
class BrokerHandle:
    bootstrap: str
    local: LocalKafka | None = None

    def close(self) -> None:
        if os.environ.get("AIOPS_TEST_KEEP_TOPICS") != "1" and PREFIXES:
            asyncio.run(delete_topics_with_prefix(self.bootstrap, tuple(PREFIXES)))
        if self.local is not None and os.environ.get("AIOPS_TEST_KEEP_KAFKA") != "1":
            self.local.down()


#: The prefixes of the topics (and groups) tests created in this session.
PREFIXES: set[str] = set()


def start_broker(bootstrap: str | None) -> BrokerHandle:
    if bootstrap:
        if not asyncio.run(broker_answers(bootstrap, timeout=10)):
            raise RuntimeError(f"AIOPS_KAFKA_BOOTSTRAP={bootstrap} does not answer")
        return BrokerHandle(bootstrap)
    local = LocalKafka(LocalKafkaSettings())
    if asyncio.run(broker_answers(local.bootstrap)):
        return BrokerHandle(local.bootstrap)  # someone else's broker: leave it running
    local.up()
    return BrokerHandle(local.bootstrap, local)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_prefix(name: str) -> str:
    prefix = f"t-{name}-{uuid.uuid4().hex[:8]}"
    PREFIXES.add(prefix)
    return prefix


@dataclass
class WorkerProcess:
    """One ``aiops worker`` subprocess with its own topics, group and web port."""

    bootstrap: str
    prefix: str
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def topics(self) -> dict[str, str]:
        return {role: f"{self.prefix}.{role}" for role in TOPIC_ROLES}

    def env(self) -> dict[str, str]:
        return subprocess_env(
            bootstrap=self.bootstrap,
            app_id=self.prefix,
            web_port=self.web_port,
            datadir=self.tmp / f"data-{self.web_port}",
            overrides={
                "AIOPS_WORKER__LOG_LEVEL": os.environ.get("AIOPS_TEST_WORKER_LOG_LEVEL", "warning"),
                **self.extra_env,
            },
        )

    def start(self) -> WorkerProcess:
        log = (self.tmp / f"worker-{self.web_port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_healthy()
        return self

    def log_text(self) -> str:
        return (self.tmp / f"worker-{self.web_port}.log").read_text(errors="replace")

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_text()[-4000:]}")
            try:
                self.get("/health")
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"worker not healthy in {timeout}s:\n{self.log_text()[-4000:]}")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=5) as r:
            return bytes(r.read())

    def metric(self, name: str, **labels: str) -> float:
        """Value of one Prometheus sample from the worker's /metrics (0 if absent)."""
        text = self.get("/metrics").decode()
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            if series == name and not want:
                return float(value)
            if series.startswith(name + "{"):
                got = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
                if got == want:
                    return float(value)
        return 0.0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


async def produce(
    bootstrap: str, topic: str, values: Iterable[bytes], key: bytes | None = None
) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=8 * 1_048_576, linger_ms=5
    )
    await producer.start()
    count = 0
    try:
        batch = []
        for value in values:
            batch.append(await producer.send(topic, value, key=key))
            count += 1
            if len(batch) >= 2000:
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)
    finally:
        await producer.stop()
    return count


async def consume_all(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    idle_s: float = 3.0,
    timeout_s: float = 120.0,
    until: Callable[[list[Any]], bool] | None = None,
    settle_s: float = 3.0,
) -> list[Any]:
    """Read a topic from the beginning until ``expect`` records arrived or it stays idle
    for ``idle_s``; with ``until``, also as soon as ``until(records)`` holds and nothing
    more came for ``settle_s``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1_048_576,
        fetch_max_bytes=64 * 1_048_576,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        consumer.subscribe([topic])  # no group: every partition, from the beginning
        last = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got = [r for recs in batch.values() for r in recs]
            if got:
                records.extend(got)
                last = time.monotonic()
            if expect is not None and len(records) >= expect:
                await asyncio.sleep(idle_s)  # anything beyond the expected count?
                extra = await consumer.getmany(timeout_ms=500)
                records.extend(r for recs in extra.values() for r in recs)
                break
            quiet_s = time.monotonic() - last
            if expect is None and quiet_s > idle_s:
                break
            if until is not None and quiet_s > settle_s and until(records):
                break
    finally:
        await consumer.stop()
    return records


def wait_until(predicate: Any, timeout: float = 120, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
