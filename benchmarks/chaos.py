"""Hard faults on a local three-broker cluster under the demo load, with a report of each run.

``python -m benchmarks.chaos`` starts ``aiops kafka up --brokers 3`` on free ports (its own
home), and for each fault runs two workers (replication factor 3) fed the demo scenario
(:mod:`streams.scenario`) with ``acks=all`` and idempotence. Just before the fault reaches
the workers (55 % of the replay), and after a pause that lets them checkpoint, one fault is
applied:

* ``input-leader``: SIGKILL the broker leading partition 0 of the metrics topic;
* ``correlation-leader``: SIGKILL the broker leading the correlation stream and changelogs;
* ``worker-and-broker``: SIGKILL one worker and the broker leading the correlation stream at
  the same moment;
* ``zombie``: SIGSTOP one worker for three session timeouts, so that its partitions move,
  then SIGCONT.

A killed worker is started again once the replay is over, and a killed broker after it (the
cluster runs on two brokers meanwhile, which ``min.insync.replicas`` 2 allows). The report
says what was killed when, the events sent and accepted by each worker before the fault and
at the end, and what a user checks: one incident for the fault with the right culprit, its
versions without a gap, resolved; each action dispatched once with one key; one Slack
thread per incident (the outbox is the incident topic: one incident id); no dead letter.
When only a broker dies, every event is counted exactly once. When a worker dies, the one
that takes over replays what it had not committed, and a frozen worker handles the records
it had fetched before it learns that its partitions moved: those events are counted twice
(the report says how many) and must change nothing (one incident, no version gap, no second
action); none may be missing.

Example::

    python -m benchmarks.chaos                       # every fault, about 5 minutes
    python -m benchmarks.chaos --fault worker-and-broker
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.e2e_kafka import WorkerUnderTest
from streams.config import LocalKafkaSettings
from streams.localkafka import LocalKafka
from streams.scenario import ROOT_CAUSE, Message, config_dir, generate

FAULTS = ("input-leader", "correlation-leader", "worker-and-broker", "zombie")
SESSION_TIMEOUT_S = 10.0
FAULT_AT = 0.55
"""Share of the replay sent before the fault (the demo's fault is in the second half)."""


def free_port_block(size: int) -> int:
    """A port ``p`` such that ``p`` .. ``p + size - 1`` are free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + size > 65536:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {size} consecutive free ports")


def start_cluster(home: Path) -> LocalKafka:
    """Three brokers on free ports, in ``home`` (sharing the jars of the default home)."""
    base = free_port_block(6)
    home.mkdir(parents=True, exist_ok=True)
    jars = LocalKafka(LocalKafkaSettings(), say=lambda _line: None).jars_dir.parent
    if jars.is_dir() and not (home / jars.name).exists():
        (home / jars.name).symlink_to(jars)
    settings = LocalKafkaSettings(
        home=str(home), brokers=3, port=base, controller_port=base + 1, heap="384m"
    )
    kafka = LocalKafka(settings, say=lambda _line: None)
    kafka.reset()
    kafka.up()
    return kafka


async def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    """Node id of the broker leading ``topic``/``partition``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return next(
            int(p["leader"]) for p in described["partitions"] if p["partition"] == partition
        )
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str, idle_s: float, timeout_s: float) -> list[Any]:
    """Every record of ``topic`` once none came for ``idle_s`` (at most ``timeout_s``)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < idle_s:
            batch = await consumer.getmany(timeout_ms=500)
            got = [r for recs in batch.values() for r in recs]
            if got:
                records.extend(got)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return records


@dataclass
class FaultReport:
    """One run: what was done, what was counted, and what did not hold."""

    fault: str
    killed: list[str] = field(default_factory=list)
    """What was done, with the second of the run it was done at."""
    sent: dict[str, int] = field(default_factory=dict)
    accepted_before: list[dict[str, float]] = field(default_factory=list)
    accepted_after: list[dict[str, float]] = field(default_factory=list)
    accepted_total: dict[str, float] = field(default_factory=dict)
    """Accepted over the run, a killed worker's count at the kill included."""
    incidents: int = 0
    culprit_incidents: int = 0
    versions: str = ""
    resolved: bool = False
    dispatched: int = 0
    action_keys: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def replayed(self) -> dict[str, float]:
        """Events counted twice: replayed by a worker that took over, or handled by a
        frozen worker after its partitions moved."""
        return {role: self.accepted_total.get(role, 0) - n for role, n in self.sent.items()}

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        worker_counts = ", ".join(
            f"worker {i + 1}: {_counts(before)} -> {_counts(after)}"
            for i, (before, after) in enumerate(
                zip(self.accepted_before, self.accepted_after, strict=True)
            )
        )
        out = [
            f"## {self.fault}: {'ok' if self.ok else 'FAILED'} ({self.seconds:.0f} s)",
            f"  done:      {'; '.join(self.killed)}",
            f"  sent:      {_counts(self.sent)} events",
            f"  accepted:  {worker_counts} (before the fault -> at the end); "
            f"in all {_counts(self.accepted_total)} ({_counts(self.replayed)} counted twice)",
            f"  incidents: {self.incidents} ({self.culprit_incidents} on {ROOT_CAUSE}), "
            f"versions {self.versions}, {'resolved' if self.resolved else 'NOT resolved'}",
            f"  actions:   {self.dispatched} dispatched, {self.action_keys} distinct keys; "
            f"dead letters: {self.dead_letters}",
        ]
        out.extend(f"  FAILED:    {failure}" for failure in self.failures)
        return out


