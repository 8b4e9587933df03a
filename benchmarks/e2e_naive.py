"""The naive pipeline the worker is compared with: ``python -m benchmarks.e2e_naive``.

A plain aiokafka consumer loop: decode each message with orjson (an event or an array of
events), build the :class:`~detectors.events.MetricEvent`, call the same detector as the
worker (``MetricMonitor().process``) and publish any anomaly with an aiokafka producer. No
validation beyond a missing key, no dead letters, no checkpoints, no correlation.

It drains ``--topic`` until ``--expect`` events were processed and prints one JSON line:
events, the seconds and CPU seconds from the arrival of its first fetched batch to the end
of its last, and its resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.e2e_kafka import ProcessProbe
from detectors.events import MetricEvent, freeze_labels
from detectors.metric import MetricMonitor


def to_event(raw: dict[str, object]) -> MetricEvent:
    """The event of one decoded JSON object (trusting its types, as a naive loop does)."""
    labels = raw.get("labels")
    return MetricEvent(
        float(raw["timestamp"]),  # type: ignore[arg-type]
        str(raw["service"]),
        str(raw["metric"]),
        float(raw["value"]),  # type: ignore[arg-type]
        raw.get("host"),  # type: ignore[arg-type]
        freeze_labels(labels) if isinstance(labels, dict) else (),
    )


async def run(
    bootstrap: str, topic: str, group: str, anomalies: str, expect: int
) -> dict[str, float]:
    """Drain ``topic`` through the detector; return the figures."""
    probe = ProcessProbe(os.getpid())
    monitor = MetricMonitor()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1_048_576,
        fetch_max_bytes=16 * 1_048_576,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    await consumer.start()
    rss_start = probe.rss_bytes()
    first: tuple[float, float] | None = None
    count = found = 0
    last_at = last_cpu = 0.0
    deadline = time.monotonic() + 600
    try:
        while count < expect and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if batches and first is None:
                first = (time.time(), probe.cpu_s())
            for records in batches.values():
                for record in records:
                    decoded = orjson.loads(record.value or b"null")
                    for raw in decoded if isinstance(decoded, list) else [decoded]:
                        anomaly = monitor.process(to_event(raw))
                        count += 1
                        if anomaly is not None:
                            found += 1
                            await producer.send(
                                anomalies,
                                orjson.dumps(anomaly.to_dict()),
                                key=anomaly.service.encode(),
                            )
            if batches:
                last_at, last_cpu = time.time(), probe.cpu_s()
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    start_at, start_cpu = first or (last_at, last_cpu)
    return {
        "events": count,
        "window_events": count,
        "window_s": last_at - start_at,
        "window_cpu_s": last_cpu - start_cpu,
        "anomalies": found,
        "series": monitor.stats.series,
        "rss_start": rss_start,
        "rss_end": probe.rss_bytes(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e_naive", description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--anomalies", required=True)
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.bootstrap, args.topic, args.group, args.anomalies, args.expect))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
