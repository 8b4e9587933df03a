"""A jump of hundreds of robust standard deviations alerts at once, however young the series."""

from __future__ import annotations

import random

import pytest

from detectors.anomaly import Direction
from detectors.events import MetricEvent
from detectors.metric import MetricDetectionConfig, MetricMonitor

Series = list[tuple[float, float]]


def cpu_series(seed: int, normal: int, shifted: int, step: float = 1.0) -> Series:
    """CPU percent sampled every ``step`` s: ~1.3 % with noise and a start-up blip, then 100 %.

    The blip (a few samples at several times the usual level, as a container starting up)
    makes the detector alert early, so the jump comes while a refractory period is running.
    """
    rng = random.Random(seed)
    t0 = 1_652_565_600.0
    points: Series = []
    for i in range(normal + shifted):
        if i >= normal:
            x = 100.0 + rng.uniform(-0.3, 0.3)
        elif 30 <= i < 34:
            x = 6.0 + rng.uniform(0.0, 1.0)
        else:
            x = max(0.0, 1.3 + rng.gauss(0.0, 0.15))
        points.append((t0 + step * i, x))
    return points


def onset_times(points: Series) -> list[float]:
    """Timestamps of the onset records (spikes and level shifts) of the default monitor."""
    monitor = MetricMonitor()
    events = [MetricEvent(t, "carts", "cpu", x, "node-1") for t, x in points]
    onsets = []
    for e in events:
        anomaly = monitor.process(e)
        if anomaly is not None and anomaly.details["phase"] == "onset":
            onsets.append(anomaly)
    return [a.timestamp for a in onsets if a.direction is not Direction.DIP]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("normal", "step"), [(300, 1.0), (1000, 1.0), (400, 10.0)])
def test_cpu_jump_to_saturation_alerts_within_seconds(seed: int, normal: int, step: float) -> None:
    points = cpu_series(seed, normal, shifted=120, step=step)
    jump = points[normal][0]
    onsets = onset_times(points)
    after = [t for t in onsets if t >= jump]
    assert after, "a jump from 1.3 % to 100 % raised nothing"
    assert after[0] <= jump + 2 * step
    assert not [t for t in onsets if points[150][0] <= t < jump], "false alert before the jump"


def test_cpu_jump_scores_above_the_threshold() -> None:
    points = cpu_series(7, 300, shifted=5)
    monitor = MetricMonitor()
    scores = [monitor.score(MetricEvent(t, "carts", "cpu", x, "node-1")) for t, x in points]
    assert scores[300] >= MetricDetectionConfig().threshold
    assert max(scores[150:300]) < MetricDetectionConfig().threshold