def _counts(counts: dict[str, Any]) -> str:
    return " / ".join(f"{k} {int(v)}" for k, v in counts.items())


class Run:
    """Two workers on the cluster, the replay, one fault, and the checks."""

    def __init__(self, kafka: LocalKafka, workdir: Path, fault: str) -> None:
        self.kafka = kafka
        self.fault = fault
        self.started = time.monotonic()
        self.report = FaultReport(fault)
        prefix = f"chaos-{fault}-{os.getpid()}-{int(time.time())}"
        scenario = config_dir()
        overrides = {
            "AIOPS_TOPICS__REPLICATION_FACTOR": "3",
            "AIOPS_DETECTION__CHECKPOINT_INTERVAL_S": "2",
            "AIOPS_WORKER__SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S),
            "AIOPS_WORKER__LOG_LEVEL": "warning",
            "AIOPS_INCIDENTS__TOPOLOGY_FILE": str(scenario / "topology.yaml"),
            "AIOPS_INCIDENTS__REMEDIATION_FILE": str(scenario / "remediation.yaml"),
        }
        self.workers = [
            WorkerUnderTest(kafka.bootstrap, prefix, workdir / f"w{i}", dict(overrides))
            for i in range(2)
        ]
        for worker in self.workers:  # one group, one data directory each
            worker.workdir.mkdir(parents=True, exist_ok=True)
        self.killed_workers: list[WorkerUnderTest] = []
        self.killed_nodes: list[int] = []

    def at(self) -> str:
        return f"t={time.monotonic() - self.started:.0f}s"

    def accepted(self, worker: WorkerUnderTest) -> dict[str, float]:
        try:
            return {
                role: worker.counter("aiops_events_accepted_total", [("topic", worker.topic(role))])
                for role in ("metrics", "logs")
            }
        except OSError:  # stopped or killed
            return {"metrics": 0.0, "logs": 0.0}

    async def kill_leader(self, topic: str) -> int:
        leader = await leader_of(self.kafka.bootstrap, topic, 0)
        pid = self.kafka.node_pid(self.kafka.nodes[leader - 1])
        if pid is None:
            raise RuntimeError(f"broker {leader} is not running")
        os.kill(pid, signal.SIGKILL)
        self.killed_nodes.append(leader)
        self.report.killed.append(f"{self.at()} SIGKILL broker {leader} (leader of {topic}/0)")
        return leader

    async def apply_fault(self) -> None:
        correlation = f"{self.workers[0].prefix}-correlate"
        victim = self.workers[1]
        if self.fault == "input-leader":
            await self.kill_leader(self.workers[0].topic("metrics"))
        elif self.fault == "correlation-leader":
            await self.kill_leader(correlation)
        elif self.fault == "worker-and-broker":
            leader = await leader_of(self.kafka.bootstrap, correlation, 0)
            pid = self.kafka.node_pid(self.kafka.nodes[leader - 1])
            assert victim.proc is not None and pid is not None
            os.killpg(victim.proc.pid, signal.SIGKILL)  # the same moment
            os.kill(pid, signal.SIGKILL)
            victim.proc.wait(timeout=10)
            self.killed_workers.append(victim)
            self.killed_nodes.append(leader)
            self.report.killed.append(
                f"{self.at()} SIGKILL worker 2 and broker {leader} (leader of {correlation}/0)"
            )
        elif self.fault == "zombie":
            assert victim.proc is not None
            os.killpg(victim.proc.pid, signal.SIGSTOP)
            frozen = 3 * SESSION_TIMEOUT_S
            self.report.killed.append(f"{self.at()} SIGSTOP worker 2 for {frozen:.0f} s")
            self._thaw_at = time.monotonic() + frozen
        else:
            raise ValueError(f"unknown fault {self.fault!r}; one of {', '.join(FAULTS)}")

    def replay(self, messages: list[Message]) -> None:
        cut = int(len(messages) * FAULT_AT)

        async def send() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.kafka.bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            try:
                for i, message in enumerate(messages):
                    if i == cut:
                        await producer.flush()
                        await asyncio.sleep(6)  # detection and checkpoints of the first part
                        self.report.accepted_before = [self.accepted(w) for w in self.workers]
                        await self.apply_fault()
                    topic = self.workers[0].topic(message.topic)
                    await producer.send(topic, message.value, key=message.key)
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(send())

    def recover(self) -> None:
        if self.fault == "zombie":
            time.sleep(max(0.0, self._thaw_at - time.monotonic()))
            victim = self.workers[1]
            assert victim.proc is not None
            os.killpg(victim.proc.pid, signal.SIGCONT)
            self.report.killed.append(f"{self.at()} SIGCONT worker 2")
        for worker in self.killed_workers:
            worker.start()
            self.report.killed.append(f"{self.at()} worker 2 started again")
        if self.killed_nodes:
            self.kafka.up()
            nodes = ", ".join(str(n) for n in self.killed_nodes)
            self.report.killed.append(f"{self.at()} broker {nodes} started again")

    def wait_accepted(self, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            totals = self.totals()
            if all(totals[role] >= self.report.sent[role] for role in self.report.sent):
                return
            time.sleep(1)

    def totals(self) -> dict[str, float]:
        """Events accepted in the run: every running worker's counter, and what a killed
        worker had counted when it was killed (its counters died with it; the producer was
        paused for seconds before the kill, so its count then is its count at the kill)."""
        counts = [self.accepted(w) for w in self.workers]
        for worker in self.killed_workers:
            counts.append(self.report.accepted_before[self.workers.index(worker)])
        return {role: sum(c[role] for c in counts) for role in ("metrics", "logs")}

    def check(self) -> None:
        report = self.report
        bootstrap = self.kafka.bootstrap
        w = self.workers[0]
        snapshots = [
            orjson.loads(r.value)
            for r in asyncio.run(read_topic(bootstrap, w.topic("incidents"), 45, 400))
        ]
        latest: dict[str, dict[str, Any]] = {}
        for snap in snapshots:
            if snap["version"] >= latest.get(snap["id"], {}).get("version", 0):
                latest[snap["id"]] = snap
        actions = [
            orjson.loads(r.value)
            for r in asyncio.run(read_topic(bootstrap, w.topic("actions"), 3, 30))
        ]
        report.dead_letters = len(asyncio.run(read_topic(bootstrap, w.topic("deadletter"), 2, 10)))
        report.accepted_after = [self.accepted(worker) for worker in self.workers]
        report.incidents = len(latest)
        faulty = [
            s
            for s in latest.values()
            if s["root_causes"] and s["root_causes"][0]["service"] == ROOT_CAUSE
        ]
        report.culprit_incidents = len(faulty)
        fails = report.failures
        if len(faulty) != 1:
            fails.append(f"{len(faulty)} incidents on {ROOT_CAUSE}, not 1")
        else:
            (incident,) = faulty
            versions = sorted({s["version"] for s in snapshots if s["id"] == incident["id"]})
            report.versions = (
                f"1..{versions[-1]}"
                if versions == list(range(1, versions[-1] + 1))
                else str(versions)
            )
            if versions != list(range(1, versions[-1] + 1)):
                fails.append(f"a gap in the versions: {versions}")
            report.resolved = incident["state"] == "resolved"
            if not report.resolved:
                fails.append(f"the incident is {incident['state']}, not resolved")
        dispatched = [
            (a["action"], a["target"], a["idempotency_key"])
            for a in actions
            if a["status"] == "dispatched"
        ]
        report.dispatched = len(dispatched)
        report.action_keys = len({key for _, _, key in dispatched})
        if not dispatched:
            fails.append("no action dispatched")
        if report.action_keys != len(dispatched):
            fails.append("an idempotency key dispatched twice")
        if len({(a, t) for a, t, _ in dispatched}) != len({k for *_, k in dispatched}):
            fails.append("an action with two idempotency keys")
        if report.dead_letters:
            fails.append(f"{report.dead_letters} dead letters")
        totals = report.accepted_total = self.totals()
        for role, sent in report.sent.items():
            if totals[role] < sent:
                fails.append(f"{role}: {int(totals[role])} accepted of {sent} sent")
            if self.fault in ("input-leader", "correlation-leader") and totals[role] != sent:
                fails.append(
                    f"{role}: {int(totals[role])} accepted of {sent} sent (no worker killed)"
                )
        for i, worker in enumerate(self.workers):
            if worker.proc is None or worker.proc.poll() is not None:
                fails.append(f"worker {i + 1} is not running")

    def run(self) -> FaultReport:
        messages = list(generate(time.time() - 5 * 3600))
        for message in messages:
            value = orjson.loads(message.value)
            n = len(value) if isinstance(value, list) else 1
            self.report.sent[message.topic] = self.report.sent.get(message.topic, 0) + n
        try:
            for worker in self.workers:
                worker.start()
            time.sleep(5)  # the group settles before the load
            self.report.killed.append(f"{self.at()} two workers running, replay starts")
            self.replay(messages)
            self.report.killed.append(f"{self.at()} replay done")
            self.recover()
            self.wait_accepted()
            self.check()
        finally:
            for worker in self.workers:
                if worker.proc is not None and worker.proc.poll() is None:
                    os.killpg(worker.proc.pid, signal.SIGCONT)
                worker.stop()
            self.report.seconds = time.monotonic() - self.started
        return self.report


def run_fault(kafka: LocalKafka, workdir: Path, fault: str) -> FaultReport:
    """Run one fault on a running cluster (see the module)."""
    return Run(kafka, workdir, fault).run()


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    logging.basicConfig(level=logging.ERROR)  # the client's warnings about the dead broker
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--fault", action="append", choices=FAULTS, help="default: every fault")
    args = parser.parse_args(argv)
    faults = args.fault or list(FAULTS)
    with tempfile.TemporaryDirectory(prefix="aiops-chaos-") as tmp:
        kafka = start_cluster(Path(tmp) / "kafka")
        say(f"3-broker cluster on {kafka.bootstrap}")
        reports = []
        try:
            for fault in faults:
                report = run_fault(kafka, Path(tmp) / fault, fault)
                reports.append(report)
                for line in report.lines():
                    say(line)
                kafka.up()  # every broker back for the next run
        finally:
            kafka.reset()
    ok = sum(r.ok for r in reports)
    say(f"{ok} of {len(reports)} faults left one clean incident and lost nothing")
    return 0 if ok == len(reports) else 1


if __name__ == "__main__":
    sys.exit(main())
