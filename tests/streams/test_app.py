"""Wiring of the Faust app that needs no broker."""

from __future__ import annotations

from collections import Counter

from aiokafka.partitioner import DefaultPartitioner

from streams.app import KeyPartitionedTable, create_app
from streams.config import Settings


def test_key_partitioned_writes_go_where_the_producer_would_send_them() -> None:
    # without asking the producer's metadata, which may not list the topic yet
    app = create_app(Settings())
    table = app.tables["slack-messages"]
    mapping = KeyPartitionedTable(table)
    topic = table.changelog_topic
    every = list(range(table.partitions))
    used: Counter[int] = Counter()
    for i in range(200):
        key = f"inc-{i:012x}"
        wire_key, _ = topic.prepare_key(key, table.key_serializer, None, {})
        assert mapping.partition(key) == DefaultPartitioner()(wire_key, every, every)
        used[mapping.partition(key)] += 1
    assert set(used) == set(every)
