"""Adaptive resonance: is the recent shape of a series like any shape it has learnt.

The idea is that of Hampton's ARTime (NAB 2022), after Carpenter and Grossberg's fuzzy ART:
windows of recent values are learnt online as *categories*, a window that resonates with no
category is new, and the vigilance that decides resonance adapts to the series. This
implementation is written from those published descriptions, with its own structures:

- **Windows.** The last ``window`` blocks of ``stride`` values (each block its mean), scaled
  to 0..1 over the range of the series: the minimum and maximum of the first
  ``range_points`` values, widened by ``margin`` of its span on each side, and widened again
  by a new extreme (as ``context`` does). A window is complement coded (``a`` and
  ``1 - a``), so a category is a box in window space.
- **Categories** (fuzzy ART with fast learning). The match of a window ``I`` with a category
  ``w`` is ``|I ∧ w| / |I|`` (``∧`` the element-wise minimum, ``|·|`` the sum): 1 inside a
  point-sized box, lower the larger the box must grow to take the window in. The best
  match is the window's *similarity*. If it reaches the vigilance, the window resonates and
  the category learns it (``w ← beta (I ∧ w) + (1 - beta) w``: its box grows towards the
  window); otherwise a new category starts at the window. At most ``categories`` are kept;
  a new one then replaces the one least recently resonated with.
- **Adaptive vigilance.** The similarity of the series' windows has a mean and a mean
  absolute deviation (exponentially weighted, smoothing ``sim_alpha``); the vigilance is
  ``vigilance_z`` deviations below the mean, within ``[rho_min, rho_max]``. A noisy series
  keeps larger boxes and a lower vigilance than a clean one, and a window is new only by
  the measure of its own series.
- **Score.** A new window scores from 0.5 up, by how far its similarity falls below the
  vigilance, in deviations (``0.5 + 0.5 (d / (d + vigilance_z))``); a window that resonates
  scores below 0.5 by how close it came. After a score of 0.5 or more the next
  ``rest_points`` scores are 0 (the categories that a change brings are learnt, not
  reported again). Scores are 0 for the first ``range_points + learn_points`` values, and a
  gap longer than ``gap_seconds`` restarts the window (the categories are kept).

The state of many series lives in one :class:`ResonanceBank` (a row each: a few floats and
the window, then the categories) and runs through compiled loops, as the other banked
detectors' do.

References: M. Hampton, "ARTime", NAB (2022), https://github.com/markNZed/ARTimeNAB.jl
(its description; the code is AGPL and none was taken); G. A. Carpenter, S. Grossberg and
D. B. Rosen, "Fuzzy ART", Neural Networks 4 (1991).
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

# state columns (float64); the ring of recent values follows
S_LO, S_HI, S_RANGED, S_REST, S_LAST_T, S_N, S_MEAN, S_DEV = 0, 1, 2, 3, 4, 5, 6, 7
S_SEEN, S_CATS, S_CLOCK, S_HELD, S_RING = 8, 9, 10, 11, 12

# parameters
P_WINDOW, P_STRIDE, P_RANGE_POINTS, P_LEARN_POINTS, P_MARGIN, P_CATEGORIES = 0, 1, 2, 3, 4, 5
P_Z, P_ALPHA, P_RHO_MIN, P_RHO_MAX, P_BETA, P_REST_POINTS, P_GAP, P_MIN_DEV = (
    6, 7, 8, 9, 10, 11, 12, 13,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResonanceParams:
    """Parameters of :class:`AdaptiveResonance` (see there); hashable, one bank per value."""

    window: int = 8
    stride: int = 1
    range_points: int = 150
    learn_points: int = 450
    margin: float = 0.1
    categories: int = 32
    vigilance_z: float = 4.0
    sim_alpha: float = 0.01
    rho_min: float = 0.5
    rho_max: float = 0.98
    beta: float = 1.0
    rest_points: int = 120
    gap_seconds: float = 7 * 86400.0
    min_dev: float = 0.002

    def __post_init__(self) -> None:
        if self.window < 1 or self.stride < 1 or self.categories < 1:
            raise ValueError("resonance: window, stride and categories must be at least 1")
        if not 0.0 < self.beta <= 1.0 or not 0.0 <= self.rho_min <= self.rho_max <= 1.0:
            raise ValueError("resonance: need 0 < beta <= 1 and 0 <= rho_min <= rho_max <= 1")

    def changed(self) -> dict[str, Any]:
        """The parameters that differ from the defaults."""
        default = ResonanceParams()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


@njit(cache=True, nogil=True)
def _window(state: Arr, row: int, x: float, params: Arr, out: Arr) -> bool:
    """The complement-coded window that ends with ``x`` (``False`` if the ring is short)."""
    window, stride = int(params[P_WINDOW]), int(params[P_STRIDE])
    span = window * stride
    held = int(state[row, S_HELD])
    if held < span - 1:
        return False
    lo, width = state[row, S_LO], state[row, S_HI] - state[row, S_LO]
    for b in range(window):
        total = 0.0
        for j in range(stride):
            k = b * stride + j  # position in the window, oldest first; the last is x
            total += x if k == span - 1 else state[row, S_RING + held - (span - 1) + k]
        a = (total / stride - lo) / width if width > 0.0 else 0.5
        a = 0.0 if not a > 0.0 else (1.0 if a > 1.0 else a)
        out[b] = a
        out[window + b] = 1.0 - a
    return True


@njit(cache=True, nogil=True)
def _best(table: Arr, row: int, window: Arr, cats: int, size: int) -> tuple[int, float]:
    """The category that matches ``window`` best, and its match."""
    best, best_match = -1, -1.0
    half = size // 2
    for c in range(cats):
        base = c * (size + 1)
        total = 0.0
        for i in range(size):
            w = table[row, base + i]
            total += window[i] if window[i] < w else w
        match = total / half
        if match > best_match:
            best, best_match = c, match
    return best, best_match


@njit(cache=True, nogil=True)
def _vigilance(state: Arr, row: int, params: Arr) -> float:
    if state[row, S_SEEN] == 0.0:
        return params[P_RHO_MAX]
    rho = state[row, S_MEAN] - params[P_Z] * max(state[row, S_DEV], params[P_MIN_DEV])
    return min(params[P_RHO_MAX], max(params[P_RHO_MIN], rho))


@njit(cache=True, nogil=True)
def _raw(state: Arr, table: Arr, row: int, x: float, params: Arr, window: Arr) -> float:
    """Score of the window ending in ``x`` against the categories (NaN without a window)."""
    if not _window(state, row, x, params, window):
        return math.nan
    cats = int(state[row, S_CATS])
    if cats == 0:
        return 1.0
    _, match = _best(table, row, window, cats, window.shape[0])
    rho = _vigilance(state, row, params)
    dev = max(state[row, S_DEV], params[P_MIN_DEV])
    z = params[P_Z]
    if match < rho:
        d = (rho - match) / dev
        return 0.5 + 0.5 * d / (d + z)
    below = max(0.0, state[row, S_MEAN] - match) / dev
    return 0.5 * min(below / z, 0.999)


@njit(cache=True, nogil=True)
def score(state: Arr, table: Arr, row: int, x: float, t: float, params: Arr) -> float:
    """Score of ``x`` at ``t`` on one row, before it is learnt."""
    if not math.isfinite(x) or state[row, S_N] < params[P_RANGE_POINTS] + params[P_LEARN_POINTS]:
        return 0.0
    if t - state[row, S_LAST_T] > params[P_GAP] or state[row, S_REST] > 0:
        return 0.0
    window = np.empty(2 * int(params[P_WINDOW]))
    value = _raw(state, table, row, x, params, window)
    return 0.0 if math.isnan(value) else value


@njit(cache=True, nogil=True)
def _push(state: Arr, row: int, x: float, span: int) -> None:
    held = int(state[row, S_HELD])
    if held == span:
        for k in range(span - 1):
            state[row, S_RING + k] = state[row, S_RING + k + 1]
        held -= 1
    state[row, S_RING + held] = x
    state[row, S_HELD] = float(held + 1)


@njit(cache=True, nogil=True)
def learn(state: Arr, table: Arr, row: int, x: float, t: float, params: Arr) -> None:
    """Learn ``x`` at ``t`` on one row."""
    if not math.isfinite(x):
        return
    span = int(params[P_WINDOW]) * int(params[P_STRIDE])
    if t - state[row, S_LAST_T] > params[P_GAP] and state[row, S_N] > 0:
        state[row, S_HELD] = 0.0  # a restart of the window
        state[row, S_REST] = 0.0
    if t > state[row, S_LAST_T]:
        state[row, S_LAST_T] = t
    scoring = state[row, S_N] >= params[P_RANGE_POINTS] + params[P_LEARN_POINTS]
    state[row, S_N] += 1.0
    if state[row, S_RANGED] < params[P_RANGE_POINTS]:
        learn_range(state, row, x, params[P_RANGE_POINTS], params[P_MARGIN])
        _push(state, row, x, span)
        return
    size = 2 * int(params[P_WINDOW])
    window = np.empty(size)
    if _window(state, row, x, params, window):
        cats = int(state[row, S_CATS])
        best, match = (-1, -1.0) if cats == 0 else _best(table, row, window, cats, size)
        rho = _vigilance(state, row, params)
        clock = state[row, S_CLOCK] + 1.0
        state[row, S_CLOCK] = clock
        if best < 0 or match < rho:
            if cats < int(params[P_CATEGORIES]):
                best = cats
                state[row, S_CATS] = float(cats + 1)
            else:  # replace the category least recently resonated with
                best, oldest = 0, math.inf
                for c in range(cats):
                    used = table[row, c * (size + 1) + size]
                    if used < oldest:
                        best, oldest = c, used
            base = best * (size + 1)
            for i in range(size):
                table[row, base + i] = window[i]
            if scoring and state[row, S_REST] <= 0:
                state[row, S_REST] = params[P_REST_POINTS] + 1.0
        else:
            base = best * (size + 1)
            beta = params[P_BETA]
            for i in range(size):
                w = table[row, base + i]
                low = window[i] if window[i] < w else w
                table[row, base + i] = beta * low + (1.0 - beta) * w
        table[row, best * (size + 1) + size] = clock
        if match >= 0.0:  # the similarity's mean and deviation, a new window at the vigilance
            seen = max(match, rho) if state[row, S_SEEN] > 0 else match
            alpha = max(params[P_ALPHA], 1.0 / (state[row, S_SEEN] + 1.0))
            if state[row, S_SEEN] == 0.0:
                state[row, S_MEAN] = seen
            else:
                state[row, S_DEV] += alpha * (abs(seen - state[row, S_MEAN]) - state[row, S_DEV])
                state[row, S_MEAN] += alpha * (seen - state[row, S_MEAN])
            state[row, S_SEEN] += 1.0
    learn_range(state, row, x, params[P_RANGE_POINTS], params[P_MARGIN])  # a new extreme
    if state[row, S_REST] > 0:
        state[row, S_REST] -= 1.0
    _push(state, row, x, span)


@njit(cache=True, nogil=True)
def step_many(state: Arr, table: Arr, rows: Arr, xs: Arr, ts: Arr, params: Arr, out: Arr) -> None:
    """Score then learn each point in order; ``out`` gets the score (and NaN, NaN)."""
    for i in range(rows.shape[0]):
        out[i, 0] = score(state, table, rows[i], xs[i], ts[i], params)
        out[i, 1] = np.nan
        out[i, 2] = np.nan
        learn(state, table, rows[i], xs[i], ts[i], params)


class ResonanceBank(TableBank):
    """The state of many ``resonance`` series of one parameter set, a row each.

    >>> bank = ResonanceBank(ResonanceParams())
    >>> a = bank.allocate()
    >>> xs = np.array([float(i % 10) for i in range(1000)] + [4.5, 4.5, 4.5])
    >>> out = bank.step(np.full(1003, a), xs, np.arange(1003) * 60.0)
    >>> bool(out[600:1000, 0].max() < 0.5 <= out[1000:, 0].max())
    True
    """

    name = "resonance"
    kernel_score = score
    kernel_learn = learn
    kernel_step_many = step_many

    def __init__(self, params: ResonanceParams, capacity: int = 1) -> None:
        vector = np.array(
            [
                params.window,
                params.stride,
                params.range_points,
                params.learn_points,
                params.margin,
                params.categories,
                params.vigilance_z,
                params.sim_alpha,
                params.rho_min,
                params.rho_max,
                params.beta,
                params.rest_points,
                params.gap_seconds,
                params.min_dev,
            ],
            dtype=np.float64,
        )
        fresh = np.zeros(S_RING + params.window * params.stride)
        fresh[[S_LO, S_HI, S_LAST_T]] = (math.inf, -math.inf, -math.inf)
        self._entries = params.categories * (2 * params.window + 1)
        super().__init__(params, vector, fresh, self._entries, np.float64, capacity)

    def new_detector(self) -> AdaptiveResonance:
        return AdaptiveResonance.view(self, self.allocate())

    def row_state(self, row: int) -> tuple[bytes, bytes]:
        """The bytes of one row: its state, then its categories (only those in use)."""
        used = int(self.state[row, S_CATS]) * (2 * self.params.window + 1)
        return self.state[row].tobytes(), self.table[row, :used].tobytes()

    def load_row(self, row: int, state: bytes, table: bytes) -> None:
        """Inverse of :meth:`row_state`."""
        if len(state) != 8 * self.state.shape[1] or len(table) > 8 * self._entries:
            raise ValueError("a resonance row of the wrong size for its parameters")
        self.state[row] = np.frombuffer(state, dtype=np.float64)
        categories = np.frombuffer(table, dtype=np.float64)
        if categories.shape[0] != int(self.state[row, S_CATS]) * (2 * self.params.window + 1):
            raise ValueError("a resonance row whose categories do not match its count")
        self.table[row] = 0.0
        self.table[row, : categories.shape[0]] = categories


@register_detector("resonance")
class AdaptiveResonance(TableDetector):
    """Fuzzy-ART categories of recent windows with an adaptive vigilance, as a score.

    Parameters
    ----------
    window, stride
        A window is ``window`` blocks of ``stride`` values (each block its mean).
    range_points
        Values that learn the initial range.
    learn_points
        Values after those that only learn (scores are 0 until then).
    margin
        Share of the range added on each side when it is learnt or widened.
    categories
        Categories kept per series.
    vigilance_z, sim_alpha, rho_min, rho_max
        The vigilance: ``vigilance_z`` mean absolute deviations below the mean similarity
        (smoothing ``sim_alpha``), within ``[rho_min, rho_max]``.
    beta
        Learning rate of a category (1 is fuzzy ART's fast learning).
    rest_points
        Scores after a new window that are 0.
    gap_seconds
        A gap longer than this restarts the window.
    min_dev
        Floor of the similarity's deviation.

    >>> det = AdaptiveResonance()
    >>> scores = []
    >>> for i in range(1000):
    ...     x = 4.5 if 900 <= i < 903 else float(i % 10)  # three values off the sawtooth
    ...     scores.append(det.score_one(x, 60.0 * i))
    ...     det.learn_one(x, 60.0 * i)
    >>> max(scores[600:900]) < 0.5 <= max(scores[900:903])
    True
    """

    bank: ResonanceBank
    bank_class = ResonanceBank
    params_class = ResonanceParams
