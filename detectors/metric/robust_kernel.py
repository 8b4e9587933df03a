"""Compiled steps of ``robust_likelihood`` over a bank of series (one row per series).

The state of every series of one parameter set lives in two arrays, one row per series, so
that a batch of points from many series runs through one compiled loop (:func:`step_many`)
instead of one Python call per point. The same functions serve a single detector (a bank
of one row): there is one implementation of the model.

Row layout
----------
``state`` (float64)
    the ``F_*`` columns below (counts are stored as floats, exact below 2**53; ``F_PAT_*``
    hold the change-of-pattern CUSUM and the long-run mean and variance of the log absolute
    error, all 0 before the first error; ``F_DEP_*`` the season-departure profile's count of
    values, first time, slow level, mean absolute error and two-sided CUSUM, all 0 before
    the first value), then four
    columns per seasonal profile (``PROFILE_COLUMNS``: its deseasonalised level, mean
    absolute error, first and last time), then the short ring of raw scores
    (``short_window`` columns, from ``params[P_RING_AT]``).
``buckets`` (float64)
    the buckets of every profile side by side, then those of the season-departure profile
    (as many as the longest profile's, from ``params[P_DEP_AT]``); NaN marks a bucket that
    has had no value.

Parameters are one float64 vector: the ``P_*`` entries, then ``(period, buckets, offset in
buckets)`` per profile from ``P_SEASONS``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

Arr = np.ndarray

LOG_FLOOR = math.log(1.0 - 0.9999999999)
MIN_PERIODS = 2.0
"""Periods a profile must span before it may be trusted."""

# state columns
F_T0, F_LEVEL, F_ERR, F_LO, F_HI, F_RING_SUM = 0, 1, 2, 3, 4, 5
F_AVG_MEAN, F_AVG_VAR, F_AVG_PEAK, F_Z_PEAK = 6, 7, 8, 9
F_N, F_RING_I, F_QUIET = 10, 11, 12
F_PAT_N, F_PAT_MEAN, F_PAT_VAR, F_PAT_SUM = 13, 14, 15, 16
F_DEP_N, F_DEP_T0, F_DEP_LEVEL, F_DEP_ERR, F_DEP_UP, F_DEP_DOWN = 17, 18, 19, 20, 21, 22
F_PROFILES = 23
PROFILE_COLUMNS = 4
PF_LEVEL, PF_ERR, PF_T0, PF_TLAST = 0, 1, 2, 3

# parameters
(
    P_LEVEL_ALPHA,
    P_ERROR_ALPHA,
    P_Z_HALF,
    P_LONG_ALPHA,
    P_MIN_STD,
    P_NOVEL_Z,
    P_PEAK_DECAY,
    P_SPATIAL_TOLERANCE,
    P_SEASON_ALPHA,
    P_RANGE_SECONDS,
    P_SPATIAL_NOISE,
    P_GATE_POWER,
    P_EXTREME_Z,
    P_SHORT_WINDOW,
    P_REFRACTORY,
    P_RANGE_POINTS,
    P_RING_AT,
    P_PROFILES,
    P_PATTERN_ALPHA,
    P_PATTERN_DRIFT,
    P_PATTERN_LIMIT,
    P_ERROR_GATE,
    P_DEP_ALPHA,
    P_DEP_DRIFT,
    P_DEP_LIMIT,
    P_DEP_AT,
    P_DEP_PERIOD,
    P_DEP_BINS,
    P_REFRACTORY_BREAK,
) = range(29)
P_SEASONS = 29

EXPECTATION_SCALE = 1.2533
"""Mean absolute error to standard deviation of a normal distribution (sqrt(pi / 2))."""

DEPARTURE_CLIP = 4.0
"""Largest step of the season-departure CUSUM, in mean absolute errors (a lone spike is not
a departure)."""

DEPARTURE_SEASON_ALPHA = 0.1
"""Smoothing of the season-departure profile's buckets, slower than the predicting
profiles', so that an unusual day does not become the season within the hour."""


def state_columns(profiles: int, short_window: int) -> int:
    """Width of a state row."""
    return F_PROFILES + PROFILE_COLUMNS * profiles + short_window


def fresh_state(count: int, profiles: int, short_window: int) -> np.ndarray:
    """State of ``count`` series that have seen nothing."""
    state = np.zeros((count, state_columns(profiles, short_window)))
    state[:, F_LO] = math.inf
    state[:, F_HI] = -math.inf
    for p in range(profiles):
        base = F_PROFILES + PROFILE_COLUMNS * p
        state[:, base + PF_LEVEL] = math.nan
        state[:, base + PF_T0] = math.nan
        state[:, base + PF_TLAST] = math.nan
    return state


