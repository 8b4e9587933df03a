"""MetricMonitor: episodes, records, warm-up, state that survives restarts, bounds."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from benchmarks.detectors import synthetic_series
from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import MetricEvent
from detectors.metric import (
    DetectorRule,
    MetricDetectionConfig,
    MetricMonitor,
    StateError,
    UnknownDetectorError,
)
from detectors.metric import robust_kernel as kernel
from detectors.metric.robust import RobustLikelihood, RobustParams
from detectors.metric.state import STATE_VERSION, load_state

Series = list[tuple[float, float]]


def events(points: Series, metric: str = "latency_ms", **labels: str) -> list[MetricEvent]:
    frozen = tuple(sorted(labels.items()))
    return [MetricEvent(t, "checkout", metric, x, "web-1", frozen) for t, x in points]


def run(monitor: MetricMonitor, evs: list[MetricEvent]) -> list[Anomaly]:
    return [a for e in evs if (a := monitor.process(e)) is not None]


def with_bump(points: Series, at: int, size: float, length: int) -> Series:
    return [(t, x + size if at <= i < at + length else x) for i, (t, x) in enumerate(points)]


def test_one_onset_per_episode_with_identity_and_evidence(
    make_metric_series: Callable[..., Series],
) -> None:
    points = with_bump(make_metric_series(1500), at=1200, size=60.0, length=1)
    records = run(MetricMonitor(), events(points, env="prod"))
    onsets = [a for a in records if a.details["phase"] == "onset"]
    assert len(onsets) == 1
    onset = onsets[0]
    assert onset.timestamp == points[1200][0]
    assert (onset.service, onset.signal, onset.host) == ("checkout", "latency_ms", "web-1")
    assert onset.labels == (("env", "prod"),)
    assert onset.kind is SignalKind.METRIC
    assert onset.direction is Direction.SPIKE
    assert onset.detector == MetricDetectionConfig().default_detector == "ensemble"
    assert 0.0 < onset.score <= 1.0
    assert onset.expected is not None and onset.band is not None
    assert onset.band[0] < onset.expected < onset.band[1] < onset.value
    assert onset.details["z"] > 3.0
    assert Anomaly.from_dict(onset.to_dict()) == onset


def test_dip_is_reported_as_a_dip(make_metric_series: Callable[..., Series]) -> None:
    points = with_bump(make_metric_series(1500), at=1200, size=-60.0, length=2)
    onsets = [a for a in run(MetricMonitor(), events(points)) if a.details["phase"] == "onset"]
    assert onsets and onsets[0].direction is Direction.DIP


def test_level_shift_is_reported_as_such(make_metric_series: Callable[..., Series]) -> None:
    points = with_bump(make_metric_series(1500), at=1200, size=40.0, length=300)
    onsets = [a for a in run(MetricMonitor(), events(points)) if a.details["phase"] == "onset"]
    assert onsets and onsets[0].direction is Direction.LEVEL_SHIFT
    assert onsets[0].timestamp == points[1200][0]


def test_escalations_share_the_onset_and_are_capped(
    make_metric_series: Callable[..., Series],
) -> None:
    points = make_metric_series(1500)
    growth = [
        (t, x + (2.0 ** (i - 1199) if 1200 <= i < 1240 else 0.0)) for i, (t, x) in enumerate(points)
    ]
    config = MetricDetectionConfig(threshold=0.5)
    records = run(MetricMonitor(config), events(growth))
    onsets = [a for a in records if a.details["phase"] == "onset"]
    escalations = [a for a in records if a.details["phase"] == "escalation"]
    assert len(onsets) == 1
    assert 1 <= len(escalations) <= 5
    assert all(a.timestamp == onsets[0].timestamp for a in escalations)
    zs = [abs(onsets[0].details["z"])] + [abs(a.details["z"]) for a in escalations]
    assert all(b >= 2.0 * a for a, b in itertools.pairwise(zs))
    assert all("peak_value" in a.details for a in escalations)


def test_no_anomaly_during_warm_up(make_metric_series: Callable[..., Series]) -> None:
    points = with_bump(make_metric_series(400), at=100, size=500.0, length=1)
    config = MetricDetectionConfig(warmup_points=200)
    assert run(MetricMonitor(config), events(points)) == []


def test_missing_values_are_skipped_not_raised(make_metric_series: Callable[..., Series]) -> None:
    monitor = MetricMonitor()
    points = make_metric_series(300)
    evs = events(points)
    for i, e in enumerate(evs):
        if i % 10 == 0:
            e = MetricEvent(e.timestamp, e.service, e.metric, math.nan, e.host, e.labels)
        if i % 17 == 0:
            e = MetricEvent(e.timestamp, e.service, e.metric, math.inf, e.host, e.labels)
        assert monitor.score(e) >= 0.0
    assert monitor.stats.missing_values > 0
    assert monitor.stats.series == 1


def test_restored_worker_resumes_without_new_warm_up(
    make_metric_series: Callable[..., Series],
) -> None:
    points = with_bump(make_metric_series(1500), at=1300, size=60.0, length=5)
    evs = events(points)
    original = MetricMonitor()
    for e in evs[:1000]:
        original.process(e)
    checkpoint = dict(original.dirty_states())
    assert original.dirty_states() == []  # nothing changed since
    assert all(state[0] == STATE_VERSION for state in checkpoint.values())  # version header

    restarted = MetricMonitor()
    for key, state in checkpoint.items():
        restarted.restore(key, state)
    rest_a = [original.observe(e) for e in evs[1000:]]
    rest_b = [restarted.observe(e) for e in evs[1000:]]
    assert [o.score for o in rest_a] == [o.score for o in rest_b]
    assert not any(o.warming_up for o in rest_b)
    assert [o.anomaly for o in rest_a] == [o.anomaly for o in rest_b]
    assert any(o.anomaly is not None for o in rest_b)
    assert restarted.stats.restored == 1


def test_state_is_compact_and_rejects_foreign_bytes(
    make_metric_series: Callable[..., Series],
) -> None:
    monitor = MetricMonitor()
    run(monitor, events(make_metric_series(2000)))
    [(key, state)] = monitor.dirty_states()
    assert len(state) <= 16 * 1024
    with pytest.raises(StateError):
        monitor.restore(key, b"\x63" + state[1:])
    with pytest.raises(StateError):
        monitor.restore(key, state[:1] + b"\x80\x05garbage")


def test_idle_series_are_evicted(make_metric_series: Callable[..., Series]) -> None:
    config = MetricDetectionConfig(idle_eviction_seconds=3600.0)
    monitor = MetricMonitor(config)
    points = make_metric_series(10)
    run(monitor, events(points, metric="a"))
    run(monitor, events(points[:2], metric="b"))
    assert monitor.evict_idle(points[1][0] + 1800.0) == []
    gone = monitor.evict_idle(points[1][0] + 3601.0)
    assert gone == ["checkout|b|host=web-1"]
    assert monitor.stats.evicted == 1
    assert monitor.stats.series == 1


def test_series_cap_rejects_and_counts() -> None:
    monitor = MetricMonitor(MetricDetectionConfig(max_series=2))
    for metric in ("a", "b", "c", "d"):
        monitor.process(MetricEvent(0.0, "svc", metric, 1.0))
    stats = monitor.stats
    assert stats.series == 2
    assert stats.rejected_by_cap == 2
    monitor.process(MetricEvent(1.0, "svc", "a", 1.0))  # known series still served
    assert monitor.stats.rejected_by_cap == 2


def test_rules_pick_the_detector_by_metric_and_labels(
    make_metric_series: Callable[..., Series],
) -> None:
    config = MetricDetectionConfig(
        rules=(
            DetectorRule(metric="queue_*", labels={"env": "prod"}, detector="sad"),
            DetectorRule(metric="queue_*", detector="gaussian", params={"window_size": 100}),
        )
    )
    monitor = MetricMonitor(config)
    points = with_bump(make_metric_series(800), at=700, size=200.0, length=1)
    names = {
        a.detector
        for metric, env in (("queue_depth", "prod"), ("queue_depth", "dev"), ("cpu", "prod"))
        for a in run(monitor, events(points, metric=metric, env=env))
    }
    assert names == {"sad", "gaussian", "ensemble"}


def test_unknown_detector_is_a_typed_error() -> None:
    with pytest.raises(UnknownDetectorError):
        MetricMonitor(MetricDetectionConfig(default_detector="nope"))


def test_config_rejects_close_threshold_above_open() -> None:
    with pytest.raises(ValueError):
        MetricDetectionConfig(threshold=0.3, hysteresis={"close_threshold": 0.5})


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_older_states_are_read_and_score_as_before(version: int) -> None:
    # written by earlier layouts (1: a count per seasonal bucket; 2: one bit per bucket, every
    # slot pickled by name; 3: a bank row without the change-of-pattern columns; 4: without
    # the season-departure columns and profile), with the scores those layouts gave for the
    # points that followed
    fixtures = Path(__file__).parent / "fixtures"
    state = (fixtures / f"robust_likelihood_v{version}.state").read_bytes()
    expected = json.loads((fixtures / f"robust_likelihood_v{version}.json").read_text())
    assert state[0] == version
    monitor = MetricMonitor(MetricDetectionConfig(default_detector="robust_likelihood"))
    monitor.restore(expected["key"], state)
    points = synthetic_series(expected["points"])[expected["first"] :]
    scores = [monitor.score(MetricEvent(t, "svc", "latency_ms", x)) for t, x in points]
    # the error gate, added after layouts 1 to 3, holds the likelihood of an error of a
    # usual size at 0.3 (here one point, 0.344 before); every other point scores as before
    # (the season-departure CUSUM waits for its profile to span two weeks again)
    assert len(scores) == len(expected["scores"])
    lowered = [
        (new, old) for new, old in zip(scores, expected["scores"], strict=True) if new != old
    ]
    assert all(new == 0.3 and 0.3 < old < 0.5 for new, old in lowered)
    assert len(lowered) <= 1
    assert (monitor.state_of(expected["key"]) or b"")[0] == STATE_VERSION


def test_a_robust_likelihood_checkpoint_goes_on_as_the_default_ensemble() -> None:
    # a series checkpointed when robust_likelihood was the default keeps its baselines and
    # its warm-up under the ensemble; its contextual half learns from the restore on
    points = synthetic_series(3000)
    old = MetricMonitor(MetricDetectionConfig(default_detector="robust_likelihood"))
    for t, x in points[:2500]:
        old.process(MetricEvent(t, "svc", "latency_ms", x))
    key = MetricEvent(0.0, "svc", "latency_ms", 1.0).series_key
    state = old.state_of(key)
    assert state is not None
    new = MetricMonitor()
    new.restore(key, state)
    assert new.stats.upgraded == 1 and new.stats.rewarmed == 0
    rest = [MetricEvent(t, "svc", "latency_ms", x) for t, x in points[2500:]]
    robust_scores = [old.score(e) for e in rest]
    ensemble_scores = [new.score(e) for e in rest]
    # the first 150 points only teach the contextual half its range: the scores are the same
    assert ensemble_scores[:150] == robust_scores[:150]
    assert all(e >= r for e, r in zip(ensemble_scores, robust_scores, strict=True))
    restored = load_state(new.state_of(key) or b"")
    assert restored.detector_name == "ensemble"


def test_a_robust_likelihood_checkpoint_of_other_parameters_starts_a_new_warm_up() -> None:
    old = MetricMonitor(
        MetricDetectionConfig(default_detector="robust_likelihood", default_params={"z_half": 3.0})
    )
    for t, x in synthetic_series(400):
        old.process(MetricEvent(t, "svc", "latency_ms", x))
    key = MetricEvent(0.0, "svc", "latency_ms", 1.0).series_key
    new = MetricMonitor()
    new.restore(key, old.state_of(key) or b"")
    assert new.stats.rewarmed == 1
    t = synthetic_series(401)[-1][0]
    assert new.observe(MetricEvent(t, "svc", "latency_ms", 100.0)).warming_up


def test_a_rule_that_asks_for_robust_likelihood_keeps_it_after_a_restore() -> None:
    config = MetricDetectionConfig(
        rules=(DetectorRule(metric="latency_ms", detector="robust_likelihood"),)
    )
    old = MetricMonitor(config)
    for t, x in synthetic_series(400):
        old.process(MetricEvent(t, "svc", "latency_ms", x))
    key = MetricEvent(0.0, "svc", "latency_ms", 1.0).series_key
    new = MetricMonitor(config)
    new.restore(key, old.state_of(key) or b"")
    assert new.stats.upgraded == new.stats.rewarmed == 0


def unpickled_states(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The states ``RobustLikelihood.__setstate__`` receives from now on, as pickled."""
    seen: list[object] = []
    read = RobustLikelihood.__setstate__

    def keep(self: RobustLikelihood, state: object) -> None:
        seen.append(state)
        read(self, state)

    monkeypatch.setattr(RobustLikelihood, "__setstate__", keep)
    return seen


