"""Forecast and SLO state in the worker: a restarted pipeline resumes it, idle state goes."""

from __future__ import annotations

from typing import Any

import orjson

from detectors.events import MetricEvent
from streams.config import Settings
from streams.deadletter import DeadLetter
from streams.stages import Pipeline

STEP = 60.0
HOUR = 3600.0
T0 = 1_700_000_000.0
PARTITION = 2
SLO = {
    "name": "availability",
    "objective": 0.999,
    "error_metric": "http_errors_total",
    "total_metric": "http_requests_total",
}


class MemoryCheckpoints:
    """The checkpoint store of a worker, kept in memory: ``store -> key -> (value, partition)``."""

    def __init__(self) -> None:
        self.stores: dict[str, dict[str, tuple[bytes, int]]] = {}
        self.deleted: list[tuple[str, str, int]] = []

    def get(self, store: str, key: str) -> bytes | None:
        item = self.stores.get(store, {}).get(key)
        return item[0] if item else None

    def put(self, store: str, key: str, value: bytes, partition: int) -> None:
        self.stores.setdefault(store, {})[key] = (value, partition)

    def delete(self, store: str, key: str, partition: int) -> None:
        self.stores.get(store, {}).pop(key, None)
        self.deleted.append((store, key, partition))


class RecordingPublisher:
    """Keeps what the pipeline publishes."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []

    async def dead_letter(self, letter: DeadLetter) -> None:
        raise AssertionError(f"unexpected dead letter: {letter.detail}")

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        self.records.append((topic, key, value))

    async def flush(self) -> None:
        return None

    def burn_rate_alerts(self) -> list[dict[str, Any]]:
        found = [orjson.loads(v) for topic, _, v in self.records if topic == "anomalies"]
        return [a for a in found if a["detector"] == "forecast.burn_rate"]


def settings(**forecast: Any) -> Settings:
    return Settings.model_validate({"detection": {"forecast": forecast}})


def pipeline(config: Settings, store: MemoryCheckpoints) -> tuple[Pipeline, RecordingPublisher]:
    publisher = RecordingPublisher()
    return Pipeline(settings=config, publisher=publisher, checkpoints=store), publisher


def traffic(service: str, minutes: range, *, errors_from: float = -1, errors_to: float = -1):
    """Cumulative request and error counters of two hosts, one sample a minute; 3% of the
    requests fail from ``errors_from`` to ``errors_to`` hours."""
    out = []
    errors = 0.0
    for i in minutes:
        t = T0 + i * STEP
        if errors_from * HOUR <= i * STEP < errors_to * HOUR:
            errors += 9.0
        for host in ("a", "b"):
            out.append(MetricEvent(t, service, "http_requests_total", 300.0 * (i + 1), host))
            out.append(MetricEvent(t, service, "http_errors_total", errors, host))
    return out


def by_time(*streams: list[MetricEvent]) -> list[MetricEvent]:
    return sorted((e for s in streams for e in s), key=lambda e: e.timestamp)


async def feed(pipe: Pipeline, events: list[MetricEvent]) -> None:
    for start in range(0, len(events), 200):
        await pipe.on_metrics(events[start : start + 200], PARTITION)


async def test_a_restarted_pipeline_resumes_its_burn_rate_trackers() -> None:
    config = settings(burn_rates=[SLO])
    minutes = range(4 * 60)
    events = by_time(
        traffic("checkout", minutes, errors_from=2, errors_to=3.5), traffic("pay", minutes)
    )
    uninterrupted, published = pipeline(config, MemoryCheckpoints())
    await feed(uninterrupted, events)
    expected = published.burn_rate_alerts()
    assert [a["details"]["phase"] for a in expected] == ["firing", "resolved"]

    store = MemoryCheckpoints()
    cut = len(events) * 11 // 16  # 2.75 h in: the alert is firing
    first, before = pipeline(config, store)
    await feed(first, events[:cut])
    first.flush_checkpoints()  # a clean stop
    assert [a["details"]["phase"] for a in before.burn_rate_alerts()] == ["firing"]
    written = {k: p for k, (_, p) in store.stores["forecast"].items()}
    # a tracker's checkpoint goes to the partition its service's samples come from
    assert written == {"slo|availability|checkout|": PARTITION, "slo|availability|pay|": PARTITION}

    second, after = pipeline(config, store)
    await feed(second, events[cut:])
    assert before.burn_rate_alerts() + after.burn_rate_alerts() == expected
    assert sorted(second.forecasts.state_keys()) == sorted(written)


async def test_tick_deletes_the_checkpoints_of_evicted_forecasts_and_trackers() -> None:
    window = {"long_seconds": 2 * HOUR, "short_seconds": 300, "burn_rate": 14.4, "severity": "page"}
    disk = {"name": "disk", "metric": "disk_used_ratio", "limit": {"value": 0.95}}
    config = settings(
        rules=[disk], burn_rates=[{**SLO, "windows": [window]}], idle_eviction_seconds=HOUR
    )
    store = MemoryCheckpoints()
    pipe, _ = pipeline(config, store)
    gone_by = range(10)  # checkout and the disk of db report for 10 minutes, pay for 3 h
    disk_samples = [MetricEvent(T0 + i * STEP, "db", "disk_used_ratio", 0.5) for i in gone_by]
    await feed(pipe, by_time(traffic("checkout", gone_by), disk_samples))
    await feed(pipe, traffic("pay", range(10, 3 * 60)))
    pipe.flush_checkpoints()
    predictor = "forecast|disk|db|disk_used_ratio"
    checkout, pay = "slo|availability|checkout|", "slo|availability|pay|"
    assert sorted(store.stores["forecast"]) == sorted([predictor, checkout, pay])

    await pipe.tick()  # event time is 3 h: idle for more than 1 h and the 2 h window
    assert sorted(store.deleted) == sorted(
        [("forecast", predictor, PARTITION), ("forecast", checkout, PARTITION)]
    )
    assert list(store.stores["forecast"]) == [pay]
    assert pipe.forecasts.state_keys() == [pay]


async def test_an_alert_still_firing_when_its_tracker_is_evicted_is_resolved() -> None:
    window = {"long_seconds": 2 * HOUR, "short_seconds": 300, "burn_rate": 14.4, "severity": "page"}
    config = settings(burn_rates=[{**SLO, "windows": [window]}], idle_eviction_seconds=HOUR)
    pipe, published = pipeline(config, MemoryCheckpoints())
    # checkout fails from 1 h and stops reporting at 2.5 h, while its alert fires
    checkout = traffic("checkout", range(150), errors_from=1, errors_to=3)
    await feed(pipe, by_time(checkout, traffic("pay", range(150))))
    assert [a["details"]["phase"] for a in published.burn_rate_alerts()] == ["firing"]
    await feed(pipe, traffic("pay", range(150, 5 * 60)))
    await pipe.tick()  # event time is 5 h: checkout idle for longer than its 2 h window

    firing, resolved = published.burn_rate_alerts()
    assert resolved["details"]["phase"] == "resolved" and resolved["service"] == "checkout"
    assert resolved["id"] == firing["id"]
    correlated = [orjson.loads(v) for topic, _, v in published.records if topic == "correlate"]
    assert resolved in correlated  # the incident engine hears of it too
    assert pipe.forecasts.state_keys() == ["slo|availability|pay|"]