@njit(cache=True, nogil=True)
def spread_tail(tail: float) -> float:
    """Spread a tail probability over 0..1: 1e-5 -> 0.5, 1e-10 -> 1 (as HTM's log
    likelihood), then on, more slowly, below 1 so that rarer points still rank higher."""
    s = math.log(tail + 1e-300) / LOG_FLOOR
    if s <= 0.9:
        return max(s, 0.0)
    return 0.9 + 0.1 * math.tanh((s - 0.9) / 2.0)


@njit(cache=True, nogil=True)
def _bucket(t: float, period: float, bins: int) -> int:
    return int((t % period) / period * bins) % bins


@njit(cache=True, nogil=True)
def best(state: Arr, buckets: Arr, row: int, t: float, params: Arr) -> tuple[float, float]:
    """Prediction and mean absolute error of the trusted model at time ``t``."""
    pred = state[row, F_LEVEL]
    err = state[row, F_ERR]
    for p in range(int(params[P_PROFILES])):
        period = params[P_SEASONS + 3 * p]
        base = F_PROFILES + PROFILE_COLUMNS * p
        perr = state[row, base + PF_ERR]
        if perr >= err or state[row, base + PF_TLAST] - state[row, base + PF_T0] < (
            MIN_PERIODS * period
        ):
            continue
        k = int(params[P_SEASONS + 3 * p + 2]) + _bucket(
            t, period, int(params[P_SEASONS + 3 * p + 1])
        )
        value = buckets[row, k]
        if not math.isnan(value):
            pred = state[row, base + PF_LEVEL] + value
            err = perr
    return pred, err


@njit(cache=True, nogil=True)
def _pattern_sum(state: Arr, row: int, u: float, params: Arr) -> float:
    """Upper CUSUM of the standardised log absolute error once ``u`` is added (0 until the
    long-run mean and variance are learnt)."""
    if state[row, F_PAT_N] * params[P_ERROR_ALPHA] < 1.0:
        return 0.0
    d = (u - state[row, F_PAT_MEAN]) / max(math.sqrt(state[row, F_PAT_VAR]), 0.1)
    return max(0.0, state[row, F_PAT_SUM] + d - params[P_PATTERN_DRIFT])


@njit(cache=True, nogil=True)
def _cusum_score(total: float, limit: float) -> float:
    """Score of a CUSUM value: 0 up to the limit, then from 0.5 towards 0.9."""
    if not total > limit:
        return 0.0
    return 0.5 + 0.4 * math.tanh((total - limit) / limit)


@njit(cache=True, nogil=True)
def _learn_pattern(state: Arr, row: int, u: float, params: Arr, may_alert: bool) -> None:
    """Update the CUSUM (restarted when it alerts) and the long-run distribution of the log
    absolute error ``u`` of the point (see :func:`_evaluate`)."""
    total = _pattern_sum(state, row, u, params)
    alerted = may_alert and _cusum_score(total, params[P_PATTERN_LIMIT]) >= 0.5
    state[row, F_PAT_SUM] = 0.0 if alerted else total
    m = state[row, F_PAT_N]
    if m == 0.0:
        state[row, F_PAT_MEAN] = u
        state[row, F_PAT_VAR] = 0.0
    else:
        alpha = params[P_PATTERN_ALPHA]
        a = alpha if m * alpha > 1.0 else 1.0 / (m + 1.0)
        d = u - state[row, F_PAT_MEAN]
        state[row, F_PAT_MEAN] += a * d
        state[row, F_PAT_VAR] = (1 - a) * (state[row, F_PAT_VAR] + a * d * d)
    state[row, F_PAT_N] = m + 1.0


@njit(cache=True, nogil=True)
def _seasonal(state: Arr, row: int, params: Arr) -> bool:
    """Whether a seasonal profile predicts better than the level model (and spans two
    periods): the series has a season."""
    err = state[row, F_ERR]
    for p in range(int(params[P_PROFILES])):
        base = F_PROFILES + PROFILE_COLUMNS * p
        if state[row, base + PF_ERR] < err and state[row, base + PF_TLAST] - state[
            row, base + PF_T0
        ] >= (MIN_PERIODS * params[P_SEASONS + 3 * p]):
            return True
    return False


