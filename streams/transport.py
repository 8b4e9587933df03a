"""The Kafka transport of the worker: Faust's aiokafka driver, with these changes.

- **A short fetch wait.** Faust's driver hard-codes ``fetch_max_wait_ms=1500`` for the
  worker's consumer: a partition with little traffic is then read in 1.5 s steps, which is
  most of the latency from a sample to its anomaly. Here it is ``worker.fetch_max_wait_ms``.
- **No idle worker when topics are not yet in the broker's metadata.** Faust's assignor
  skips the subscribed topics that the group leader's metadata does not list ("Ignoring
  missing topic"), and aiokafka reconsiders the assignment only when its metadata changes,
  which it refreshes every five minutes unless something forces it. A broker that has just
  started can answer metadata requests seconds before it lists topics that were created on
  it, so a worker started with it got no partition at all for five minutes. After such an
  assignment, the consumer refreshes its metadata until every subscribed topic is listed;
  the group then rebalances (:func:`refresh_until_known`).
- **Record batches for the input topics.** Faust hands every record to its streams one by
  one, at a cost of about 200 µs of CPU per record (a task per delivery, stream and ack
  bookkeeping): ten times the work of detecting on one sample. For the topics named in
  ``app.aiops_batch_topics`` (the telemetry inputs), the records of one fetch and one
  partition travel as one :class:`BatchMessage` instead, in chunks of at most
  :data:`BATCH_MAX_RECORDS` records or :data:`BATCH_MAX_BYTES` bytes. The agent unpacks
  the records; acknowledging the batch acknowledges every offset it covers, so offsets
  are committed exactly as if each record had been acknowledged.
- **No records lost at the end of a rebalance.** Records of stream partitions fetched
  while a rebalance is under way are not handed on; the partition is sought back to read
  them again once it is over (:meth:`Consumer._put_back`).
- **Records that the client fetched but never handed on are read again**
  (:meth:`Consumer.recover_stranded`), should anything else strand them.
- **An idempotent producer.** Faust asks the broker for ``acks=all`` but turns idempotence
  on only inside transactions; here it is always on (:class:`Producer`), so a send that the
  client retries after a broker fault is written once.

The URL scheme is ``aiops://``, registered as a Faust transport entry point.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerMessage, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.records import InputRecord

log = logging.getLogger(__name__)

DEFAULT_FETCH_MAX_WAIT_MS = 100
BATCH_MAX_RECORDS = 500
BATCH_MAX_BYTES = 1_048_576
UNKNOWN_TOPIC_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class _RecordChunk:
    """Consecutive records of one partition, as fetched, before becoming a message."""

    records: Sequence[Any]


class BatchMessage(ConsumerMessage):
    """Consecutive records of one partition delivered as one message.

    ``offset`` is the last record's offset; ``first_offset`` the first offset the batch
    accounts for (earlier than its first record when the fetch skipped offsets that hold
    no record for us, such as transaction markers).
    """

    __slots__ = ("first_offset", "records")

    def __init__(self, *args: Any, first_offset: int, records: list[InputRecord], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.first_offset = first_offset
        self.records = records


def batch_records(message: Message) -> list[InputRecord]:
    """The records a message carries: its batch, or itself."""
    if isinstance(message, BatchMessage):
        return message.records
    return [InputRecord(message.offset, message.key, message.value, message.timestamp)]


def chunk_records(records: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """Split a partition's fetched records into chunks of at most :data:`BATCH_MAX_RECORDS`
    records and :data:`BATCH_MAX_BYTES` bytes (a larger record travels alone), in order.

    >>> class R:
    ...     def __init__(self, n):
    ...         self.value = b"x" * n
    >>> [len(c) for c in chunk_records([R(10)] * 1200)]
    [500, 500, 200]
    >>> [len(c) for c in chunk_records([R(600_000)] * 3)]
    [1, 1, 1]
    """
    chunk: list[Any] = []
    size = 0
    for record in records:
        n = len(record.value or b"")
        if chunk and (len(chunk) >= BATCH_MAX_RECORDS or size + n > BATCH_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += n
    if chunk:
        yield chunk


def unknown_topics(consumer: Any) -> set[str]:
    """The subscribed topics of which an aiokafka consumer's metadata lists no partition."""
    return {topic for topic in consumer.subscription() if not consumer.partitions_for_topic(topic)}


