"""The hostile corpus through the real broker and worker: every message accounted for.

21,000 messages (metrics, logs, alerts), mixing valid events with random bytes, invalid
UTF-8, JSON nested 10,000 deep, 5 MB messages, NaN, 1e400, times in year 1 and 9999 and in
the wrong unit, arrays of 100,000 elements, 10 KB names, control characters and
right-to-left marks in names, and each ingest format broken its own way
(:mod:`tests.hostile`). Each message has its own key, which its dead letters carry, so
every dead letter is matched to the message it came from.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.deadletter import parse_headers
from tests.hostile import Case, corpus
from tests.kafka_harness import BrokerHandle, WorkerProcess, consume_all, unique_prefix, wait_until

pytestmark = pytest.mark.kafka

COUNTS = {"metrics": 10_000, "logs": 9_000, "alerts": 2_000}


async def _produce(bootstrap: str, topic: str, cases: list[Case], role: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=8 * 1_048_576, linger_ms=5
    )
    await producer.start()
    try:
        pending = []
        for i, case in enumerate(cases):
            pending.append(await producer.send(topic, case.payload, key=f"{role}-{i}".encode()))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages between the group's committed offsets and the ends of ``topics``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = await consumer.end_offsets(parts)
        return sum(
            end - max(committed[tp].offset, 0) if tp in committed else end
            for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


def test_hostile_corpus_is_accepted_or_dead_lettered_message_by_message(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    worker = WorkerProcess(kafka.bootstrap, unique_prefix("hostile"), tmp_path).start()
    try:
        topics = worker.topics
        sent = {role: corpus(role, n, seed=11) for role, n in COUNTS.items()}  # type: ignore[arg-type]
        for role, cases in sent.items():
            asyncio.run(_produce(kafka.bootstrap, topics[role], cases, role))

        expected_letters = sum(len(c.letters) for cases in sent.values() for c in cases)
        letters = asyncio.run(
            consume_all(
                kafka.bootstrap, topics["deadletter"], expect=expected_letters, timeout_s=300
            )
        )
        assert wait_until(
            lambda: all(
                worker.metric("aiops_messages_consumed_total", topic=topics[role]) >= len(cases)
                for role, cases in sent.items()
            ),
            timeout=120,
        ), worker.log_text()[-3000:]

        # the worker lived through it and says so
        assert worker.proc is not None and worker.proc.poll() is None
        assert orjson.loads(worker.get("/health"))
        # and caught up: nothing left unread on its inputs
        inputs = [topics["metrics"], topics["logs"], topics["alerts"]]
        assert wait_until(
            lambda: asyncio.run(_lag(kafka.bootstrap, worker.prefix, inputs)) == 0, timeout=60
        )

        # dead letters, message by message: the reasons each message must leave, no more
        got: dict[str, Counter[str]] = defaultdict(Counter)
        held: dict[str, int] = defaultdict(int)
        for record in letters:
            headers = parse_headers(list(record.headers))
            assert headers["detail"] and int(headers["offset"]) >= 0
            got[headers["key"]][headers["reason"]] += 1
            held[headers["key"]] += int(headers.get("count", "1"))
        want = {
            f"{role}-{i}": Counter(case.letters)
            for role, cases in sent.items()
            for i, case in enumerate(cases)
            if case.letters
        }
        wrong = {
            key: (got.get(key), want.get(key))
            for key in set(got) | set(want)
            if got.get(key) != want.get(key)
        }
        assert not wrong, list(wrong.items())[:10]
        for role, cases in sent.items():
            for i, case in enumerate(cases):
                if case.rejected:
                    assert held[f"{role}-{i}"] == case.rejected, case.kind

        # accepted + dead-lettered == sent, per topic, on /metrics
        for role, cases in sent.items():
            topic = topics[role]
            assert worker.metric("aiops_messages_consumed_total", topic=topic) == len(cases)
            assert worker.metric("aiops_events_accepted_total", topic=topic) == sum(
                c.accepted for c in cases
            ), role
            by_reason: Counter[str] = Counter()
            for c in cases:
                if len(c.letters) == c.rejected:
                    by_reason.update(c.letters)
                else:  # a message past the limit: its last record holds the rest
                    by_reason.update(c.letters[:-1])
                    by_reason["too_many_errors"] += c.rejected - len(c.letters) + 1
            for reason, count in by_reason.items():
                assert (
                    worker.metric("aiops_events_deadlettered_total", topic=topic, reason=reason)
                    == count
                ), (role, reason)
    finally:
        worker.stop()
