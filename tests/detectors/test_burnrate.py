"""SLO burn-rate alerts: fast burn pages, slow burn tickets, both stop when errors stop."""

from __future__ import annotations

import random

import orjson
import pytest
from pydantic import ValidationError

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import MetricEvent
from detectors.forecast import (
    SRE_WORKBOOK_WINDOWS,
    BurnRateRule,
    BurnWindow,
    ForecastConfig,
    ForecastMonitor,
)

STEP = 60.0
HOUR = 3600.0
T0 = 1_700_000_000.0


def slo(**overrides: object) -> BurnRateRule:
    settings: dict[str, object] = {
        "name": "checkout-availability",
        "objective": 0.999,
        "error_metric": "http_errors_total",
        "total_metric": "http_requests_total",
    }
    settings.update(overrides)
    return BurnRateRule.model_validate(settings)


def counters(error_ratio_at, hours: float, *, rps: float = 50.0, seed: int = 0):
    """Cumulative request and error counters of two hosts, one sample a minute each."""
    rng = random.Random(seed)
    totals = {"a": 0.0, "b": 0.0}
    errors = {"a": 0.0, "b": 0.0}
    events = []
    for i in range(int(hours * HOUR / STEP)):
        t = T0 + i * STEP
        for host in ("a", "b"):
            requests = rng.randint(int(rps * STEP * 0.9), int(rps * STEP * 1.1))
            failed = sum(rng.random() < error_ratio_at(t - T0) for _ in range(requests))
            totals[host] += requests
            errors[host] += failed
            events.append(MetricEvent(t, "checkout", "http_requests_total", totals[host], host))
            events.append(MetricEvent(t, "checkout", "http_errors_total", errors[host], host))
    return events


def run(monitor: ForecastMonitor, events: list[MetricEvent]) -> list[Anomaly]:
    out: list[Anomaly] = []
    for event in events:
        out.extend(monitor.process(event))
    return out


def test_budget_burning_at_the_normal_rate_raises_nothing() -> None:
    events = counters(lambda _: 0.0005, hours=30, rps=5)
    assert run(ForecastMonitor(ForecastConfig(burn_rates=[slo()])), events) == []


def test_fast_burn_pages_then_resolves_when_errors_stop() -> None:
    start, stop = 26 * HOUR, 27 * HOUR

    def ratio(t: float) -> float:
        return 0.03 if start <= t < stop else 0.0002

    found = run(ForecastMonitor(ForecastConfig(burn_rates=[slo()])), counters(ratio, 28, rps=5))

    firing = [a for a in found if a.details["phase"] == "firing"]
    assert firing and firing[0].details["severity"] == "page"
    page = firing[0]
    assert start < page.timestamp - T0 < start + 30 * 60  # 3% errors trip 1h/5m at 14.4x fast
    assert page.signal == "slo:checkout-availability" and page.service == "checkout"
    assert page.kind is SignalKind.METRIC and page.direction is Direction.RATE
    assert page.details["window"] == "1h/5m"
    assert page.details["burn_rate"] >= 14.4 and page.details["threshold"] == 14.4
    assert page.score == 1.0
    resolved = [a for a in found if a.details["phase"] == "resolved"]
    assert resolved and stop < resolved[-1].details["emitted_at"] - T0 < stop + 15 * 60
    assert resolved[-1].anomaly_id == page.anomaly_id
    assert found[-1].details["phase"] == "resolved"


def test_slow_burn_opens_a_ticket_and_never_pages() -> None:
    found = run(
        ForecastMonitor(ForecastConfig(burn_rates=[slo()])),
        counters(lambda _: 0.004, hours=26, rps=2),
    )
    severities = {a.details["severity"] for a in found if a.details["phase"] == "firing"}
    assert severities == {"ticket"}
    ticket = found[0]
    assert ticket.score == 0.5 and ticket.details["burn_rate"] >= ticket.details["threshold"]
    assert ticket.details["window"] == "1d/2h"  # needs a full day of history


