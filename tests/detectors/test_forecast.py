"""Limit-crossing predictions: what a user of the forecast monitor would check."""

from __future__ import annotations

import math
import random

import orjson
import pytest
from pydantic import ValidationError

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import MetricEvent
from detectors.forecast import (
    ForecastConfig,
    ForecastMonitor,
    ForecastRule,
    Limit,
    RobustTrend,
    StateError,
)

STEP = 60.0
HOUR = 3600.0
LIMIT = 0.95


def disk_rule(**overrides: object) -> ForecastRule:
    settings: dict[str, object] = {
        "name": "disk-full",
        "metric": "disk_used_ratio",
        "limit": Limit(op=">=", value=LIMIT),
        "horizon_seconds": 4 * HOUR,
    }
    settings.update(overrides)
    return ForecastRule.model_validate(settings)


def noisy(seed: int, n: int, sd: float = 0.01, rho: float = 0.7) -> list[float]:
    """AR(1) noise with a few spikes: closer to real metrics than white noise."""
    rng = random.Random(seed)
    out, e = [], 0.0
    for _ in range(n):
        e = rho * e + rng.gauss(0.0, sd * math.sqrt(1 - rho * rho))
        spike = rng.choice([0.0] * 200 + [0.15])
        out.append(e + spike)
    return out


def leak(seed: int, *, start_h: float = 10.0, rate_per_h: float = 0.04, base: float = 0.5):
    """A disk filling at a steady rate from ``start_h``; returns events and the crossing time."""
    t0 = 1_700_000_000.0
    crossing = t0 + start_h * HOUR + (LIMIT - base) / rate_per_h * HOUR
    n = int((crossing - t0) / STEP) + 60
    noise = noisy(seed, n)
    events = []
    for i in range(n):
        t = t0 + i * STEP
        value = base + max(t - t0 - start_h * HOUR, 0.0) / HOUR * rate_per_h + noise[i]
        events.append(MetricEvent(t, "db", "disk_used_ratio", value, host="db-1"))
    return events, crossing


def run(monitor: ForecastMonitor, events: list[MetricEvent]) -> list[Anomaly]:
    out: list[Anomaly] = []
    for event in events:
        out.extend(monitor.process(event))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_leak_is_predicted_with_crossing_time_within_ten_percent(seed: int) -> None:
    events, crossing = leak(seed)
    found = run(ForecastMonitor(ForecastConfig(rules=[disk_rule()])), events)

    predicted = [a for a in found if a.details["phase"] == "predicted"]
    assert predicted, "a steady leak must be predicted"
    first = predicted[0]
    time_left = crossing - first.details["emitted_at"]
    assert time_left >= 30 * 60
    assert abs(first.details["crossing_time"] - crossing) <= 0.1 * time_left
    assert first.kind is SignalKind.PREDICTED and first.direction is Direction.PREDICTED
    assert (first.service, first.signal, first.host) == ("db", "disk_used_ratio", "db-1")
    assert 0.9 <= first.score <= 1.0
    assert first.details["rule"] == "disk-full"
    assert first.details["limit"] == {"op": ">=", "value": LIMIT}
    low, high = first.details["crossing_interval"]
    assert low <= first.details["crossing_time"] and (high is None or high >= low)
    predicted_left = first.details["crossing_time"] - first.details["emitted_at"]
    assert first.details["time_left_s"] == pytest.approx(predicted_left)
    assert predicted_left <= first.details["horizon_s"]
    assert first.details["trend_per_hour"] == pytest.approx(0.04, rel=0.35)
    published = Anomaly.from_dict(orjson.loads(orjson.dumps(first.to_dict())))
    assert published == first and published.details == first.details
    # once per episode, then only when the crossing time moves: not once per point
    assert len(predicted) <= 10
    assert {a.anomaly_id for a in predicted} == {first.anomaly_id}


