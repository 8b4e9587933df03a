"""Fixtures for the metric detector tests: small generated series, no external data."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest


def seasonal_series(n: int, *, step: float = 300.0, seed: int = 7) -> list[tuple[float, float]]:
    """``(timestamp, value)`` of a noisy daily wave sampled every ``step`` seconds."""
    rng = random.Random(seed)
    start = 1_700_000_000.0
    out = []
    for i in range(n):
        t = start + i * step
        day = 2 * math.pi * (t % 86400.0) / 86400.0
        out.append((t, 50.0 + 10.0 * math.sin(day) + rng.gauss(0.0, 1.0)))
    return out


@pytest.fixture
def metric_series() -> list[tuple[float, float]]:
    """Three days of a noisy daily wave at 5-minute steps."""
    return seasonal_series(864)


@pytest.fixture
def make_metric_series() -> Callable[..., list[tuple[float, float]]]:
    """The generator behind :func:`metric_series`, for other lengths and seeds."""
    return seasonal_series
