"""kcat: the README's one-liners, an Influx line and a Graphite line piped into ``kcat -P``.

The JSON contract lines are the README's "Sending telemetry" commands, the Graphite line
the one of docs/ingest.md ("Any carbon client works through kcat"), the Influx line a
Telegraf ``cpu`` metric as its ``influx`` serializer writes it; only the broker and
topic names differ.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from ingest.logs import LogIngestConfig, decode_log_message
from ingest.metrics import MetricIngestConfig, decode_metric_message
from tests.kafka_harness import BrokerHandle, WorkerProcess, unique_prefix
from tests.producers.conftest import (
    create_topics,
    deadlettered,
    raw_records,
    require_binary,
    wait_for_accepted,
)

pytestmark = [pytest.mark.kafka, pytest.mark.producers]

MAX_BYTES = 64 * 1024
README = Path(__file__).resolve().parents[2] / "README.md"
METRIC = (
    '{"timestamp": 1764151200, "service": "checkout", "metric": "latency_p99_ms", "value": 182.5}'
)
LOG = (
    '{"timestamp": "2026-11-26T10:00:01Z", "service": "payments", "level": "error", '
    '"message": "connection refused"}'
)


def _kcat(kcat: str, bootstrap: str, topic: str, line: str) -> None:
    # What `echo '<line>' | kcat -P -b <broker> -t <topic>` does: one message per line.
    subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic],
        input=(line + "\n").encode(),
        check=True,
        timeout=20,
    )


def test_the_readme_one_liners_are_the_ones_tested() -> None:
    readme = README.read_text()
    assert f"echo '{METRIC}'" in readme and f"echo '{LOG}'" in readme


def test_worker_accepts_what_kcat_sends(kafka: BrokerHandle, tmp_path: Path) -> None:
    kcat = require_binary("kcat", "kcat")
    prefix = unique_prefix("kcat")
    metrics, logs = f"{prefix}.metrics", f"{prefix}.logs"
    create_topics(kafka.bootstrap, metrics, logs)
    now = int(time.time())
    influx = f"cpu,cpu=cpu-total,host=web-1,service=checkout usage_idle=97.5 {now}000000000"
    graphite = f"checkout.web-1.http.latency_p99 0.25 {now}"
    for line in (METRIC, influx, graphite):
        _kcat(kcat, kafka.bootstrap, metrics, line)
    _kcat(kcat, kafka.bootstrap, logs, LOG)

    # What came out of kcat, decoded as the worker does.
    metric_values = raw_records(kafka.bootstrap, metrics, expect=3, timeout_s=20)
    assert len(metric_values) == 3  # kcat -P sends one message per line, no newline
    decoded = [
        decode_metric_message(v, config=MetricIngestConfig(), max_bytes=MAX_BYTES)
        for v in metric_values
    ]
    assert all(d.errors == [] for d in decoded)
    events = {e.metric: e for d in decoded for e in d.events}
    assert set(events) == {"latency_p99_ms", "cpu_usage_idle", "checkout.web-1.http.latency_p99"}
    assert (events["latency_p99_ms"].service, events["latency_p99_ms"].value) == (
        "checkout",
        182.5,
    )
    idle = events["cpu_usage_idle"]
    assert (idle.service, idle.host, idle.value, idle.timestamp) == (
        "checkout",
        "web-1",
        97.5,
        float(now),
    )
    assert dict(idle.labels) == {"cpu": "cpu-total"}
    assert (
        events["checkout.web-1.http.latency_p99"].value,
        events[graphite.split()[0]].timestamp,
    ) == (
        0.25,
        float(now),
    )
    log_values = raw_records(kafka.bootstrap, logs, expect=1, timeout_s=20)
    assert len(log_values) == 1
    log = decode_log_message(log_values[0], config=LogIngestConfig(), max_bytes=MAX_BYTES)
    assert [(e.service, e.level, e.message) for e in log.events] == [
        ("payments", "error", "connection refused")
    ]

    worker = WorkerProcess(
        kafka.bootstrap,
        prefix,
        tmp_path,
        extra_env={"AIOPS_WORKER__MAX_MESSAGE_BYTES": str(MAX_BYTES)},
    ).start()
    try:
        assert wait_for_accepted(worker, metrics, 3, timeout=40) == 3
        assert wait_for_accepted(worker, logs, 1, timeout=10) == 1
        assert deadlettered(worker, metrics) == {}
        assert deadlettered(worker, logs) == {}
    finally:
        worker.stop()
