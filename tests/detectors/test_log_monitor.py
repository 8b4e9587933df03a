"""LogMonitor: new templates, rates, bursts, event time, persistence."""

from __future__ import annotations

import pytest

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import LogEvent
from detectors.logs import (
    ERRORS_SIGNAL,
    LogDetectionConfig,
    LogMonitor,
    StateError,
    template_signal,
)

CFG = LogDetectionConfig(warmup_lines=50, bucket_seconds=60, warmup_buckets=5, min_count=5)


def steady(service: str, minutes: int, per_minute: int, start: float = 0.0) -> list[LogEvent]:
    """A service logging the same few templates at a steady pace."""
    out = []
    for m in range(minutes):
        for i in range(per_minute):
            ts = start + m * 60 + i * (60 / per_minute)
            kind = i % 3
            if kind == 0:
                msg = f"GET /api/items/{i} 200 in {i + 3}ms"
            elif kind == 1:
                msg = f"cache hit ratio {i / 100:.2f}"
            else:
                msg = f"worker {i % 4} heartbeat"
            out.append(LogEvent(ts, service, msg, "info", "host-1"))
    return out


def run(monitor: LogMonitor, events: list[LogEvent]) -> list[Anomaly]:
    out: list[Anomaly] = []
    for e in events:
        out.extend(monitor.process(e))
    return out


def test_new_failure_template_after_warmup_is_reported_with_evidence() -> None:
    monitor = LogMonitor(CFG)
    assert run(monitor, steady("cart", 10, 30)) == []
    [a] = monitor.process(
        LogEvent(601.0, "cart", "database connection to 10.0.0.5:5432 failed", "error", "h2")
    )
    assert (a.service, a.kind, a.direction) == ("cart", SignalKind.LOG, Direction.NEW_TEMPLATE)
    assert a.signal.startswith("log:") and 0 < a.score <= 1
    assert a.details["template"] == "database connection to <*> failed"
    assert a.details["examples"] == ["database connection to 10.0.0.5:5432 failed"]
    assert a.details["count"] == 1 and a.details["level"] == "error"
    assert a.host == "h2" and a.timestamp == 601.0
    assert Anomaly.from_dict(a.to_dict()) == a


def test_new_templates_during_warmup_and_benign_ones_are_silent() -> None:
    monitor = LogMonitor(CFG)
    early = monitor.process(LogEvent(0.0, "cart", "startup failed once", "error"))
    assert early == []  # warm-up
    run(monitor, steady("cart", 5, 30, start=1.0))
    assert monitor.process(LogEvent(400.0, "cart", "config reloaded", "info")) == []


def test_error_rate_departure_is_one_episode() -> None:
    monitor = LogMonitor(CFG)
    events = steady("pay", 20, 30)
    # one error line a minute as the baseline
    events += [
        LogEvent(m * 60 + 30.5, "pay", f"charge {m} declined by bank", "error") for m in range(20)
    ]
    # then 40 errors a minute for three minutes
    for m in range(20, 23):
        events += [
            LogEvent(m * 60 + i, "pay", f"charge {i} declined by bank", "error") for i in range(40)
        ]
    events.sort(key=lambda e: e.timestamp)
    anomalies = run(monitor, events)
    anomalies += monitor.tick(23 * 60 + 1)
    errors = [a for a in anomalies if a.signal == ERRORS_SIGNAL]
    assert len(errors) == 1
    [a] = errors
    assert a.direction is Direction.RATE and a.timestamp == 20 * 60
    assert a.details["count"] == 40 and a.details["baseline_rate"] < 0.1
    assert a.value == pytest.approx(40 / 60)
    template = [a for a in anomalies if a.signal != ERRORS_SIGNAL and a.direction is Direction.RATE]
    assert template and template[0].details["template"] == "charge <*> declined by bank"


