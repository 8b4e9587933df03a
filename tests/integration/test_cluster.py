"""``aiops kafka up --brokers 3``: three KRaft brokers on this machine, the service's topics
replicated three times with ``min.insync.replicas`` 2; nothing lost or doubled when the
leader of a partition is killed while records are being produced, nor when the broker that
leads the correlation stream or an input partition dies under a worker in the middle of the
demo fault, nor when a worker and a broker die at the same moment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from benchmarks.chaos import free_port_block, leader_of, run_fault
from streams.config import LocalKafkaSettings, Settings
from streams.localkafka import LocalKafka
from streams.scenario import generate
from streams.topics import ensure_topics
from tests.integration.test_incident_flow import incident_worker
from tests.integration.test_resilience import assert_one_clean_incident, collect
from tests.kafka_harness import wait_until

pytestmark = pytest.mark.kafka


@pytest.fixture
def cluster() -> Iterator[LocalKafka]:
    base = free_port_block(6)
    settings = LocalKafkaSettings(brokers=3, port=base, controller_port=base + 1, heap="384m")
    kafka = LocalKafka(settings, say=lambda _line: None)
    kafka.reset()  # data of an earlier run used other ports
    kafka.up()
    try:
        yield kafka
    finally:
        kafka.reset()


async def describe(bootstrap: str, topics: list[str]) -> tuple[dict[str, set[int]], dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        replicas = {
            str(t["topic"]): {len(p["replicas"]) for p in t["partitions"]} for t in described
        }
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topics[0])]
        )
        entries = {
            str(entry["config_names"]): str(entry["config_value"])
            for response in configs
            for resource in response.to_object()["resources"]
            for entry in resource["config_entries"]
        }
        return replicas, entries
    finally:
        await admin.close()


async def produce_and_kill(kafka: LocalKafka, topic: str, count: int) -> None:
    """``count`` records with acks=all and idempotence; halfway, SIGKILL the leader of
    partition 0."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        for i in range(count):
            if i == count // 2:
                await producer.flush()
                leader = await leader_of(kafka.bootstrap, topic, 0)
                pid = kafka.node_pid(kafka.nodes[leader - 1])
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            await producer.send_and_wait(topic, f"record-{i}".encode(), partition=i % 4)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, expect: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(values) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(r.value for rs in batch.values() for r in rs if r.value is not None)
    finally:
        await consumer.stop()
    return values


def test_three_brokers_replicate_the_topics_and_survive_a_killed_leader(
    cluster: LocalKafka,
) -> None:
    assert len(cluster.bootstrap.split(",")) == 3
    settings = Settings.model_validate(
        {"kafka": {"bootstrap": cluster.bootstrap}, "topics": {"replication_factor": 3}}
    )
    names = asyncio.run(ensure_topics(settings))  # the configured ones and the internal one
    assert set(settings.topics.all_names()) < set(names)
    replicas, configs = asyncio.run(describe(cluster.bootstrap, names))
    assert replicas == {name: {3} for name in names}
    assert configs["min.insync.replicas"] == "2"

    topic = settings.topics.metrics
    asyncio.run(produce_and_kill(cluster, topic, 2000))
    values = asyncio.run(read_all(cluster.bootstrap, topic, 2000))
    assert sorted(values) == sorted(f"record-{i}".encode() for i in range(2000)), (
        "every acknowledged record once, though a leader died"
    )
    alive = [n for n in cluster.nodes if cluster.node_pid(n) is not None]
    assert len(alive) == 2


