"""SampleRing: growing buffers hold exactly what a full-size ring would."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rca.baseline import SampleRing


@pytest.mark.parametrize("capacity", [8, 16, 20, 600])
@pytest.mark.parametrize("samples", [0, 1, 15, 16, 17, 40, 600, 1500])
def test_ring_keeps_the_latest_samples_whatever_its_growth(capacity: int, samples: int) -> None:
    ring = SampleRing(capacity)
    seen = []
    for i in range(samples):
        t, v = 10.0 * i, math.nan if i % 13 == 5 else float(i % 7)
        ring.add(t, v)
        seen.append((t, v))
    kept = seen[-capacity:] if samples else []
    finite = [(t, v) for t, v in kept if math.isfinite(v)]
    times, values = ring.samples_between(-math.inf, math.inf)
    assert times.tolist() == [t for t, _ in finite]
    assert values.tolist() == [v for _, v in finite]
    middle = 10.0 * (samples // 2)
    assert sorted(ring.values_between(middle, math.inf).tolist()) == sorted(
        v for t, v in finite if t >= middle
    )
    assert ring.count == min(samples, capacity)
    assert ring.nbytes <= 12 * capacity
    data = ring.to_dict()
    assert data["capacity"] == capacity
    assert data["t"] == [t for t, _ in kept]
    again = SampleRing.from_dict(data)
    assert again.samples_between(-math.inf, math.inf)[0].tolist() == times.tolist()


def test_a_young_series_holds_little_memory() -> None:
    ring = SampleRing(600)
    for i in range(3):
        ring.add(float(i), 1.0)
    assert ring.nbytes < 12 * 600 // 10
    assert np.isnan(ring.values_between(-math.inf, math.inf)).sum() == 0
