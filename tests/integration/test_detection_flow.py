"""Detection through the real broker: metric anomalies, log anomalies and forecasts come out
of a running worker as records on the anomalies topic."""

from __future__ import annotations

import asyncio
import math
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.kafka_harness import (
    BrokerHandle,
    WorkerProcess,
    consume_all,
    produce,
    unique_prefix,
    wait_until,
)

pytestmark = pytest.mark.kafka

T0 = 1_790_000_000.0
STEP = 60.0
SERVICES = ["api", "db", "cache", "queue"]


def metric_batches(
    start: int, end: int, spikes: dict[tuple[str, int], float]
) -> dict[str, list[bytes]]:
    """One message per step and service, by service: three noisy, seasonal series each."""
    rng = random.Random(start)
    out: dict[str, list[bytes]] = {service: [] for service in SERVICES}
    for step in range(start, end):
        ts = T0 + step * STEP
        for service in SERVICES:
            events = []
            for metric, base in (("latency_ms", 120.0), ("cpu", 0.4), ("rps", 300.0)):
                value = (
                    base
                    * (1 + 0.1 * math.sin(2 * math.pi * step / 144))
                    * (1 + 0.03 * rng.gauss(0, 1))
                )
                value *= spikes.get((f"{service}/{metric}", step), 1.0)
                events.append(
                    {"timestamp": ts, "service": service, "metric": metric, "value": value}
                )
            out[service].append(orjson.dumps(events))
    return out


def produce_by_service(bootstrap: str, topic: str, batches: dict[str, list[bytes]]) -> None:
    """Each service's messages keyed by the service, as collectors should send them (one
    partition per service, so that a series' points arrive in order)."""
    for service, values in batches.items():
        asyncio.run(produce(bootstrap, topic, values, key=service.encode()))