def test_aiops_kafka_up_brokers_3_tells_the_worker_settings(tmp_path: Path) -> None:
    base = free_port_block(6)
    # a home of its own (`kafka down` stops whatever a home runs: not this suite's broker),
    # sharing the jars fetched once
    home = tmp_path / "home"
    home.mkdir()
    jars = LocalKafka(LocalKafkaSettings(), say=lambda _line: None).jars_dir.parent
    if jars.is_dir():
        (home / jars.name).symlink_to(jars)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "AIOPS_LOCAL_KAFKA__HOME": str(home),
            "AIOPS_LOCAL_KAFKA__PORT": str(base),
            "AIOPS_LOCAL_KAFKA__CONTROLLER_PORT": str(base + 1),
            "AIOPS_LOCAL_KAFKA__HEAP": "384m",
            "AIOPS_KAFKA_BOOTSTRAP": f"127.0.0.1:{base}",
        }
    )
    aiops = [sys.executable, "-m", "streams.cli", "kafka"]
    run = lambda *a: subprocess.run(  # noqa: E731
        [*aiops, *a], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    run("reset", "--brokers", "3")
    try:
        up = run("up", "--brokers", "3")
        assert up.returncode == 0, up.stdout + up.stderr
        said = " ".join((up.stdout + up.stderr).split())
        addresses = ",".join(f"127.0.0.1:{base + 2 * i}" for i in range(3))
        assert f"AIOPS_KAFKA_BOOTSTRAP={addresses}" in said
        assert "AIOPS_TOPICS__REPLICATION_FACTOR=3" in said and "min.insync.replicas 2" in said
    finally:
        down = run("down")  # without --brokers: whatever runs, the cluster included
        assert "Kafka stopped" in down.stdout + down.stderr, down.stdout + down.stderr
        run("reset", "--brokers", "3")


@dataclass(frozen=True)
class ClusterHandle:
    """What the worker helpers take from a broker fixture."""

    bootstrap: str


@pytest.mark.parametrize("victim", ["correlation", "input"])
def test_a_worker_loses_nothing_when_a_leader_is_killed(
    cluster: LocalKafka, tmp_path: Path, victim: str
) -> None:
    """SIGKILL the broker that leads the correlation stream, or the first partition of the
    metrics topic, just before the demo fault reaches the worker."""
    worker = incident_worker(ClusterHandle(cluster.bootstrap), tmp_path, "hard")
    worker.extra_env["AIOPS_TOPICS__REPLICATION_FACTOR"] = "3"
    worker.start()
    try:
        messages = list(generate(time.time() - 5 * 3600))
        sent: dict[str, int] = {"metrics": 0, "logs": 0}
        for m in messages:
            value = orjson.loads(m.value)
            sent[m.topic] += len(value) if isinstance(value, list) else 1
        led = f"{worker.prefix}-correlate" if victim == "correlation" else worker.topics["metrics"]
        killed: list[int] = []

        async def replay_and_kill() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            try:
                for i, message in enumerate(messages):
                    if i == len(messages) * 55 // 100:  # the fault is in the second half
                        await producer.flush()
                        await asyncio.sleep(5)  # anomalies and progress on the stream
                        leader = await leader_of(cluster.bootstrap, led, 0)
                        pid = cluster.node_pid(cluster.nodes[leader - 1])
                        assert pid is not None
                        os.kill(pid, signal.SIGKILL)
                        killed.append(leader)
                    topic = worker.topics[message.topic]
                    await producer.send(topic, message.value, key=message.key)
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(replay_and_kill())
        assert killed, f"the leader of the {victim} topic was killed"
        for kind, count in sent.items():
            topic = worker.topics[kind]
            assert wait_until(
                lambda topic=topic, count=count: (
                    worker.metric("aiops_events_accepted_total", topic=topic) >= count
                ),
                timeout=240,
            ), (kind, worker.metric("aiops_events_accepted_total", topic=topic), count)
            accepted = worker.metric("aiops_events_accepted_total", topic=topic)
            assert accepted == count, f"{kind}: {accepted} accepted of {count} sent"
        results = collect(cluster.bootstrap, worker.topics)
        assert_one_clean_incident(results)
        keys = [k for _, _, k in results.dispatched]
        assert len(keys) == len(set(keys)) >= 1, "each dispatched action once"
        assert worker.proc is not None and worker.proc.poll() is None, "the worker kept running"
    finally:
        worker.stop()


def test_a_worker_and_a_broker_killed_at_the_same_moment(
    cluster: LocalKafka, tmp_path: Path
) -> None:
    """Of two workers, one is SIGKILLed together with the broker leading the correlation
    stream, just before the demo fault; both come back once the replay is over
    (``python -m benchmarks.chaos --fault worker-and-broker`` prints the same run)."""
    report = run_fault(cluster, tmp_path, "worker-and-broker")
    said = "\n".join(report.lines())
    assert any("SIGKILL worker 2 and broker" in line for line in report.killed), said
    for role, sent in report.sent.items():  # the killed worker's count at the kill included
        assert report.accepted_total[role] >= sent, said
    assert report.culprit_incidents == 1, said  # not lost, not split in two
    assert report.versions.startswith("1.."), said  # no gap
    assert report.resolved, said
    assert report.dispatched == report.action_keys >= 1, said
    assert report.dead_letters == 0, said
    assert report.ok, said