async def refresh_until_known(consumer: Any) -> None:
    """Refresh an aiokafka consumer's metadata until it lists every subscribed topic.

    The group leader's coordinator compares each metadata update with the partition counts
    it assigned from, and asks the group to rebalance when they differ: the refresh is all
    it takes for the missing topics to be assigned.
    """
    missing = unknown_topics(consumer)
    if not missing:
        return
    log.warning(
        "partitions were assigned while the broker's metadata did not list %s yet; "
        "refreshing it until it does, then the group rebalances",
        ", ".join(sorted(missing)),
    )
    attempt = 0
    while missing:
        await consumer._client.force_metadata_update()
        missing = unknown_topics(consumer)
        if missing:
            await asyncio.sleep(UNKNOWN_TOPIC_RETRY_S[min(attempt, len(UNKNOWN_TOPIC_RETRY_S) - 1)])
            attempt += 1
    log.info("the broker's metadata lists every subscribed topic")


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Consumer thread whose worker consumer waits at most ``fetch_max_wait_ms``, and
    that refreshes its metadata after an assignment made without some of its topics."""

    _metadata_refresh: asyncio.Task[None] | None = None

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "aiops_fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        consumer._fetch_max_wait_ms = int(wait)  # read when the consumer starts
        return consumer

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        # Runs on the consumer's own loop, before Faust takes the assignment over (which can
        # take long: table recovery), so the refresh starts at once.
        refresh = self._metadata_refresh
        consumer = self._ensure_consumer()
        if (refresh is None or refresh.done()) and unknown_topics(consumer):
            self._metadata_refresh = asyncio.ensure_future(refresh_until_known(consumer))
        await super().on_partitions_assigned(assigned, generation_id)

    async def on_thread_stop(self) -> None:
        if self._metadata_refresh is not None:
            self._metadata_refresh.cancel()
        await super().on_thread_stop()


def stranded_offsets(
    positions: dict[TP, int], read: dict[TP, int | None], committed: dict[TP, int | None]
) -> dict[TP, int]:
    """Partitions whose client position is past what was handed on, and where to go back to.

    ``read`` is Faust's read offset: the offset last handed to the streams, the offset a
    seek went to (nothing handed on yet), or, while a batch is being handed on, one less
    than its last offset. A position more than two past it means records the client
    returned that never reached a stream. They are read again from the committed offset
    (everything before it was processed), or from the read offset.

    >>> stranded_offsets(
    ...     {"a": 1600, "b": 800, "c": 5}, {"a": 1200, "b": 799, "c": None}, {"a": 1200}
    ... )
    {'a': 1200}
    """
    out = {}
    for tp, position in positions.items():
        last = read.get(tp)
        if last is not None and position > last + 2:
            done = committed.get(tp)
            out[tp] = done if done is not None and done <= last + 1 else last
    return out


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`ConsumerThread` and record batches."""

    _stranded: dict[TP, tuple[int, int, int]] | None = None

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def recover_stranded(self) -> list[TP]:
        """Read again the records of input partitions that the client fetched but that
        never reached their stream; returns the partitions sent back.

        The known way for this to happen, records fetched at the end of a rebalance, is
        prevented by :meth:`_put_back`; this is the guard for any other. A stranded
        partition would stay silent until the next restart, without an error. Called
        periodically, this notices a position that stays past the last offset handed on
        over two calls in the same generation, and seeks back to it.
        """
        batched: frozenset[str] = getattr(self.app, "aiops_batch_topics", frozenset())
        if not batched or not self.flow_active:
            self._stranded = None
            return []
        client = self._thread._ensure_consumer()
        subscription = client._subscription.subscription
        if subscription is None or subscription.assignment is None:
            return []
        positions = {}
        for tp in client.assignment():
            if tp.topic not in batched:
                continue
            state = subscription.assignment.state_value(tp)
            if state is not None and state.has_valid_position:
                positions[tp] = state.position
        generation = self.app.consumer_generation_id
        found = stranded_offsets(positions, dict(self._read_offset), dict(self._committed_offset))
        seen = {tp: (generation, positions[tp], offset) for tp, offset in found.items()}
        before, self._stranded = self._stranded or {}, seen
        again = [tp for tp, mark in seen.items() if before.get(tp) == mark]
        for tp in again:
            _, position, offset = seen[tp]
            log.warning(
                "%s: the client is at offset %d but offsets from %d never reached the "
                "stream; reading them again",
                tp,
                position,
                offset,
            )
            await self.seek(tp, offset)
            del self._stranded[tp]
        return again

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        if records and (self.app.rebalancing or not self.app.flow_control.is_active()):
            records = await self._put_back(records)
        batched: frozenset[str] = getattr(self.app, "aiops_batch_topics", frozenset())
        if records and batched:
            records = {
                tp: (
                    [_RecordChunk(chunk) for chunk in chunk_records(recs)]
                    if tp.topic in batched and recs
                    else recs
                )
                for tp, recs in records.items()
            }
        return records, active

    async def _put_back(self, records: Mapping[TP, Any]) -> dict[TP, Any]:
        """Of a fetch made during a rebalance, keep the changelog records (table recovery
        reads them) and seek the other partitions back to their first record.

        Faust's recovery resumes the stream partitions and seeks them to their committed
        offsets while the fetcher runs, and only then resumes the app's flow, which empties
        every stream's queue. Records fetched in between were delivered, counted as read,
        then emptied out of the queue: nothing read them again until the next restart. A
        stream partition is now read only once the rebalance is over.
        """
        changelogs = self.app.tables.changelog_topics
        kept = {}
        for tp, recs in records.items():
            if tp.topic in changelogs or not recs:
                kept[tp] = recs
                continue
            log.debug("%s: fetched during a rebalance; read again from %d", tp, recs[0].offset)
            try:
                await self.seek(tp, recs[0].offset)
            except Exception as exc:  # revoked meanwhile: its new owner reads it
                log.debug("%s: left to its new owner (%s)", tp, exc)
        return kept

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        if not isinstance(record, _RecordChunk):
            return super()._to_message(tp, record)
        recs = record.records
        first, last = recs[0], recs[-1]
        read = self._read_offset[tp]
        start = min(first.offset, read + 1) if read is not None else first.offset
        # Faust's fetch loop registers a "gap" when an offset skips past the last one it
        # read; the batch accounts for those offsets itself (see ``ack``).
        self._read_offset[tp] = last.offset - 1
        message = BatchMessage(
            last.topic,
            last.partition,
            last.offset,
            last.timestamp / 1000.0 if last.timestamp is not None else None,
            last.timestamp_type,
            [],
            None,
            b"",
            None,
            0,
            sum(r.serialized_value_size for r in recs),
            tp,
            generation_id=self.app.consumer_generation_id,
            first_offset=start,
            records=[
                InputRecord(
                    r.offset,
                    r.key,
                    r.value,
                    r.timestamp / 1000.0 if r.timestamp is not None else None,
                )
                for r in recs
            ],
        )
        return message

    def ack(self, message: Message) -> bool:
        if not isinstance(message, BatchMessage):
            return bool(super().ack(message))
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            tp = message.tp
            try:
                self._unacked_messages.discard(message)
                if not self.app.topics.acks_enabled_for(message.topic):
                    return False
                if message.generation_id != self.app.consumer_generation_id:
                    # Fetched before a rebalance: Faust skips (and acks) such messages
                    # unprocessed, and the partition is read again from its committed
                    # offset. Committing past them would lose them after a crash.
                    return False
                committed = self._committed_offset[tp]
                index = self._acked_index[tp]
                acked = self._acked[tp]
                added = 0
                for offset in range(message.first_offset, message.offset + 1):
                    if (committed is None or offset >= committed) and offset not in index:
                        index.add(offset)
                        acked.append(offset)
                        added += 1
                self._n_acked += added
                return added > 0
            finally:
                notify(self._waiting_for_ack)


class Producer(faust_aiokafka.Producer):
    """Faust's producer with ``acks=all`` and idempotence always on."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer` and :class:`Producer`."""

    Consumer: ClassVar[Any] = Consumer
    Producer: ClassVar[Any] = Producer
