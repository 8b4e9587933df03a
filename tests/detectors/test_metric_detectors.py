"""One battery of checks that every registered metric detector must pass."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable

import pytest

from detectors.metric import MetricDetectionConfig, make_detector, registered_detectors
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
    assert {"robust_likelihood", "context", "resonance", "ensemble", "bocpd"} <= set(ALL)
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


@pytest.mark.parametrize("name", ["robust_likelihood", MetricDetectionConfig().default_detector])
def test_default_detector_state_is_small(
    name: str, metric_series: list[tuple[float, float]]
) -> None:
    det = make_detector(name)
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


def _hostile_tails(base: list[tuple[float, float]]) -> dict[str, list[tuple[float, float]]]:
    t = base[-1][0]
    return {
        "nan and inf": [(t + 300, math.nan), (t + 600, math.inf), (t + 900, -math.inf)],
        "a gap of days": [(t + 9 * 86400.0 + 300 * i, base[i][1]) for i in range(50)],
        "duplicated times": [(t + 300, 50.0)] * 20,
        "out of order": [(t - 300 * i, 50.0 + i) for i in range(20)],
        "huge values": [(t + 300 * i, v) for i, v in enumerate([1e300, -1e300, 1e300, 5e-324])],
    }


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "kind", ["nan and inf", "a gap of days", "duplicated times", "out of order", "huge values"]
)
def test_hostile_input_never_raises_nor_returns_nan(
    name: str, kind: str, metric_series: list[tuple[float, float]]
) -> None:
    det = make_detector(name)
    scores = feed(det, [*metric_series, *_hostile_tails(metric_series)[kind]])
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)
    after = feed(det, [(metric_series[-1][0] + 20 * 86400.0, 50.0)])  # and it goes on
    assert math.isfinite(after[0])


@pytest.mark.parametrize("name", ALL)
def test_a_constant_series_that_starts_to_vary_raises_nothing(name: str) -> None:
    flat = [(1_700_000_000.0 + 60.0 * i, 7.0) for i in range(600)]
    rng = random.Random(3)
    varying = [(flat[-1][0] + 60.0 * (i + 1), 7.0 + rng.gauss(0, 1)) for i in range(300)]
    scores = feed(make_detector(name), [*flat, *varying])
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)
    assert max(scores[:600]) < 0.5  # a flat line is not an anomaly


def test_after_a_gap_longer_than_its_season_the_default_detector_does_not_alarm(
    make_metric_series: Callable[..., list[tuple[float, float]]],
) -> None:
    series = make_metric_series(14 * 288)  # two weeks of a daily wave at 5 min
    det = make_detector("robust_likelihood")
    feed(det, series)
    resumed = [(t + 10 * 86400.0, x) for t, x in make_metric_series(288, seed=11)]
    resumed = [(series[-1][0] + 10 * 86400.0 + 300.0 * i, x) for i, (_, x) in enumerate(resumed)]
    assert max(feed(det, resumed)) < 0.5


@pytest.mark.parametrize(("breaks", "alerts"), [(0.0, False), (3.0, True)])
def test_refractory_break_lets_a_much_larger_fault_through(breaks: float, alerts: bool) -> None:
    rng = random.Random(5)
    det = make_detector("robust_likelihood", {"refractory_break": breaks})
    points = [(60.0 * i, 50.0 * (1 + 0.05 * rng.gauss(0, 1))) for i in range(400)]
    points.append((60.0 * 400, 150.0))  # a 3x blip arms the refractory period
    points += [(60.0 * i, 50.0 * (1 + 0.05 * rng.gauss(0, 1))) for i in range(401, 460)]
    scores = feed(det, points)
    assert scores[400] >= 0.5
    fault = feed(det, [(60.0 * 460, 800.0)])[0]  # 16x, an hour later
    assert (fault >= 0.5) is alerts
