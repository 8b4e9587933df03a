"""Contextual anomaly detection: how new is the context a value arrives in.

The idea is that of Smirnov's Contextual Anomaly Detector (CAD OSE, NAB 2016): a value is
quantised into a few levels, the recent levels form *contexts*, and the detector learns
which value follows which context. A value is unusual when the contexts it arrives in never
saw it follow them.

This implementation is written from that description, with its own structures:

- **Levels.** A value becomes one of ``2 ** bits`` levels over the range of the series. The
  range is the minimum and maximum of the first ``range_points`` values, widened by
  ``margin`` of its span on each side. A value outside the range takes the nearest level,
  and the range widens to take it in: the range only grows, so a learnt context keeps its
  meaning until a new extreme arrives. How far a value lies beyond the range is not this
  detector's question (``robust_likelihood``'s spatial novelty asks it, with a tolerance);
  a new extreme of plain noise would otherwise be new in every context.
- **Contexts at three resolutions.** A level's leading bits are a coarser level (the first
  bit says "upper or lower half"). For each resolution ``r`` (1 bit to ``bits`` bits) and
  each order ``k`` (1 to ``max_order``), the last ``k`` levels at resolution ``r`` are a
  context, and the detector keeps the set of levels that followed it, as a bit mask in a
  table indexed by the context (no hashing and nothing forgotten: the table has
  ``2 ** (r * k)`` one-byte entries per resolution and order, 682 for the defaults). Noise
  that flips a low bit leaves the coarse contexts confirmed; a value that never followed
  its recent past at any resolution is new in all of them.
- **Score.** Per resolution, the share of orders whose context never saw the new level
  follow it, each order weighted ``decay`` times the one before; the mean over resolutions.
  After a score of ``rest_threshold`` or more, the next ``rest_points`` scores are 0: the
  learning that follows a change is not a second anomaly (CAD's rest period). A gap longer
  than ``gap_seconds`` restarts the recent past (the table is kept).

The state of many series lives in one :class:`ContextBank` (a row each) and runs through
compiled loops, as ``robust_likelihood``'s does.

Reference: M. Smirnov, "CAD: Contextual Anomaly Detector", https://github.com/smirmik/CAD,
and its description in the Numenta Anomaly Benchmark (contextOSE). No code was taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numba import njit

from detectors.metric.base import register_detector
from detectors.metric.tables import TableBank, TableDetector, learn_range

Arr = np.ndarray

MAX_TABLE = 1 << 16
"""Most table entries a parameter set may need (per series)."""

# state columns (float64); the history of levels follows, newest last
S_LO, S_HI, S_RANGED, S_REST, S_LAST_T, S_N, S_HLEN, S_HISTORY = 0, 1, 2, 3, 4, 5, 6, 7

# parameters
P_BITS, P_ORDER, P_RANGE_POINTS, P_MARGIN, P_REST_THRESHOLD, P_REST_POINTS = 0, 1, 2, 3, 4, 5
P_GAP, P_DECAY, P_LEARN_POINTS = 6, 7, 8
P_OFFSETS = 9
"""Then the table offset of each (resolution, order), resolution-major."""


@dataclass(frozen=True, slots=True)
class ContextParams:
    """Parameters of :class:`ContextNovelty` (see there); hashable, one bank per value."""

    bits: int = 3
    max_order: int = 3
    range_points: int = 150
    learn_points: int = 450
    margin: float = 0.1
    rest_threshold: float = 0.75
    rest_points: int = 120
    gap_seconds: float = 7 * 86400.0
    decay: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 3 or self.max_order < 1:
            raise ValueError("context: bits must be 1 to 3 and max_order at least 1")
        if table_size(self.bits, self.max_order) > MAX_TABLE:
            raise ValueError(
                f"context: bits={self.bits}, max_order={self.max_order} need "
                f"{table_size(self.bits, self.max_order)} table entries (at most {MAX_TABLE})"
            )

    def changed(self) -> dict[str, Any]:
        """The parameters that differ from the defaults."""
        default = ContextParams()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


def table_size(bits: int, max_order: int) -> int:
    """Entries of the table: ``2 ** (r * k)`` for every resolution ``r`` and order ``k``.

    >>> table_size(3, 3)
    682
    """
    return sum(2 ** (r * k) for r in range(1, bits + 1) for k in range(1, max_order + 1))


@njit(cache=True, nogil=True)
def _level(state: Arr, row: int, x: float, levels: int) -> int:
    """The level of ``x`` in the learnt range; a value outside it takes the nearest one."""
    lo, span = state[row, S_LO], state[row, S_HI] - state[row, S_LO]
    position = (x - lo) / span * levels if span > 0.0 else 0.0
    if not position > 0.0:  # below the range, or not a number (an infinite range)
        return 0
    return levels - 1 if position >= levels else int(position)


@njit(cache=True, nogil=True)
def _raw(state: Arr, table: Arr, row: int, level: int, params: Arr) -> float:
    bits, order = int(params[P_BITS]), int(params[P_ORDER])
    held = int(state[row, S_HLEN])
    if held == 0:
        return 0.0
    decay, total = params[P_DECAY], 0.0
    for r in range(1, bits + 1):
        shift = bits - r  # a level at resolution r: its leading r bits
        bit = 1 << (level >> shift)
        index, weight, weights, missed = 0, 1.0, 0.0, 0.0
        for k in range(1, held + 1):
            index = (index << r) + (int(state[row, S_HISTORY + held - k]) >> shift)
            slot = int(params[P_OFFSETS + (r - 1) * order + k - 1]) + index
            if not table[row, slot] & bit:
                missed += weight
            weights += weight
            weight *= decay
        total += missed / weights
    return min(1.0, max(0.0, total / bits))


@njit(cache=True, nogil=True)
def score(state: Arr, table: Arr, row: int, x: float, t: float, params: Arr) -> float:
    """Score of ``x`` at ``t`` on one row, before it is learnt."""
    if not math.isfinite(x) or state[row, S_N] < params[P_RANGE_POINTS] + params[P_LEARN_POINTS]:
        return 0.0
    if t - state[row, S_LAST_T] > params[P_GAP] or state[row, S_REST] > 0:
        return 0.0
    return _raw(state, table, row, _level(state, row, x, 1 << int(params[P_BITS])), params)


@njit(cache=True, nogil=True)
def learn(state: Arr, table: Arr, row: int, x: float, t: float, params: Arr) -> None:
    """Learn ``x`` at ``t`` on one row."""
    if not math.isfinite(x):
        return
    if t - state[row, S_LAST_T] > params[P_GAP] and state[row, S_N] > 0:
        state[row, S_HLEN] = 0.0  # a restart of the recent past
        state[row, S_REST] = 0.0
    if t > state[row, S_LAST_T]:
        state[row, S_LAST_T] = t
    state[row, S_N] += 1.0
    if state[row, S_RANGED] < params[P_RANGE_POINTS]:
        learn_range(state, row, x, params[P_RANGE_POINTS], params[P_MARGIN])
        return
    bits, order = int(params[P_BITS]), int(params[P_ORDER])
    level = _level(state, row, x, 1 << bits)
    raw = _raw(state, table, row, level, params)
    learn_range(state, row, x, params[P_RANGE_POINTS], params[P_MARGIN])  # a new extreme
    if state[row, S_REST] > 0:
        state[row, S_REST] -= 1.0
    elif raw >= params[P_REST_THRESHOLD]:
        state[row, S_REST] = params[P_REST_POINTS]
    held = int(state[row, S_HLEN])
    for r in range(1, bits + 1):
        shift = bits - r
        bit = 1 << (level >> shift)
        index = 0
        for k in range(1, held + 1):
            index = (index << r) + (int(state[row, S_HISTORY + held - k]) >> shift)
            slot = int(params[P_OFFSETS + (r - 1) * order + k - 1]) + index
            table[row, slot] |= bit
    if held == order:
        for k in range(order - 1):
            state[row, S_HISTORY + k] = state[row, S_HISTORY + k + 1]
        held -= 1
    state[row, S_HISTORY + held] = float(level)
    state[row, S_HLEN] = float(held + 1)


@njit(cache=True, nogil=True)
def step_many(state: Arr, table: Arr, rows: Arr, xs: Arr, ts: Arr, params: Arr, out: Arr) -> None:
    """Score then learn each point in order; ``out`` gets the score (and NaN, NaN)."""
    for i in range(rows.shape[0]):
        out[i, 0] = score(state, table, rows[i], xs[i], ts[i], params)
        out[i, 1] = np.nan
        out[i, 2] = np.nan
        learn(state, table, rows[i], xs[i], ts[i], params)


class ContextBank(TableBank):
    """The state of many ``context`` series of one parameter set, a row each.

    >>> bank = ContextBank(ContextParams())
    >>> a = bank.allocate()
    >>> xs = np.array([float(i % 10) for i in range(1000)] + [4.5])  # 4.5 after 9
    >>> out = bank.step(np.full(1001, a), xs, np.arange(1001) * 60.0)
    >>> bool(out[600:1000, 0].max() < 0.5 <= out[1000, 0])
    True
    """

    name = "context"
    kernel_score = score
    kernel_learn = learn
    kernel_step_many = step_many

    def __init__(self, params: ContextParams, capacity: int = 1) -> None:
        offsets, at = [], 0
        for r in range(1, params.bits + 1):
            for k in range(1, params.max_order + 1):
                offsets.append(float(at))
                at += 2 ** (r * k)
        vector = np.array(
            [
                params.bits,
                params.max_order,
                params.range_points,
                params.margin,
                params.rest_threshold,
                params.rest_points,
                params.gap_seconds,
                params.decay,
                params.learn_points,
                *offsets,
            ],
            dtype=np.float64,
        )
        fresh = np.zeros(S_HISTORY + params.max_order)
        fresh[[S_LO, S_HI, S_LAST_T]] = (math.inf, -math.inf, -math.inf)
        super().__init__(params, vector, fresh, at, np.uint8, capacity)

    def new_detector(self) -> ContextNovelty:
        return ContextNovelty.view(self, self.allocate())


@register_detector("context")
class ContextNovelty(TableDetector):
    """Novelty of quantised contexts at three resolutions, as a score in 0..1.

    Parameters
    ----------
    bits
        Bits of a level: ``2 ** bits`` levels over the learnt range (CAD uses 3).
    max_order
        Longest context, in values.
    range_points
        Values that learn the initial range.
    learn_points
        Values after those that only learn contexts (scores are 0 until then: at first
        every context is new).
    margin
        Share of the range added on each side when it is learnt or widened.
    rest_threshold, rest_points
        A score at or above the threshold silences the next ``rest_points`` scores.
    gap_seconds
        A gap longer than this restarts the recent past.
    decay
        Weight of each order relative to the one before.

    >>> det = ContextNovelty()
    >>> scores = []
    >>> for i in range(1000):
    ...     x = 4.5 if i == 900 else float(i % 10)  # 4.5 where 0 follows 9
    ...     scores.append(det.score_one(x, 60.0 * i))
    ...     det.learn_one(x, 60.0 * i)
    >>> max(scores[600:900]) < 0.5 <= scores[900]
    True
    """

    bank: ContextBank
    bank_class = ContextBank
    params_class = ContextParams