@pytest.mark.parametrize("seed", range(5))
def test_flat_noisy_series_raises_nothing(seed: int) -> None:
    t0 = 1_700_000_000.0
    n = int(7 * 24 * HOUR / STEP)
    noise = noisy(seed, n, sd=0.03)
    events = [
        MetricEvent(
            t0 + i * STEP,
            "db",
            "disk_used_ratio",
            0.7 + 0.05 * math.sin(2 * math.pi * i * STEP / 86400) + noise[i],
        )
        for i in range(n)
    ]
    assert run(ForecastMonitor(ForecastConfig(rules=[disk_rule()])), events) == []


def test_reversing_trend_withdraws_the_prediction() -> None:
    t0 = 1_700_000_000.0
    noise = noisy(7, 2000, sd=0.005)
    events = []
    for i in range(2000):
        t = i * STEP
        up = min(t, 20 * HOUR)
        down = max(t - 20 * HOUR, 0.0)
        value = 0.5 + max(up - 10 * HOUR, 0.0) / HOUR * 0.035 - down / HOUR * 0.1
        events.append(MetricEvent(t0 + t, "db", "disk_used_ratio", value + noise[i]))
    found = run(ForecastMonitor(ForecastConfig(rules=[disk_rule()])), events)

    phases = [a.details["phase"] for a in found]
    assert phases[0] == "predicted" and phases[-1] == "withdrawn"
    withdrawn = found[-1]
    assert withdrawn.anomaly_id == found[0].anomaly_id  # the same episode ends
    assert withdrawn.details["emitted_at"] > t0 + 20 * HOUR  # after the reversal
    assert withdrawn.score < 0.5


def test_falling_free_space_is_predicted_against_a_lower_limit() -> None:
    rule = disk_rule(metric="disk_free_bytes", limit=Limit(op="<=", value=0.0))
    t0 = 1_700_000_000.0
    noise = noisy(3, 1500, sd=2e8)
    events = [
        MetricEvent(
            t0 + i * STEP,
            "db",
            "disk_free_bytes",
            50e9 - max(i * STEP - 10 * HOUR, 0.0) / HOUR * 4e9 + noise[i],
        )
        for i in range(1500)
    ]
    crossing = t0 + 10 * HOUR + 50e9 / 4e9 * HOUR
    found = run(ForecastMonitor(ForecastConfig(rules=[rule])), events)
    assert found and found[0].details["phase"] == "predicted"
    left = crossing - found[0].details["emitted_at"]
    assert abs(found[0].details["crossing_time"] - crossing) <= 0.1 * left
    assert found[0].details["trend_per_hour"] < 0


def test_only_selected_series_are_followed() -> None:
    rule = disk_rule(metric="disk_*", service="db*", labels={"mount": "/data*"})
    monitor = ForecastMonitor(ForecastConfig(rules=[rule]))
    events, _ = leak(0)
    for event in events:
        other = MetricEvent(event.timestamp, "web", event.metric, event.value)
        wrong_label = MetricEvent(
            event.timestamp, "db", event.metric, event.value, labels=(("mount", "/"),)
        )
        assert monitor.process(other) == [] and monitor.process(wrong_label) == []
    assert monitor.dirty_states() == []
    selected = [
        MetricEvent(e.timestamp, e.service, e.metric, e.value, labels=(("mount", "/data1"),))
        for e in events
    ]
    assert any(a.details["phase"] == "predicted" for a in run(monitor, selected))


def test_missing_values_are_ignored() -> None:
    events, crossing = leak(1)
    with_gaps = [
        MetricEvent(e.timestamp, e.service, e.metric, math.nan) if i % 7 == 3 else e
        for i, e in enumerate(events)
    ]
    found = run(ForecastMonitor(ForecastConfig(rules=[disk_rule()])), with_gaps)
    assert found and found[0].details["phase"] == "predicted"
    left = crossing - found[0].details["emitted_at"]
    assert abs(found[0].details["crossing_time"] - crossing) <= 0.1 * left


def test_state_round_trip_gives_identical_predictions() -> None:
    events, _ = leak(2)
    config = ForecastConfig(rules=[disk_rule()])
    whole = run(ForecastMonitor(config), events)

    first = ForecastMonitor(config)
    half = len(events) * 2 // 3
    before = run(first, events[:half])
    states = first.dirty_states()
    assert states and first.dirty_states() == []  # cleared once read
    second = ForecastMonitor(config)
    for key, state in states:
        second.restore(key, state)
    after = run(second, events[half:])
    assert [a.to_dict() for a in before + after] == [a.to_dict() for a in whole]