def test_burst_of_a_new_template() -> None:
    monitor = LogMonitor(CFG)
    run(monitor, steady("api", 10, 30))
    burst = [LogEvent(600 + i, "api", f"retrying upstream call {i}", "warning") for i in range(25)]
    anomalies = run(monitor, burst) + monitor.tick(720.0)
    bursts = [a for a in anomalies if a.direction is Direction.BURST]
    assert [a.details["template"] for a in bursts] == ["retrying upstream call <*>"]
    assert bursts[0].details["count"] == 25 and len(bursts[0].details["examples"]) == 3


def test_steady_traffic_raises_nothing() -> None:
    monitor = LogMonitor(CFG)
    assert run(monitor, steady("api", 60, 30)) == []
    assert monitor.tick(3601.0) == []


def test_buckets_follow_event_time_and_replays_are_identical() -> None:
    events = steady("api", 10, 30)
    events += [LogEvent(600 + i, "api", f"job {i} killed by OOM", "error") for i in range(30)]
    first = run(LogMonitor(CFG), events)
    second = run(LogMonitor(CFG), events)
    assert first and [a.to_dict() for a in first] == [a.to_dict() for a in second]


def test_tick_closes_buckets_without_new_lines() -> None:
    monitor = LogMonitor(CFG)
    run(monitor, steady("api", 10, 30))
    run(monitor, [LogEvent(600 + i, "api", f"disk {i} failure", "error") for i in range(30)])
    assert monitor.tick(630.0) == []  # the bucket is still open
    closed = monitor.tick(660.0)
    assert {a.signal for a in closed} >= {ERRORS_SIGNAL}


def test_services_are_independent() -> None:
    monitor = LogMonitor(CFG)
    run(monitor, steady("a", 10, 30))
    # the same line is new for b, but b is still warming up
    assert monitor.process(LogEvent(600.0, "b", "segfault in worker", "critical")) == []
    assert len(monitor.process(LogEvent(601.0, "a", "segfault in worker", "critical"))) == 1
    assert monitor.stats.services == 2


def test_state_round_trip_gives_identical_anomalies() -> None:
    events = steady("api", 15, 30)
    events += [LogEvent(900 + i, "api", f"upstream {i} timed out", "error") for i in range(30)]
    events += steady("api", 3, 30, start=960.0)
    straight = LogMonitor(CFG)
    expected = run(straight, events)

    cut = 300
    first = LogMonitor(CFG)
    got = run(first, events[:cut])
    states = first.dirty_states()
    assert [s for s, _ in states] == ["api"] and first.dirty_states() == []
    restored = LogMonitor(CFG)
    for service, blob in states:
        restored.restore(service, blob)
    got += run(restored, events[cut:])
    assert [a.to_dict() for a in got] == [a.to_dict() for a in expected]
    assert restored.stats.templates == straight.stats.templates


def test_template_ids_survive_a_restart() -> None:
    monitor = LogMonitor(CFG)
    run(monitor, steady("api", 2, 30))
    verdict, _ = monitor.observe(LogEvent(200.0, "api", "worker 1 heartbeat", "info"))
    [(service, blob)] = monitor.dirty_states()
    again = LogMonitor(CFG)
    again.restore(service, blob)
    verdict2, _ = again.observe(LogEvent(201.0, "api", "worker 2 heartbeat", "info"))
    assert verdict2.template_id == verdict.template_id
    assert template_signal(verdict.template_id) == f"log:{verdict.template_id}"


@pytest.mark.parametrize("blob", [b"", b"not json", b"{}", b'{"v": 1}', b"[1, 2]"])
def test_restore_rejects_bad_state(blob: bytes) -> None:
    with pytest.raises(StateError):
        LogMonitor(CFG).restore("api", blob)


def test_stats_count_lines_templates_and_cap_hits() -> None:
    cfg = CFG.model_copy(update={"miner": CFG.miner.model_copy(update={"max_templates": 2})})
    monitor = LogMonitor(cfg)
    for i, word in enumerate(["alpha", "beta", "gamma", "delta"]):
        monitor.process(LogEvent(float(i), "x", f"{word} happened", "info"))
    s = monitor.stats
    assert (s.services, s.templates, s.template_cap_hits, s.lines) == (1, 2, 2, 4)