@njit(cache=True, nogil=True)
def _departure_bucket(state: Arr, buckets: Arr, row: int, t: float, params: Arr) -> float:
    """Bucket of the season-departure profile at ``t`` once it spans two periods (NaN
    before, and for a bucket that has had no value)."""
    period = params[P_DEP_PERIOD]
    if state[row, F_DEP_N] == 0.0 or t - state[row, F_DEP_T0] < MIN_PERIODS * period:
        return math.nan
    k = int(params[P_DEP_AT]) + _bucket(t, period, int(params[P_DEP_BINS]))
    return buckets[row, k]


@njit(cache=True, nogil=True)
def _departure_sums(
    state: Arr, buckets: Arr, row: int, x: float, t: float, params: Arr
) -> tuple[float, float]:
    """Upper and lower CUSUM of the season-departure profile's error once ``x`` is added
    (0 until the profile spans two periods, and while the series has no season)."""
    if params[P_DEP_BINS] < 1.0 or state[row, F_DEP_N] * params[P_ERROR_ALPHA] < 1.0:
        return 0.0, 0.0
    if not _seasonal(state, row, params):
        return 0.0, 0.0
    offset = _departure_bucket(state, buckets, row, t, params)
    scale = state[row, F_DEP_ERR]
    if math.isnan(offset) or scale <= 0.0:
        return 0.0, 0.0
    r = (x - offset - state[row, F_DEP_LEVEL]) / scale
    r = max(min(r, DEPARTURE_CLIP), -DEPARTURE_CLIP)
    drift = params[P_DEP_DRIFT]
    return (
        max(0.0, state[row, F_DEP_UP] + r - drift),
        max(0.0, state[row, F_DEP_DOWN] - r - drift),
    )


@njit(cache=True, nogil=True)
def _learn_departure(
    state: Arr,
    buckets: Arr,
    row: int,
    x: float,
    t: float,
    params: Arr,
    sums: tuple[float, float],
    may_alert: bool,
) -> None:
    """Learn ``x`` in the season-departure CUSUMs (restarted when they alert; ``sums`` are
    their values with ``x``, from :func:`_departure_sums`) and profile.

    The profile is a copy of the longest seasonal profile whose deseasonalised level is
    slow (``departure_alpha``): its error stays on one side when the whole series moves, for
    hours, away from what the season and the last weeks lead to expect, such as a holiday
    in a traffic series, even inside the usual range of values.
    """
    if params[P_DEP_BINS] < 1.0:
        return
    up, down = sums
    if may_alert and _cusum_score(max(up, down), params[P_DEP_LIMIT]) >= 0.5:
        up = down = 0.0
    state[row, F_DEP_UP] = up
    state[row, F_DEP_DOWN] = down
    n = state[row, F_DEP_N]
    if n == 0.0:
        state[row, F_DEP_T0] = t
        state[row, F_DEP_LEVEL] = x
    offset = _departure_bucket(state, buckets, row, t, params)
    if math.isnan(offset):
        offset = 0.0
    level = state[row, F_DEP_LEVEL]
    k = int(params[P_DEP_AT]) + _bucket(t, params[P_DEP_PERIOD], int(params[P_DEP_BINS]))
    value = buckets[row, k]
    if math.isnan(value):
        buckets[row, k] = x - level
    else:
        buckets[row, k] = value + DEPARTURE_SEASON_ALPHA * (x - level - value)
    state[row, F_DEP_N] = n + 1.0
    if n == 0.0:
        return
    y = x - offset
    a = params[P_DEP_ALPHA]
    a = a if n * a > 1.0 else 1.0 / (n + 1.0)
    b = params[P_ERROR_ALPHA]
    b = b if n * b > 1.0 else 1.0 / (n + 1.0)
    state[row, F_DEP_ERR] += b * (abs(y - level) - state[row, F_DEP_ERR])
    state[row, F_DEP_LEVEL] = level + a * (y - level)