def test_idle_series_are_evicted_and_returned_the_others_kept() -> None:
    config = ForecastConfig(rules=[disk_rule()], idle_eviction_seconds=2 * HOUR)
    monitor = ForecastMonitor(config)
    t0 = 1_700_000_000.0
    for i in range(600):  # db-2 stops after an hour, db-1 goes on for ten
        t = t0 + i * STEP
        hosts = ("db-1", "db-2") if i < 60 else ("db-1",)
        for host in hosts:
            monitor.process(MetricEvent(t, "db", "disk_used_ratio", 0.5, host=host))
        monitor.process(MetricEvent(t, "web", "cpu", 0.5))  # routed to no rule
    kept, idle = (f"forecast|disk-full|db|disk_used_ratio|host={h}" for h in ("db-1", "db-2"))
    now = t0 + 599 * STEP
    assert monitor.evict_idle(t0 + 2.5 * HOUR) == ([], [])  # db-2 idle for 1.5 h only
    assert monitor.evict_idle(now) == ([idle], [])  # it had no prediction open
    assert monitor.state_keys() == [kept]
    assert [key for key, _ in monitor.dirty_states()] == [kept]
    assert sorted(monitor._routes) == sorted(  # the route cache forgets db-2 too
        ["db|disk_used_ratio|host=db-1", "web|cpu"]
    )
    back = MetricEvent(now + STEP, "db", "disk_used_ratio", 0.5, host="db-2")
    assert monitor.unloaded_keys(back) == [idle]


def test_a_series_that_stops_with_a_prediction_open_has_it_withdrawn_on_eviction() -> None:
    config = ForecastConfig(rules=[disk_rule()], idle_eviction_seconds=2 * HOUR)
    monitor = ForecastMonitor(config)
    events, _ = leak(3)
    found = run(monitor, events)
    assert found[-1].details["phase"] == "predicted"  # the series stops while filling up
    last = events[-1].timestamp
    assert monitor.evict_idle(last + HOUR) == ([], [])
    gone, closing = monitor.evict_idle(last + 3 * HOUR)
    assert gone == monitor.unloaded_keys(events[0])  # evicted, and nothing kept
    assert [a.details["phase"] for a in closing] == ["withdrawn"]
    withdrawn = closing[0]
    assert withdrawn.anomaly_id == found[0].anomaly_id  # it ends the episode it opened
    assert withdrawn.details["reason"] == "idle"
    assert withdrawn.details["emitted_at"] == last + 3 * HOUR


def test_restore_rejects_bad_states() -> None:
    monitor = ForecastMonitor(ForecastConfig(rules=[disk_rule()]))
    with pytest.raises(StateError):
        monitor.restore("forecast|disk-full|db|disk_used_ratio", b"not json")
    with pytest.raises(StateError):
        monitor.restore("forecast|gone|db|disk_used_ratio", b'{"v": 1, "state": {}}')
    with pytest.raises(StateError):
        monitor.restore("forecast|disk-full|db|disk_used_ratio", b'{"v": 99, "state": {}}')


def test_trend_model_ignores_a_lone_spike() -> None:
    model = RobustTrend(bucket_seconds=60, lookback_seconds=3600)
    est = None
    for i in range(120):
        est = model.learn_one(i * 60.0, 5.0 + (100.0 if i == 100 else 0.0) + 0.01 * (i % 3))
    assert est is not None
    assert abs(est.slope * 3600) < 0.5  # the spike would add ~20/h to a plain fit


def test_rule_validation() -> None:
    with pytest.raises(ValidationError):
        disk_rule(min_confidence=0.6, withdraw_confidence=0.8)
    with pytest.raises(ValidationError):
        ForecastConfig(rules=[disk_rule(), disk_rule()])
    with pytest.raises(ValidationError):
        ForecastRule.model_validate({"name": "x", "metric": "m", "limit": {"value": 1}, "oops": 1})