def test_counter_reset_is_not_an_error_burst() -> None:
    events = counters(lambda _: 0.0002, hours=6, rps=5)
    reset_after = T0 + 3 * HOUR
    restarted = [
        MetricEvent(e.timestamp, e.service, e.metric, e.value / 1000, e.host)
        if e.timestamp >= reset_after and e.host == "a"
        else e
        for e in events
    ]
    assert run(ForecastMonitor(ForecastConfig(burn_rates=[slo()])), restarted) == []


def test_one_counter_with_a_status_label_and_a_ratio_gauge() -> None:
    rule = slo(
        error_metric="http_requests_total",
        error_labels={"code": "5*"},
        group_by=["route"],
    )
    monitor = ForecastMonitor(ForecastConfig(burn_rates=[rule]))
    ok = bad = 0.0
    found: list[Anomaly] = []
    for i in range(180):
        t = T0 + i * STEP
        ok += 300
        bad += 30 if i >= 60 else 0
        for code, value in (("200", ok), ("503", bad)):
            labels = (("code", code), ("route", "/pay"))
            event = MetricEvent(t, "pay", "http_requests_total", value, None, labels)
            found += monitor.process(event)
    pages = [a for a in found if a.details["severity"] == "page"]
    assert pages and pages[0].details["emitted_at"] - T0 < 75 * 60  # 9% errors from 60 min
    assert pages[0].labels == (("route", "/pay"),)

    gauge = ForecastMonitor(
        ForecastConfig(burn_rates=[slo(error_metric=None, total_metric=None, ratio_metric="err")])
    )
    events = [MetricEvent(T0 + i * STEP, "pay", "err", 0.05) for i in range(120)]
    assert any(a.details["severity"] == "page" for a in run(gauge, events))


def test_state_round_trip_keeps_the_alert() -> None:
    def ratio(t: float) -> float:
        return 0.03 if t >= 2 * HOUR else 0.0

    events = counters(ratio, hours=4, rps=5)
    config = ForecastConfig(burn_rates=[slo()])
    whole = run(ForecastMonitor(config), events)
    assert any(a.details["phase"] == "firing" for a in whole)
    first = ForecastMonitor(config)
    cut = len(events) * 3 // 4  # at 3 h, the alert is firing
    before = run(first, events[:cut])
    assert any(a.details["phase"] == "firing" for a in before)
    second = ForecastMonitor(config)
    for key, state in first.dirty_states():
        second.restore(key, state)
    after = run(second, events[cut:])
    assert [a.to_dict() for a in before + after] == [a.to_dict() for a in whole]


def two_services(hours: float) -> list[MetricEvent]:
    """checkout burns budget fast from 2 h to 3.5 h, pay stays healthy; in time order."""
    checkout = counters(lambda t: 0.03 if 2 * HOUR <= t < 3.5 * HOUR else 0.0, hours=hours, rps=5)
    pay = [
        MetricEvent(e.timestamp, "pay", e.metric, e.value, e.host)
        for e in counters(lambda _: 0.0002, hours=hours, rps=5, seed=1)
    ]
    return sorted(checkout + pay, key=lambda e: e.timestamp)


def test_trackers_restored_lazily_give_the_alerts_of_an_uninterrupted_run() -> None:
    events = two_services(hours=4)
    config = ForecastConfig(burn_rates=[slo(service="*")])
    uninterrupted = ForecastMonitor(config)
    whole = run(uninterrupted, events)
    assert [a.details["phase"] for a in whole] == ["firing", "resolved"]

    first = ForecastMonitor(config)
    store: dict[str, bytes] = {}
    cut = len(events) * 11 // 16  # at 2.75 h, while the alert is firing
    before: list[Anomaly] = []
    for i, event in enumerate(events[:cut]):
        before += first.process(event)
        if i % 500 == 0:  # checkpoints now and then, and once more on a clean stop
            store.update(first.dirty_states())
    store.update(first.dirty_states())
    assert sorted(store) == [
        "slo|checkout-availability|checkout|",
        "slo|checkout-availability|pay|",
    ]

    second = ForecastMonitor(config)
    after: list[Anomaly] = []
    for event in events[cut:]:
        for key in second.unloaded_keys(event):
            if key in store:
                second.restore(key, store.pop(key))
        after += second.process(event)
    assert store == {}  # every tracker came back
    assert [a.details["phase"] for a in before] == ["firing"]
    assert [a.to_dict() for a in before + after] == [a.to_dict() for a in whole]
    assert sorted(second.state_keys()) == sorted(uninterrupted.state_keys())
    # without its history, a restarted tracker would never resolve the alert it raised
    assert [a.details["phase"] for a in run(ForecastMonitor(config), events[cut:])] != ["resolved"]