@njit(cache=True, nogil=True)
def _evaluate(
    state: Arr, buckets: Arr, row: int, x: float, t: float, params: Arr
) -> tuple[float, float, float, tuple[float, float]]:
    """Deviation, score (before the refractory rule), log absolute error of ``x`` (above a
    floor of 1e-3 of the series' size) and season-departure CUSUMs with ``x``."""
    pred, scale = best(state, buckets, row, t, params)
    floor = 1e-3 * max(abs(state[row, F_LEVEL]), state[row, F_HI] - state[row, F_LO], 1e-9)
    z = abs(x - pred) / max(scale, floor)
    u = math.log(abs(x - pred) + floor)
    pattern = _cusum_score(_pattern_sum(state, row, u, params), params[P_PATTERN_LIMIT])
    raw = z / (z + params[P_Z_HALF])
    ring_at = int(params[P_RING_AT])
    oldest = state[row, ring_at + int(state[row, F_RING_I])]
    avg = (state[row, F_RING_SUM] - oldest + raw) / int(params[P_SHORT_WINDOW])
    std = max(math.sqrt(state[row, F_AVG_VAR]), params[P_MIN_STD])
    score = spread_tail(0.5 * math.erfc((avg - state[row, F_AVG_MEAN]) / std / math.sqrt(2.0)))
    peak = state[row, F_AVG_PEAK]
    if peak > 0.0 and avg < peak:
        score *= (max(avg, 0.0) / peak) ** params[P_GATE_POWER]
    if state[row, F_PAT_N] * params[P_ERROR_ALPHA] >= 1.0:
        # a likelihood alert on a point whose own error is of a usual size is the average
        # still lifted by earlier points: it does not alert
        usual = (u - state[row, F_PAT_MEAN]) / max(math.sqrt(state[row, F_PAT_VAR]), 0.1)
        if usual < params[P_ERROR_GATE]:
            score = min(score, 0.3)
    z_peak = state[row, F_Z_PEAK]
    if z > params[P_NOVEL_Z] and z > z_peak:
        score = max(score, 1.0 - 0.5 * z_peak / z)
    sums = _departure_sums(state, buckets, row, x, t, params)
    departure = _cusum_score(max(sums[0], sums[1]), params[P_DEP_LIMIT])
    return z, max(score, pattern, departure), u, sums


@njit(cache=True, nogil=True)
def _spatial(state: Arr, row: int, x: float, t: float, params: Arr) -> float:
    """Spatial novelty score of ``x`` (0 when inside the seen range and its margin)."""
    lo = state[row, F_LO]
    hi = state[row, F_HI]
    tolerance = params[P_SPATIAL_TOLERANCE]
    if tolerance <= 0 or hi <= lo:
        return 0.0
    seen_enough = int(state[row, F_N]) >= int(params[P_RANGE_POINTS])
    if not (seen_enough or t - state[row, F_T0] >= params[P_RANGE_SECONDS]):
        return 0.0
    span = hi - lo
    margin = max(tolerance * span, params[P_SPATIAL_NOISE] * state[row, F_ERR])
    beyond = max(x - hi, lo - x)
    return 0.9 + 0.1 * math.tanh(beyond / span) if beyond > margin else 0.0


@njit(cache=True, nogil=True)
def score(state: Arr, buckets: Arr, row: int, x: float, t: float, params: Arr) -> float:
    """Score of ``x`` at ``t`` before it is learnt."""
    n = int(state[row, F_N])
    if n < int(params[P_SHORT_WINDOW]) * 2:
        return 0.0
    z, s, _, _ = _evaluate(state, buckets, row, x, t, params)
    if state[row, F_QUIET] > 0 and s >= 0.5:
        # inside the refractory period only a deviation well beyond the recent peak counts
        breaks = params[P_REFRACTORY_BREAK]
        z_peak = state[row, F_Z_PEAK]
        if not (breaks > 0 and z_peak > 0 and z >= breaks * z_peak):
            s = 0.3
    extreme = 0.0
    extreme_z = params[P_EXTREME_Z]
    if not (z < extreme_z or z <= state[row, F_Z_PEAK] or n * params[P_ERROR_ALPHA] < 1.0):
        extreme = 0.9 + 0.1 * (1.0 - extreme_z / z)
    return max(s, _spatial(state, row, x, t, params), extreme)