def test_verdict_alert_needs_level_and_failure_word() -> None:
    monitor = LogMonitor(CFG)
    v, _ = monitor.observe(LogEvent(0.0, "k", "data TLB error interrupt", "critical"))
    assert v.alert and v.severity == 1.0
    v, _ = monitor.observe(LogEvent(1.0, "k", "parity error corrected", "info"))
    assert not v.alert
    v, _ = monitor.observe(LogEvent(2.0, "k", "node card status changed", "critical"))
    assert not v.alert


def test_missing_level_empty_message_and_nan_time_do_not_raise() -> None:
    monitor = LogMonitor(CFG)
    v, anomalies = monitor.observe(LogEvent(0.0, "k", "", None))
    assert anomalies == [] and v.template == ""
    v, anomalies = monitor.observe(LogEvent(float("nan"), "k", "time unknown", None))
    assert anomalies == [] and v.template == "time unknown"
    assert monitor.tick(float("nan")) == []
    assert monitor.stats.lines == 2


def test_a_recurring_batch_burst_is_reported_once() -> None:
    monitor = LogMonitor(CFG)
    events = steady("etl", 6 * 60, 6)
    for hour in range(1, 6):
        start = hour * 3600.0
        events += [LogEvent(start + i, "etl", f"exported row batch {i}", "info") for i in range(50)]
    events.sort(key=lambda e: e.timestamp)
    anomalies = run(monitor, events) + monitor.tick(6 * 3600 + 60.0)
    batch = [a for a in anomalies if a.details["template"] == "exported row batch <*>"]
    assert len(batch) == 1 and batch[0].timestamp == 3600.0


def test_a_larger_surge_than_ever_seen_is_reported_again() -> None:
    monitor = LogMonitor(CFG)
    events = steady("etl", 3 * 60, 6)
    for hour, size in [(1, 30), (2, 200)]:
        start = hour * 3600.0
        events += [
            LogEvent(start + i * 0.25, "etl", f"exported row batch {i}", "info")
            for i in range(size)
        ]
    events.sort(key=lambda e: e.timestamp)
    anomalies = run(monitor, events) + monitor.tick(3 * 3600 + 60.0)
    batch = [a for a in anomalies if a.details["template"] == "exported row batch <*>"]
    assert [a.timestamp for a in batch] == [3600.0, 7200.0]


def test_a_new_value_of_a_known_event_is_not_news_but_a_new_outcome_is() -> None:
    monitor = LogMonitor(CFG)
    run(monitor, steady("auth", 5, 30))
    assert monitor.process(LogEvent(300.0, "auth", "login failed for alice", "error"))
    # same event, another user: not news
    assert monitor.process(LogEvent(301.0, "auth", "login failed for bob", "error")) == []
    run(monitor, [LogEvent(302.0, "auth", "disk sda ok", "info")])
    # same words, a failure outcome: news
    [a] = monitor.process(LogEvent(303.0, "auth", "disk sda failed", "info"))
    assert a.details["template"] == "disk sda failed"
    # same words, a higher level: news
    [b] = monitor.process(LogEvent(304.0, "auth", "disk sda degraded", "error"))
    assert b.details["template"] == "disk sda degraded"


def test_services_past_the_cap_are_counted_not_kept() -> None:
    monitor = LogMonitor(LogDetectionConfig(max_services=3, warmup_lines=0))
    for i in range(10):
        monitor.process(LogEvent(float(i), f"svc-{i}", f"request {i} served", "info"))
    verdict, anomalies = monitor.observe(LogEvent(11.0, "svc-9", "disk failed", "error"))
    assert monitor.services() == ["svc-0", "svc-1", "svc-2"]
    assert monitor.stats.services_rejected == 8
    assert anomalies == [] and verdict.template_id == 0
    assert verdict.severity > 0.5  # still scored from its own text
    # the kept services go on as before
    verdict, _ = monitor.observe(LogEvent(12.0, "svc-1", "request 7 served", "info"))
    assert verdict.template_id != 0
