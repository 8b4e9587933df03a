"""The prediction benchmark's machinery, on generated noise (no NAB files needed)."""

from __future__ import annotations

import math
import random

from benchmarks.predict import build_series, run, summarise
from detectors.forecast import ForecastRule, Limit

HOUR = 3600.0


def fake_nab() -> dict[str, tuple[list[float], list[float]]]:
    """Two weeks at 5 min: white noise, and white noise on a daily wave."""
    rng = random.Random(0)
    times = [1_400_000_000.0 + i * 300.0 for i in range(14 * 288)]
    white = [10 + rng.gauss(0, 1) for _ in times]
    daily = [v + 3 * math.sin(2 * math.pi * i / 288) for i, v in enumerate(white)]
    return {"a/noisy.csv": (times, white), "b/daily.csv": (times, daily)}


def test_series_have_the_promised_truth() -> None:
    horizon = 4 * HOUR
    series = build_series(
        fake_nab(), ["a/noisy.csv", "b/daily.csv"], seed=1, horizon=horizon, margin=1.5
    )
    positives = [s for s in series if s.crossing is not None]
    assert len(positives) == len(series) // 2 == 6
    for s in positives:
        assert s.trend_start >= s.times[0] + 2 * 86400  # warm-up before the trend
        assert horizon * 0.99 <= s.crossing - s.trend_start <= 12 * horizon * 1.01
        assert s.times[-1] <= s.crossing + HOUR
    for s in series:
        assert all(0.0 <= v <= 1.0 for v in s.values)


def test_summary_counts_leads_and_false_predictions() -> None:
    horizon = 4 * HOUR
    series = build_series(fake_nab(), ["a/noisy.csv"], seed=2, horizon=horizon, margin=1.5)
    rule = ForecastRule(
        name="c", metric="used_ratio", limit=Limit(value=0.95), horizon_seconds=horizon
    )
    outcomes, _, points = run(series, rule)
    figures = summarise(outcomes, horizon)
    assert points == sum(len(s.times) for s in series)
    assert figures["positives"] == 3
    assert 0.0 <= figures["share_30min"] <= 1.0
    assert figures["false_per_series_day"] == figures["false"] / figures["series_days"]
    # white noise and clean trends: every crossing is seen coming, well ahead
    assert figures["share_30min"] == 1.0 and figures["median_lead_over_horizon"] >= 0.5