@njit(cache=True, nogil=True)
def learn(state: Arr, buckets: Arr, row: int, x: float, t: float, params: Arr) -> None:
    """Update the row with ``x`` at ``t``."""
    n = int(state[row, F_N])
    window = int(params[P_SHORT_WINDOW])
    if n == 0:
        state[row, F_T0] = t
        state[row, F_LEVEL] = x
        state[row, F_LO] = x
        state[row, F_HI] = x
    z = 0.0
    s = 0.0
    quiet = state[row, F_QUIET]
    if n >= 2:
        z, s, u, sums = _evaluate(state, buckets, row, x, t, params)
        _learn_pattern(state, row, u, params, quiet <= 0 and n >= window * 2)
    else:
        sums = _departure_sums(state, buckets, row, x, t, params)
    _learn_departure(state, buckets, row, x, t, params, sums, quiet <= 0 and n >= window * 2)
    if n >= window * 2:
        if s >= 0.5 or _spatial(state, row, x, t, params) > 0.0:
            state[row, F_QUIET] = params[P_REFRACTORY]
        elif state[row, F_QUIET] > 0:
            state[row, F_QUIET] -= 1.0
    trusted = n * params[P_ERROR_ALPHA] >= 1.0  # scales learnt: deviations mean something
    decay = params[P_PEAK_DECAY]
    if trusted:
        state[row, F_Z_PEAK] = max(state[row, F_Z_PEAK] * decay, z)
    # long-run distribution of the short average of raw scores
    raw = z / (z + params[P_Z_HALF])
    i = int(state[row, F_RING_I])
    slot = int(params[P_RING_AT]) + i
    state[row, F_RING_SUM] += raw - state[row, slot]
    state[row, slot] = raw
    state[row, F_RING_I] = (i + 1) % window
    if n >= window:
        avg = state[row, F_RING_SUM] / window
        long_alpha = params[P_LONG_ALPHA]
        a = long_alpha if n > 1.0 / long_alpha else 1.0 / (n + 1)
        if trusted:
            state[row, F_AVG_PEAK] = max(state[row, F_AVG_PEAK] * decay, avg)
        d = avg - state[row, F_AVG_MEAN]
        state[row, F_AVG_MEAN] += a * d
        state[row, F_AVG_VAR] = (1 - a) * (state[row, F_AVG_VAR] + a * d * d)
    # the models and their mean absolute errors
    error_alpha = params[P_ERROR_ALPHA]
    a = error_alpha if n > 1.0 / error_alpha else 1.0 / (n + 1)
    level_alpha = params[P_LEVEL_ALPHA]
    level_err = abs(x - state[row, F_LEVEL])
    state[row, F_ERR] += a * (level_err - state[row, F_ERR])
    state[row, F_LEVEL] += level_alpha * (x - state[row, F_LEVEL])
    alpha = params[P_SEASON_ALPHA]
    for p in range(int(params[P_PROFILES])):
        # additive Holt-Winters without trend, buckets keyed by the time within the period
        period = params[P_SEASONS + 3 * p]
        base = F_PROFILES + PROFILE_COLUMNS * p
        k = int(params[P_SEASONS + 3 * p + 2]) + _bucket(
            t, period, int(params[P_SEASONS + 3 * p + 1])
        )
        if math.isnan(state[row, base + PF_LEVEL]):
            state[row, base + PF_LEVEL] = x
            state[row, base + PF_T0] = t
        state[row, base + PF_TLAST] = t
        value = buckets[row, k]
        seen = not math.isnan(value)
        spans = state[row, base + PF_TLAST] - state[row, base + PF_T0] >= MIN_PERIODS * period
        predicted = state[row, base + PF_LEVEL] + value
        err = abs(x - predicted) if spans and seen else 2.0 * level_err
        state[row, base + PF_ERR] += a * (err - state[row, base + PF_ERR])
        if seen:
            buckets[row, k] = value + alpha * (x - state[row, base + PF_LEVEL] - value)
        else:
            buckets[row, k] = x - state[row, base + PF_LEVEL]
        level = state[row, base + PF_LEVEL]
        state[row, base + PF_LEVEL] = level + level_alpha * (x - buckets[row, k] - level)
    state[row, F_LO] = min(state[row, F_LO], x)
    state[row, F_HI] = max(state[row, F_HI], x)
    state[row, F_N] = n + 1


@njit(cache=True, nogil=True)
def step_one(
    state: Arr, buckets: Arr, row: int, x: float, t: float, params: Arr
) -> tuple[float, float, float]:
    """Score ``x``, the expected value and scale before it (NaN before two points), then
    learn it."""
    s = score(state, buckets, row, x, t, params)
    expected = scale = math.nan
    if state[row, F_N] >= 2:
        expected, err = best(state, buckets, row, t, params)
        scale = err * EXPECTATION_SCALE
    learn(state, buckets, row, x, t, params)
    return s, expected, scale


@njit(cache=True, nogil=True)
def step_many(state: Arr, buckets: Arr, rows: Arr, xs: Arr, ts: Arr, params: Arr, out: Arr) -> None:
    """:func:`step_one` for every point in order; ``out[i]`` gets ``(score, expected,
    scale)`` of point ``i``."""
    for i in range(rows.shape[0]):
        s, expected, scale = step_one(state, buckets, rows[i], xs[i], ts[i], params)
        out[i, 0] = s
        out[i, 1] = expected
        out[i, 2] = scale