def test_idle_trackers_are_evicted_once_their_longest_window_is_empty() -> None:
    window = BurnWindow(long_seconds=2 * HOUR, short_seconds=300, burn_rate=14.4, severity="page")
    config = ForecastConfig(
        burn_rates=[slo(service="*", windows=[window])], idle_eviction_seconds=HOUR
    )
    monitor = ForecastMonitor(config)
    events = two_services(hours=5)
    stop = T0 + 10 * 60  # checkout stops reporting; pay's host "a" stops at 1 h
    kept = [
        e
        for e in events
        if (e.service == "pay" and (e.host == "b" or e.timestamp < T0 + HOUR)) or e.timestamp < stop
    ]
    last = kept[-1].timestamp
    run(monitor, [e for e in kept if e.timestamp <= stop + HOUR * 1.5])
    checkout, pay = "slo|checkout-availability|checkout|", "slo|checkout-availability|pay|"
    assert monitor.unloaded_keys(events[0]) == []
    assert monitor.evict_idle(stop + 1.5 * HOUR) == ([], [])  # idle > eviction, < 2 h window
    run(monitor, [e for e in kept if e.timestamp > stop + HOUR * 1.5])
    assert monitor.evict_idle(last) == ([checkout], [])  # its alert was not firing
    assert monitor.state_keys() == [pay]
    states = dict(monitor.dirty_states())
    assert list(states) == [pay]  # an evicted tracker is no longer written
    baselines = orjson.loads(states[pay])["state"]["last_values"]
    assert list(baselines) == ["pay|http_requests_total|host=b", "pay|http_errors_total|host=b"]
    assert monitor.unloaded_keys(events[0]) == [checkout]  # it would start afresh


def test_an_alert_firing_when_its_counters_stop_resolves_on_eviction() -> None:
    window = BurnWindow(long_seconds=HOUR, short_seconds=300, burn_rate=14.4, severity="page")
    config = ForecastConfig(burn_rates=[slo(windows=[window])], idle_eviction_seconds=HOUR)
    monitor = ForecastMonitor(config)
    events = counters(lambda t: 0.05 if t >= 2 * HOUR else 0.0, hours=2.5, rps=5)
    found = run(monitor, events)  # the service stops reporting while failing
    assert [a.details["phase"] for a in found] == ["firing"]
    last = events[-1].timestamp
    assert monitor.evict_idle(last + 0.5 * HOUR) == ([], [])
    gone, closing = monitor.evict_idle(last + 1.5 * HOUR)
    assert gone == ["slo|checkout-availability|checkout|"]
    assert [a.details["phase"] for a in closing] == ["resolved"]
    resolved = closing[0]
    assert resolved.anomaly_id == found[0].anomaly_id and resolved.score == 0.0
    assert resolved.details["emitted_at"] == last + 1.5 * HOUR
    assert resolved.details["burn_rate"] == 0.0  # its windows are empty by then


def test_rule_defaults_and_validation() -> None:
    rule = slo()
    assert [(w.label, w.burn_rate, w.severity) for w in rule.windows] == [
        ("1h/5m", 14.4, "page"),
        ("6h/30m", 6.0, "page"),
        ("1d/2h", 3.0, "ticket"),
        ("3d/6h", 1.0, "ticket"),
    ]
    assert tuple(rule.windows) == SRE_WORKBOOK_WINDOWS
    assert rule.budget == pytest.approx(0.001)
    with pytest.raises(ValidationError):
        slo(ratio_metric="err")  # both counters and a ratio
    with pytest.raises(ValidationError):
        slo(total_metric=None)
