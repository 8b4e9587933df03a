"""Record batches of the worker's transport: offsets commit as if each record were acked."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams import transport
from streams.records import InputRecord
from streams.transport import BatchMessage, batch_records, chunk_records

TOPIC = "telemetry.metrics"


@pytest.fixture()
def consumer() -> Any:
    app = faust.App("t-transport", broker="aiops://127.0.0.1:1")
    app.aiops_batch_topics = frozenset({TOPIC})  # type: ignore[attr-defined]
    app.topics._acking_topics.add(TOPIC)  # as when an agent subscribes to the topic
    app.consumer_generation_id = 0  # as after the first rebalance
    return app.consumer


def batch(first: int, offsets: list[int]) -> BatchMessage:
    tp = TP(TOPIC, 0)
    records = [InputRecord(o, None, b"{}", 1.0) for o in offsets]
    return BatchMessage(
        TOPIC, 0, offsets[-1], 1.0, 0, [], None, b"", None, 0, 0, tp,
        generation_id=0, first_offset=first, records=records,
    )  # fmt: skip


def test_acking_a_batch_commits_past_its_last_record(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 100
    assert consumer.ack(batch(100, list(range(100, 150))))
    assert consumer._new_offset(tp) == 150


def test_offsets_without_records_are_accounted_for(consumer: Any) -> None:
    # e.g. a transaction marker at 120: the batch's records skip it, the commit does not stop
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 100
    offsets = [o for o in range(100, 150) if o != 120]
    consumer.ack(batch(100, offsets))
    assert consumer._new_offset(tp) == 150


def test_unacked_batch_holds_the_commit_back(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 100
    consumer.ack(batch(150, list(range(150, 200))))  # the batch before it is still in flight
    assert consumer._new_offset(tp) is None
    consumer.ack(batch(100, list(range(100, 150))))
    assert consumer._new_offset(tp) == 200


def test_a_batch_is_acked_once(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 0
    message = batch(0, [0, 1, 2])
    assert consumer.ack(message)
    assert not consumer.ack(message)
    assert consumer._acked[tp] == [0, 1, 2]


def test_already_committed_offsets_are_not_acked_again(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 10
    consumer.ack(batch(5, list(range(5, 20))))
    assert consumer._acked[tp] == list(range(10, 20))
    assert consumer._new_offset(tp) == 20


def test_a_batch_from_before_a_rebalance_commits_nothing(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 100
    stale = batch(100, list(range(100, 150)))
    consumer.app.consumer_generation_id = 1  # a rebalance since it was fetched
    assert not consumer.ack(stale)
    assert consumer._new_offset(tp) is None


def test_batch_records_of_a_plain_message() -> None:
    message = faust.types.Message(TOPIC, 3, 42, 5.0, 0, [], b"k", b"v", None)
    assert batch_records(message) == [InputRecord(42, b"k", b"v", 5.0)]


def test_chunks_keep_order_and_cover_every_record() -> None:
    class R:
        def __init__(self, i: int) -> None:
            self.i = i
            self.value = b"x" * (1 + i % 5000)

    records = [R(i) for i in range(3000)]
    chunks = list(chunk_records(records))
    assert [r.i for c in chunks for r in c] == list(range(3000))
    assert all(len(c) <= 500 for c in chunks)
    assert all(sum(len(r.value) for r in c) <= 1_048_576 for c in chunks)


class LaggingMetadata:
    """An aiokafka consumer whose metadata lists its topics only after some refreshes."""

    def __init__(self, topics: set[str], listed_after: int) -> None:
        self.topics = topics
        self.listed_after = listed_after
        self.refreshes = 0
        self._client = self

    def subscription(self) -> set[str]:
        return self.topics

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1} if self.refreshes >= self.listed_after else None

    async def force_metadata_update(self) -> bool:
        self.refreshes += 1
        return True


def test_metadata_is_refreshed_until_every_subscribed_topic_is_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "UNKNOWN_TOPIC_RETRY_S", (0.0,))
    consumer = LaggingMetadata({TOPIC, "aiops.control"}, listed_after=3)
    assert transport.unknown_topics(consumer) == {TOPIC, "aiops.control"}
    asyncio.run(transport.refresh_until_known(consumer))
    assert consumer.refreshes == 3
    assert transport.unknown_topics(consumer) == set()


def test_no_refresh_when_every_topic_is_listed() -> None:
    consumer = LaggingMetadata({TOPIC}, listed_after=0)
    asyncio.run(transport.refresh_until_known(consumer))
    assert consumer.refreshes == 0


class _State:
    def __init__(self, position: int) -> None:
        self.position = position
        self.has_valid_position = True


class _Client:
    """The parts of an aiokafka consumer that ``recover_stranded`` reads."""

    def __init__(self, positions: dict[TP, int]) -> None:
        self.positions = positions
        assignment = type("A", (), {"state_value": lambda _, tp: _State(self.positions[tp])})()
        self._subscription = type(
            "S", (), {"subscription": type("T", (), {"assignment": assignment})()}
        )()

    def assignment(self) -> set[TP]:
        return set(self.positions)


def recorded_seeks(consumer: Any) -> list[tuple[TP, int]]:
    """The seeks the consumer makes from now on (each sets the read offset, as Faust's)."""
    sought: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        sought.append((tp, offset))
        consumer._read_offset[tp] = offset

    consumer.seek = seek
    return sought


def stranded_consumer(consumer: Any, positions: dict[TP, int]) -> tuple[Any, list[tuple[TP, int]]]:
    client = _Client(positions)
    consumer._thread = type("Th", (), {"_ensure_consumer": lambda _: client})()
    return client, recorded_seeks(consumer)


def test_records_that_never_reached_the_stream_are_read_again(consumer: Any) -> None:
    stuck, fine = TP(TOPIC, 1), TP(TOPIC, 2)
    _, sought = stranded_consumer(consumer, {stuck: 1600, fine: 800})
    consumer._read_offset[stuck] = 1200  # sought to the committed offset, nothing handed on
    consumer._committed_offset[stuck] = 1200
    consumer._read_offset[fine] = 799  # handed on up to the client's position
    assert asyncio.run(consumer.recover_stranded()) == []  # noted once: it may be in flight
    assert asyncio.run(consumer.recover_stranded()) == [stuck]
    assert sought == [(stuck, 1200)]


def test_a_partition_that_moves_on_is_left_alone(consumer: Any) -> None:
    tp = TP(TOPIC, 1)
    client, sought = stranded_consumer(consumer, {tp: 1600})
    consumer._read_offset[tp] = 1200
    asyncio.run(consumer.recover_stranded())
    client.positions[tp] = 1700  # the records were handed on in between, and more fetched
    consumer._read_offset[tp] = 1650
    assert asyncio.run(consumer.recover_stranded()) == []  # a new gap: noted, not acted on
    assert sought == []


class _Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.value = b"{}"


def fetching_consumer(
    consumer: Any, fetched: dict[TP, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[TP, int]]:
    """The consumer's fetches return ``fetched``; returns the seeks it makes."""

    async def wait_next_records(self: Any, timeout: float) -> tuple[Any, Any]:
        return dict(fetched), set(fetched)

    monkeypatch.setattr(faust_aiokafka.Consumer, "_wait_next_records", wait_next_records)
    return recorded_seeks(consumer)


def test_stream_records_fetched_during_a_rebalance_are_read_again_after_it(
    consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = consumer.app
    table = app.Table("detectors")
    changelog = TP(table.changelog_topic.get_topic_name(), 0)
    stream = TP(TOPIC, 1)
    fetched = {stream: [_Record(1200), _Record(1201)], changelog: [_Record(0)]}
    sought = fetching_consumer(consumer, fetched, monkeypatch)
    app.rebalancing = True  # Faust's recovery resumes stream partitions before its end
    records, _ = asyncio.run(consumer._wait_next_records(1.0))
    assert list(records) == [changelog]  # table recovery reads its changelog meanwhile
    assert sought == [(stream, 1200)]

    app.rebalancing = False
    app.flow_control.resume()  # as at the end of every rebalance
    records, _ = asyncio.run(consumer._wait_next_records(1.0))
    assert [r.offset for chunk in records[stream] for r in chunk.records] == [1200, 1201]
    assert sought == [(stream, 1200)]


async def test_the_worker_producer_is_idempotent_with_acks_all() -> None:
    from streams.app import create_app
    from streams.config import Settings

    client = create_app(Settings()).producer._new_producer()
    try:
        assert client._txn_manager is not None, "idempotence on: a retried send is written once"
        assert client._sender._acks == -1, "acks=all"
    finally:
        await client.stop()
