"""The console's Kafka side: read the service's topics into the view, publish commands.

The consumer joins no group: every console reads every partition of ``aiops.incidents``,
``aiops.actions``, ``aiops.anomalies``, ``aiops.series`` and ``aiops.control`` from the
beginning, so any number of consoles show the same thing and a restarted one rebuilds its
view. It is ready once it has read up to the end offsets it found at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from console.commands import Command
from console.view import ConsoleView, ViewError
from streams.config import Settings
from streams.kafka_clients import client_options
from streams.topics import ensure_topics

log = logging.getLogger(__name__)


class KafkaFeed:
    """Feeds a :class:`ConsoleView` from the topics and sends commands to the control topic."""

    def __init__(self, settings: Settings, view: ConsoleView) -> None:
        self.settings = settings
        self.view = view
        t = settings.topics
        self._topics = {t.incidents: "incidents", t.actions: "actions", t.anomalies: "anomalies"}
        self._topics[t.control] = "control"
        self._topics[t.series] = "series"
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._ends: dict[TopicPartition, int] = {}
        self._ready = False
        self.records = 0
        self.skipped = 0

    @property
    def ready(self) -> bool:
        """True once every partition was read up to its end offset at start-up."""
        return self._ready

    async def start(self) -> None:
        """Connect, assign every partition from its beginning, note where they end."""
        await ensure_topics(self.settings, list(self._topics))
        options = client_options(self.settings.kafka)
        consumer = AIOKafkaConsumer(
            **options,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=16 * 1_048_576,
        )
        await consumer.start()
        self._consumer = consumer
        admin = AIOKafkaAdminClient(**options)
        await admin.start()
        try:
            found = await _partitions(admin, list(self._topics))
        finally:
            await admin.close()
        partitions = [TopicPartition(t, p) for t, ps in found.items() for p in sorted(ps)]
        consumer.assign(partitions)
        if partitions:
            await consumer.seek_to_beginning(*partitions)
            self._ends = {tp: off for tp, off in (await consumer.end_offsets(partitions)).items()}
        self._producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, linger_ms=0
        )
        await self._producer.start()

    async def stop(self) -> None:
        """Close both clients."""
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def run(self) -> None:
        """Read until cancelled."""
        assert self._consumer is not None, "start() first"
        while True:
            batch = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                kind = self._topics[tp.topic]
                for record in records:
                    self._apply(kind, record.key, record.value, record.timestamp / 1000.0)
            if not self._ready:
                positions = [await self._position(tp) for tp in self._ends]
                self._ready = all(
                    p >= end for p, end in zip(positions, self._ends.values(), strict=True)
                )
                if self._ready:
                    log.info("console view built: %d incidents", len(self.view))

    async def _position(self, tp: TopicPartition) -> int:
        assert self._consumer is not None
        return int(await self._consumer.position(tp))

    def _apply(self, kind: str, key: bytes | None, value: bytes | None, at: float) -> None:
        self.records += 1
        try:
            if kind == "incidents":
                self.view.apply_incident(value, key)
            elif kind == "series":
                self.view.apply_series(value, key)
            elif value is None:
                return
            elif kind == "actions":
                self.view.apply_action(value)
            elif kind == "anomalies":
                self.view.apply_anomaly(value)
            else:
                self.view.apply_control(value, at=at)
        except ViewError as exc:
            self.skipped += 1
            log.warning("console: %s record skipped: %s", kind, exc)

    async def send(self, command: Command) -> None:
        """Publish a command and return once the broker has it (acks=all)."""
        assert self._producer is not None, "start() first"
        await self._producer.send_and_wait(
            self.settings.topics.control,
            orjson.dumps(command.body),
            key=command.key.encode(),
        )


async def _partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, set[int]]:
    """Each topic's partitions, waiting a little for topics just created; a topic that does
    not appear is left out (and logged)."""
    found: dict[str, set[int]] = {}
    deadline = time.monotonic() + 10.0
    while True:
        for item in await admin.describe_topics([t for t in topics if t not in found]):
            parts = {int(p["partition"]) for p in item.get("partitions", [])}
            if item.get("error_code", 0) == 0 and parts:
                found[str(item["topic"])] = parts
        missing = [t for t in topics if t not in found]
        if not missing:
            return found
        if time.monotonic() > deadline:
            log.warning("console: topics not found: %s", ", ".join(missing))
            return found
        await asyncio.sleep(0.2)
