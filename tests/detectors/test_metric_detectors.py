"""One battery of checks that every registered metric detector must pass."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable

import pytest

from detectors.metric import make_detector, registered_detectors
from detectors.metric.base import MetricDetector
from detectors.metric.robust import RobustLikelihood
from detectors.metric.state import dump_state, load_state

ALL = registered_detectors()


def feed(det: MetricDetector, points: list[tuple[float, float]]) -> list[float]:
    scores = []
    for t, x in points:
        scores.append(det.score_one(x, t))
        det.learn_one(x, t)
    return scores


def test_registry_has_default_and_river_detectors() -> None:
    assert "robust_likelihood" in ALL
    assert {"sad", "half_space_trees", "gaussian", "holt_winters"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_scores_before_learning(name: str) -> None:
    det = make_detector(name)
    score = det.score_one(10.0, 0.0)
    assert isinstance(score, float)
    assert 0.0 <= score <= 1.0


@pytest.mark.parametrize("name", ALL)
def test_scores_stay_in_unit_interval(name: str, metric_series: list[tuple[float, float]]) -> None:
    points = [
        *metric_series,
        (metric_series[-1][0] + 300.0, 1e6),
        (metric_series[-1][0] + 600.0, -1e6),
    ]
    scores = feed(make_detector(name), points)
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize("name", ALL)
def test_state_round_trip_gives_identical_scores(
    name: str, metric_series: list[tuple[float, float]]
) -> None:
    det = make_detector(name)
    feed(det, metric_series[:500])
    twin = load_state(dump_state(det))  # as checkpoints are written and read
    rest = metric_series[500:]
    assert feed(twin, rest) == feed(det, rest)


@pytest.mark.parametrize("name", ALL)
def test_a_large_spike_outscores_normal_points(
    name: str, make_metric_series: Callable[..., list[tuple[float, float]]]
) -> None:
    points = make_metric_series(1200, seed=3)
    det = make_detector(name)
    normal = feed(det, points[:1100])
    t = points[1100][0]
    spike = det.score_one(points[1100][1] + 80.0, t)
    assert spike > sorted(normal[300:])[len(normal[300:]) // 2]


@pytest.mark.parametrize("name", ALL)
def test_expectation_is_near_the_series(
    name: str, metric_series: list[tuple[float, float]]
) -> None:
    det = make_detector(name)
    feed(det, metric_series)
    expectation = det.expectation(metric_series[-1][0] + 300.0)
    assert expectation is not None
    assert 30.0 < expectation.expected < 70.0
    assert expectation.scale > 0.0


def test_default_detector_state_is_small(metric_series: list[tuple[float, float]]) -> None:
    det = make_detector("robust_likelihood")
    feed(det, metric_series)
    assert len(pickle.dumps(det, protocol=5)) <= 16 * 1024


def test_default_detector_alerts_on_a_missing_daily_jump() -> None:
    # a square wave that jumps up at 09:00 every day, except on the last day
    start, step = 1_700_006_400.0, 300.0  # a midnight, UTC
    det = make_detector("robust_likelihood")
    scores = []
    for i in range(288 * 6):
        t = start + i * step
        hour = (t % 86400.0) / 3600.0
        high = 9.0 <= hour < 18.0 and i < 288 * 5
        x = (80.0 if high else 20.0) + ((i * 7919) % 13) / 13.0
        scores.append(det.score_one(x, t))
        det.learn_one(x, t)
    nine_am_last_day = 288 * 5 + 108
    assert max(scores[nine_am_last_day : nine_am_last_day + 3]) >= 0.5
    assert max(scores[288 * 3 : 288 * 5]) < 0.5


def traffic_series(days: int, off_day: int, factor: float) -> list[tuple[float, float]]:
    """Half-hourly requests with a daily peak, lower at weekends; on ``off_day`` the peak is
    ``factor`` of its usual height (a holiday: inside the usual range of values)."""
    rng = random.Random(3)
    start, step = 1_700_006_400.0, 1800.0
    points = []
    for i in range(48 * days):
        t = start + i * step
        hour = (t % 86400.0) / 3600.0
        weekend = int((t // 86400.0) % 7) in (2, 3)
        peak = 800.0 * math.sin(math.pi * hour / 24.0) ** 4 * (0.7 if weekend else 1.0)
        height = factor if i // 48 == off_day else 1.0
        points.append((t, 1000.0 + peak * height + rng.gauss(0.0, 30.0)))
    return points


@pytest.mark.parametrize(("factor", "alerts"), [(0.6, True), (1.0, False)])
def test_default_detector_alerts_on_a_day_that_departs_from_the_season(
    factor: float, alerts: bool
) -> None:
    # five weeks; on the 34th day the peak reaches 60 % of its height, every value of that
    # day inside the range seen before: the season-departure CUSUM alerts during the day
    points = traffic_series(35, off_day=33, factor=factor)
    scores = feed(RobustLikelihood(), points)
    assert max(scores[48 * 15 : 48 * 33]) < 0.5
    assert (max(scores[48 * 33 : 48 * 34]) >= 0.5) is alerts
    without = feed(RobustLikelihood(departure_limit=math.inf), points)
    assert max(without[48 * 15 :]) < 0.5
