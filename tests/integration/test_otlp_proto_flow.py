"""OTLP protobuf through the real broker: the Collector's ``otlp_proto`` messages (its Kafka
exporter's default encoding) are decoded by a running worker, a corrupt one is dead-lettered.

The messages are ``tests/ingest/fixtures/collector_otlp_proto_*.bin``, written by the
Collector's own protobuf marshalers (see ``tests/ingest/fixtures/README.md``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingest.formats.cumulative import CumulativeState
from ingest.logs import LogIngestConfig, decode_log_message
from ingest.metrics import MetricIngestConfig, decode_metric_message
from streams.deadletter import parse_headers
from tests.kafka_harness import BrokerHandle, WorkerProcess, consume_all, produce, unique_prefix
from tests.producers.conftest import create_topics, deadlettered, wait_for_accepted

pytestmark = pytest.mark.kafka

FIXTURES = Path(__file__).resolve().parents[1] / "ingest" / "fixtures"
MAX_BYTES = 1 << 20


def test_worker_decodes_otlp_proto_and_dead_letters_a_corrupt_one(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    t0, t1, logs = (
        (FIXTURES / f"collector_otlp_proto_{name}.bin").read_bytes()
        for name in ("metrics_t0", "metrics_t1", "logs")
    )
    state = CumulativeState()
    expected_metrics = sum(
        len(
            decode_metric_message(
                m, config=MetricIngestConfig(), max_bytes=MAX_BYTES, state=state
            ).events
        )
        for m in (t0, t1)
    )
    expected_logs = len(
        decode_log_message(logs, config=LogIngestConfig(), max_bytes=MAX_BYTES).events
    )
    assert expected_metrics > 10 and expected_logs == 2

    worker = WorkerProcess(kafka.bootstrap, unique_prefix("otlp-proto"), tmp_path)
    topics = worker.topics
    create_topics(kafka.bootstrap, topics["metrics"], topics["logs"])
    worker.start()
    try:
        # one key: both exports on one partition, in order, so the counters become rates
        asyncio.run(produce(kafka.bootstrap, topics["metrics"], [t0, t1, t0[:-7]], key=b"c"))
        asyncio.run(produce(kafka.bootstrap, topics["logs"], [logs, logs[:-4]], key=b"p"))
        assert wait_for_accepted(worker, topics["metrics"], expected_metrics, 60) == (
            expected_metrics
        )
        assert wait_for_accepted(worker, topics["logs"], expected_logs, 20) == expected_logs
        letters = asyncio.run(consume_all(kafka.bootstrap, topics["deadletter"], expect=2))
        assert deadlettered(worker, topics["metrics"]) == {"invalid_value": 1.0}
        assert deadlettered(worker, topics["logs"]) == {"invalid_value": 1.0}
    finally:
        worker.stop()
    details = sorted(parse_headers(letter.headers)["detail"] for letter in letters)
    assert details == [
        "otlp_proto: cannot parse as an ExportLogsServiceRequest: Wire format was corrupt",
        "otlp_proto: cannot parse as an ExportMetricsServiceRequest: Wire format was corrupt",
    ]
    # the dead letter keeps the original bytes for a replay
    assert sorted(len(letter.value) for letter in letters) == sorted([len(t0) - 7, len(logs) - 4])