def anomalies_of(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    records = asyncio.run(consume_all(bootstrap, topic, idle_s=5, timeout_s=60))
    return [orjson.loads(r.value) for r in records]


def test_metric_anomalies_and_baselines_that_survive_a_restart(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        kafka.bootstrap,
        unique_prefix("detect"),
        tmp_path,
        extra_env={"AIOPS_DETECTION__CHECKPOINT_INTERVAL_S": "1"},
    ).start()
    topic = worker.topics["metrics"]
    try:
        # 600 normal steps (10 h): the detectors warm up and stay quiet
        produce_by_service(kafka.bootstrap, topic, metric_batches(0, 600, {}))
        accepted = 600 * len(SERVICES) * 3
        assert wait_until(
            lambda: worker.metric("aiops_events_accepted_total", topic=topic) >= accepted
        ), worker.log_text()[-3000:]
        quiet = anomalies_of(kafka.bootstrap, worker.topics["anomalies"])
        assert len(quiet) <= 2, [(a["service"], a["signal"]) for a in quiet]

        # Restart: the new process resumes the learned baselines from the changelog.
        time.sleep(3)
        worker.stop()
        worker.start()
        injected = {("api/latency_ms", 700): 8.0, ("db/cpu", 760): 0.1}
        produce_by_service(kafka.bootstrap, topic, metric_batches(600, 800, injected))
        assert wait_until(
            lambda: (
                worker.metric("aiops_events_accepted_total", topic=topic) >= 200 * len(SERVICES) * 3
            )
        ), worker.log_text()[-3000:]
        assert worker.metric("aiops_series_restored_total") == len(SERVICES) * 3
        records = anomalies_of(kafka.bootstrap, worker.topics["anomalies"])[len(quiet) :]
        onsets = [a for a in records if a["details"].get("phase") == "onset"]
        found = {
            (f"{a['service']}/{a['signal']}", round((a["timestamp"] - T0) / STEP)): a
            for a in onsets
        }
        assert ("api/latency_ms", 700) in found, sorted(found)
        assert ("db/cpu", 760) in found, sorted(found)
        assert found[("api/latency_ms", 700)]["direction"] == "spike"
        assert found[("db/cpu", 760)]["direction"] == "dip"
        spike = found[("api/latency_ms", 700)]
        assert spike["expected"] is not None and spike["value"] > spike["band"][1]
        # no burst of alerts after the restart: only the injected episodes
        assert len(onsets) <= len(injected) + 2, sorted(found)
        for record in records:
            assert record["kind"] == "metric" and 0 <= record["score"] <= 1
    finally:
        worker.stop()


def log_lines(start: int, end: int) -> list[bytes]:
    rng = random.Random(start)
    out = []
    for step in range(start, end):
        ts = T0 + step * 10
        for service in ("api", "db"):
            out.append(
                orjson.dumps(
                    {
                        "timestamp": ts,
                        "service": service,
                        "level": "info",
                        "message": (
                            f"request {rng.randint(1, 10**6)} served in {rng.randint(2, 90)} ms"
                        ),
                    }
                )
            )
    return out


def test_log_anomalies_new_template_and_error_burst(kafka: BrokerHandle, tmp_path: Path) -> None:
    worker = WorkerProcess(kafka.bootstrap, unique_prefix("logs"), tmp_path).start()
    topic = worker.topics["logs"]
    try:
        normal = log_lines(0, 720)  # two hours of routine lines
        failure = [
            orjson.dumps(
                {
                    "timestamp": T0 + 7200 + i * 0.5,
                    "service": "db",
                    "level": "error",
                    "message": f"could not write block {1000 + i} of relation base/16384: "
                    "No space left on device",
                }
            )
            for i in range(120)
        ]
        malformed = [
            b'{"timestamp": 1790000000, "service": "db"',
            b"\x00\x01\x02\xff",
            orjson.dumps({"timestamp": T0, "message": "no service"}),
        ]
        after = log_lines(780, 840)
        sent = asyncio.run(
            produce(kafka.bootstrap, topic, [*normal, *failure, *malformed, *after], key=b"k")
        )
        assert wait_until(
            lambda: worker.metric("aiops_messages_consumed_total", topic=topic) >= sent
        )
        records = anomalies_of(kafka.bootstrap, worker.topics["anomalies"])
        db = [a for a in records if a["service"] == "db"]
        kinds = {a["direction"] for a in db}
        assert "new_template" in kinds, db
        assert kinds & {"burst", "rate"}, db
        novel = next(a for a in db if a["direction"] == "new_template")
        assert "No space left on device" in novel["details"]["template"]
        assert novel["details"]["examples"] and novel["details"]["level"] == "error"
        early = [a for a in records if a["timestamp"] < T0 + 7200 - 60]  # one bucket of slack
        assert not early, "quiet before the failure"
        letters = asyncio.run(
            consume_all(kafka.bootstrap, worker.topics["deadletter"], expect=len(malformed))
        )
        assert len(letters) == len(malformed)
    finally:
        worker.stop()


def test_a_leak_is_predicted_and_a_flat_series_is_not(kafka: BrokerHandle, tmp_path: Path) -> None:
    limit = 90.0
    rule = [
        {
            "name": "memory-full",
            "metric": "memory_used_pct",
            "limit": {"op": ">=", "value": limit},
            "horizon_seconds": 4 * 3600,
        }
    ]
    worker = WorkerProcess(
        kafka.bootstrap,
        unique_prefix("predict"),
        tmp_path,
        extra_env={"AIOPS_DETECTION__FORECAST__RULES": orjson.dumps(rule).decode()},
    ).start()
    try:
        rng = random.Random(5)
        slope = 10.0 / 3600  # +10 points per hour: from 40 % it crosses 90 % after 5 h
        step = 60.0
        crossing = T0 + (limit - 40.0) / slope
        messages = []
        for i in range(int(4.5 * 3600 / step)):  # stop 30 minutes before the crossing
            ts = T0 + i * step
            messages.append(
                orjson.dumps(
                    [
                        {
                            "timestamp": ts,
                            "service": "leaky",
                            "metric": "memory_used_pct",
                            "value": 40.0 + slope * (ts - T0) + rng.gauss(0, 0.8),
                        },
                        {
                            "timestamp": ts,
                            "service": "steady",
                            "metric": "memory_used_pct",
                            "value": 55.0 + rng.gauss(0, 0.8),
                        },
                    ]
                )
            )
        asyncio.run(produce(kafka.bootstrap, worker.topics["metrics"], messages))
        records = anomalies_of(kafka.bootstrap, worker.topics["anomalies"])
        predicted = [a for a in records if a["kind"] == "predicted"]
        assert predicted and {a["service"] for a in predicted} == {"leaky"}, predicted
        latest = predicted[-1]["details"]
        left = crossing - latest["emitted_at"]  # the truth, seen from the prediction
        assert abs(latest["crossing_time"] - crossing) <= 0.1 * left, (latest, crossing)
        # correlation opens an incident marked as predicted
        snapshots = asyncio.run(
            consume_all(kafka.bootstrap, worker.topics["incidents"], idle_s=5, timeout_s=60)
        )
        incidents = [orjson.loads(r.value) for r in snapshots]
        assert any(i["predicted"] and "leaky" in i["services"] for i in incidents), incidents
    finally:
        worker.stop()
