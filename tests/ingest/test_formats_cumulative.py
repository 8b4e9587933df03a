"""The bounded store that turns cumulative counters into rates."""

from __future__ import annotations

import pytest

from ingest.formats.cumulative import CumulativeState
from ingest.formats.histogram import explicit_quantiles, exponential_quantiles


def test_rate_from_consecutive_points():
    state = CumulativeState()
    assert state.increase("a", 10.0, (100.0,)) is None
    increase = state.increase("a", 20.0, (150.0,))
    assert increase is not None and increase.rate() == 5.0


def test_out_of_order_points_are_ignored_and_keep_the_newer_one():
    state = CumulativeState()
    state.increase("a", 20.0, (100.0,))
    assert state.increase("a", 10.0, (50.0,)) is None
    assert state.increase("a", 30.0, (120.0,)).rate() == 2.0


def test_derive_may_go_down_when_not_monotonic():
    state = CumulativeState()
    state.increase("d", 0.0, (100.0,), monotonic=False)
    assert state.increase("d", 10.0, (50.0,), monotonic=False).rate() == -5.0


def test_bounded_least_recently_updated_first():
    state = CumulativeState(max_series=2)
    state.increase("a", 1.0, (1.0,))
    state.increase("b", 1.0, (1.0,))
    state.increase("a", 2.0, (2.0,))  # a is now the most recent
    state.increase("c", 1.0, (1.0,))  # evicts b
    assert len(state) == 2
    assert state.increase("b", 3.0, (5.0,)) is None  # b was forgotten; now evicts a
    assert state.increase("c", 3.0, (3.0,)) is not None
    assert state.increase("a", 3.0, (3.0,)) is None
    with pytest.raises(ValueError):
        CumulativeState(max_series=0)


def test_layout_change_is_a_reset():
    state = CumulativeState()
    state.increase("h", 1.0, (1.0, 2.0))
    assert state.increase("h", 2.0, (1.0, 2.0, 3.0)) is None


def test_explicit_quantiles_against_hand_computed_values():
    # 10 values in (0, 10], 30 in (10, 20], none above: p50 is 1/3 into (10, 20]
    q50, q90 = explicit_quantiles([0.5, 0.9], [10.0, 20.0], [10, 30, 0])
    assert q50 == pytest.approx(10.0 + 10.0 * (10.0 / 30.0))
    assert q90 == pytest.approx(10.0 + 10.0 * (26.0 / 30.0))
    # a known maximum closes the open last bucket
    assert explicit_quantiles([1.0], [10.0], [0, 4], maximum=14.0) == [14.0]


def test_exponential_quantiles_with_negative_and_zero_buckets():
    # scale 1: base sqrt(2); 2 negatives in [-2, -sqrt2), 2 zeros, 4 in (1, sqrt2]
    values = exponential_quantiles(
        [0.1, 0.4, 0.9],
        scale=1,
        zero_count=2,
        positive_offset=0,
        positive_counts=[4],
        negative_offset=1,
        negative_counts=[2],
    )
    assert -2.0 <= values[0] <= -(2**0.5)
    assert values[1] == 0.0
    assert 1.0 < values[2] <= 2**0.5