@pytest.mark.parametrize("version", [3, 4])
def test_an_older_row_gets_empty_new_columns(version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # layout 3 had neither the change-of-pattern nor the season-departure columns, layout 4
    # neither the season-departure columns nor its profile's buckets: they are added empty
    # and start learning
    fixtures = Path(__file__).parent / "fixtures"
    raw = (fixtures / f"robust_likelihood_v{version}.state").read_bytes()
    seen = unpickled_states(monkeypatch)
    detector = load_state(raw).detector
    assert isinstance(detector, RobustLikelihood)
    pickled = seen[0]
    assert isinstance(pickled, tuple) and pickled[0] == version
    old_row, old_buckets = pickled[2], pickled[3]
    assert isinstance(old_row, bytes) and isinstance(old_buckets, bytes)
    row = detector.bank.state[detector.row]
    old = np.frombuffer(old_row, dtype=np.float64)
    kept = kernel.F_PAT_N if version == 3 else kernel.F_DEP_N
    assert row[:kept].tolist() == old[:kept].tolist()
    assert row[kept : kernel.F_PROFILES].tolist() == [0.0] * (kernel.F_PROFILES - kept)
    assert np.array_equal(row[kernel.F_PROFILES :], old[kept:], equal_nan=True)
    buckets = detector.bank.buckets[detector.row]
    old_b = np.frombuffer(old_buckets, dtype=np.float64)
    assert np.array_equal(buckets[: len(old_b)], old_b, equal_nan=True)
    assert np.isnan(buckets[len(old_b) :]).all() and len(buckets) - len(old_b) == 168


def test_states_saved_before_the_extreme_rule_get_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixtures = Path(__file__).parent / "fixtures"
    seen = unpickled_states(monkeypatch)
    load_state((fixtures / "robust_likelihood_v2.state").read_bytes())
    monkeypatch.undo()
    assert isinstance(seen[0], dict)
    legacy = dict(seen[0])
    del legacy["extreme_z"]  # as pickled before the setting existed
    detector = RobustLikelihood.__new__(RobustLikelihood)
    detector.__setstate__(legacy)
    assert detector.params == RobustParams()


def test_a_state_round_trips_with_identical_scores_and_compact_bytes() -> None:
    points = synthetic_series(3000)
    monitor = MetricMonitor()
    for t, x in points[:2500]:
        monitor.process(MetricEvent(t, "svc", "latency_ms", x))
    state = monitor.state_of("svc|latency_ms") or b""
    # robust_likelihood: 624 buckets and 51 scalars of 8 bytes; context: a table of 1,452
    # two-byte masks and 10 scalars; and a little framing
    assert len(state) < 5900 + 3000
    restored = MetricMonitor()
    restored.restore("svc|latency_ms", state)
    rest = [MetricEvent(t, "svc", "latency_ms", x) for t, x in points[2500:]]
    assert [restored.score(e) for e in rest] == [monitor.score(e) for e in rest]


def test_unknown_state_versions_are_refused() -> None:
    monitor = MetricMonitor()
    monitor.process(MetricEvent(0.0, "svc", "cpu", 1.0))
    state = monitor.state_of("svc|cpu") or b""
    with pytest.raises(StateError, match="unsupported state version"):
        MetricMonitor().restore("svc|cpu", bytes([STATE_VERSION + 1]) + state[1:])


def mixed_traffic(make_metric_series: Callable[..., Series]) -> list[MetricEvent]:
    """Interleaved series of three detectors and two parameter sets, with anomalies,
    missing values and integer timestamps."""
    streams = []
    for i, (metric, env) in enumerate(
        (("latency_ms", "prod"), ("queue_depth", "prod"), ("errors", "dev"), ("cpu", "dev"))
    ):
        points = with_bump(make_metric_series(900, seed=i), at=600 + 40 * i, size=80.0, length=3)
        evs = events(points, metric=metric, env=env)
        evs[100 + i] = MetricEvent(evs[100 + i].timestamp, "checkout", metric, math.nan)
        streams.append(evs)
    merged = [e for group in zip(*streams, strict=True) for e in group]
    merged.insert(7, MetricEvent(int(merged[7].timestamp), "checkout", "ints", 3))
    return merged


@pytest.mark.parametrize("batch", [1, 7, 500])
def test_a_batch_gives_what_one_event_at_a_time_gives(
    make_metric_series: Callable[..., Series], batch: int
) -> None:
    config = MetricDetectionConfig(
        max_series=4,
        rules=(
            DetectorRule(metric="queue_*", detector="gaussian", params={"window_size": 100}),
            DetectorRule(metric="errors", detector="robust_likelihood", params={"z_half": 3.0}),
        ),
    )
    evs = mixed_traffic(make_metric_series)
    one, many = MetricMonitor(config), MetricMonitor(config)
    expected = run(one, evs)
    found = [a for at in range(0, len(evs), batch) for a in many.process_many(evs[at : at + batch])]
    assert len(expected) >= 3
    assert [a.to_dict() for a in found] == [a.to_dict() for a in expected]
    assert many.stats == one.stats
    assert many.stats.rejected_by_cap == 1 and many.stats.missing_values == 4
    # (River's Gaussian draws its random seed, so only the other states compare as bytes)
    states = [dict(m.dirty_states()) for m in (one, many)]
    assert {k: v for k, v in states[0].items() if "|queue_" not in k} == {
        k: v for k, v in states[1].items() if "|queue_" not in k
    }


def test_a_series_after_an_evicted_one_starts_afresh(
    make_metric_series: Callable[..., Series],
) -> None:
    config = MetricDetectionConfig(idle_eviction_seconds=60.0)
    monitor = MetricMonitor(config)
    old = events(make_metric_series(500, seed=3), metric="old")
    monitor.process_many(old)
    assert monitor.evict_idle(old[-1].timestamp + 3600.0) == [old[0].series_key]
    new = events(make_metric_series(400, seed=4), metric="new")
    fresh = MetricMonitor(config)
    scores = [monitor.score(e) for e in new]  # takes the evicted series' row
    assert scores == [fresh.score(e) for e in new]
