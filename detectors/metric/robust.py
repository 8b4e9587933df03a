"""The default detector: robust prediction error, its anomaly likelihood, spatial novelty."""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from detectors.metric import robust_kernel as kernel
from detectors.metric.base import BankedDetector, Expectation, RowBank, register_detector

DEFAULT_SEASONS = ((86400.0, 288), (604800.0, 168))
"""A day in 5-minute buckets and a week in hourly buckets."""


@dataclass(frozen=True, slots=True)
class RobustParams:
    """Parameters of :class:`RobustLikelihood` (see there); hashable, one bank per value."""

    level_alpha: float = 0.5
    error_alpha: float = 0.01
    z_half: float = 4.0
    short_window: int = 10
    long_alpha: float = 0.002
    min_std: float = 0.01
    novel_z: float = 6.0
    peak_half_life: float = 2000.0
    spatial_tolerance: float = 0.02
    seasons: tuple[tuple[float, int], ...] = field(default=DEFAULT_SEASONS)
    season_alpha: float = 0.3
    refractory: int = 300
    range_seconds: float = 86400.0
    range_points: int = 2000
    spatial_noise: float = 1.0
    gate_power: float = 10.0
    extreme_z: float = 500.0
    pattern_alpha: float = 0.001
    pattern_drift: float = 1.0
    pattern_limit: float = 30.0
    error_gate: float = 1.5
    departure_alpha: float = 0.005
    departure_drift: float = 1.0
    departure_limit: float = 40.0
    refractory_break: float = 0.0

    def __post_init__(self) -> None:
        seasons = tuple((float(p), int(b)) for p, b in self.seasons)
        object.__setattr__(self, "seasons", seasons)

    def changed(self) -> dict[str, Any]:
        """The parameters that differ from the defaults (what a state records).

        >>> RobustParams(z_half=3.0).changed()
        {'z_half': 3.0}
        """
        default = RobustParams()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


class RobustBank(RowBank):
    """The state of many ``robust_likelihood`` series of one parameter set, a row each
    (rows as in :class:`~detectors.metric.base.RowBank`). :meth:`step` runs a batch of
    points of any rows, in order, through compiled code.

    Examples
    --------
    >>> bank = RobustBank(RobustParams())
    >>> a, b = bank.allocate(), bank.allocate()
    >>> rows = np.array([a, b] * 300)
    >>> xs = np.array([10.0, 500.0] * 300)
    >>> ts = np.repeat(np.arange(300) * 60.0, 2)
    >>> _ = bank.step(rows, xs, ts)
    >>> out = bank.step(np.array([a, b]), np.array([10.0, 5000.0]), ts[-2:] + 60)
    >>> bool(out[0, 0] < 0.5 < out[1, 0]), out[:, 1].tolist()
    (True, [10.0, 500.0])
    """

    def __init__(self, params: RobustParams, capacity: int = 1) -> None:
        self.params = params
        bins = [b for _, b in params.seasons]
        self._profiles = len(bins)
        self._width = kernel.state_columns(self._profiles, params.short_window)
        longest = max(params.seasons, default=(0.0, 0))  # the season-departure profile's
        self._n_buckets = sum(bins) + longest[1]
        values = [0.0] * kernel.P_SEASONS
        for index, value in (
            (kernel.P_LEVEL_ALPHA, params.level_alpha),
            (kernel.P_ERROR_ALPHA, params.error_alpha),
            (kernel.P_Z_HALF, params.z_half),
            (kernel.P_LONG_ALPHA, params.long_alpha),
            (kernel.P_MIN_STD, params.min_std),
            (kernel.P_NOVEL_Z, params.novel_z),
            (kernel.P_PEAK_DECAY, 0.5 ** (1.0 / params.peak_half_life)),
            (kernel.P_SPATIAL_TOLERANCE, params.spatial_tolerance),
            (kernel.P_SEASON_ALPHA, params.season_alpha),
            (kernel.P_RANGE_SECONDS, params.range_seconds),
            (kernel.P_SPATIAL_NOISE, params.spatial_noise),
            (kernel.P_GATE_POWER, params.gate_power),
            (kernel.P_EXTREME_Z, params.extreme_z),
            (kernel.P_SHORT_WINDOW, params.short_window),
            (kernel.P_REFRACTORY, params.refractory),
            (kernel.P_RANGE_POINTS, params.range_points),
            (kernel.P_RING_AT, kernel.F_PROFILES + kernel.PROFILE_COLUMNS * self._profiles),
            (kernel.P_PROFILES, self._profiles),
            (kernel.P_PATTERN_ALPHA, params.pattern_alpha),
            (kernel.P_PATTERN_DRIFT, params.pattern_drift),
            (kernel.P_PATTERN_LIMIT, params.pattern_limit),
            (kernel.P_ERROR_GATE, params.error_gate),
            (kernel.P_DEP_ALPHA, params.departure_alpha),
            (kernel.P_DEP_DRIFT, params.departure_drift),
            (kernel.P_DEP_LIMIT, params.departure_limit),
            (kernel.P_REFRACTORY_BREAK, params.refractory_break),
            (kernel.P_DEP_AT, sum(bins)),
            (kernel.P_DEP_PERIOD, longest[0]),
            (kernel.P_DEP_BINS, longest[1]),
        ):
            values[index] = float(value)
        offset = 0
        for period, b in params.seasons:
            values.extend((period, float(b), float(offset)))
            offset += b
        self.vector = np.array(values)
        self._fresh = kernel.fresh_state(1, self._profiles, params.short_window)[0]
        super().__init__()
        self.state = np.empty((max(capacity, 1), self._width))
        self.buckets = np.empty((max(capacity, 1), self._n_buckets))

    row_arrays = ("state", "buckets")

    @property
    def key(self) -> Hashable:
        return ("robust_likelihood", self.params)

    def reset_row(self, row: int) -> None:
        self.state[row] = self._fresh
        self.buckets[row] = math.nan

    def step(self, rows: np.ndarray, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        out = np.empty((rows.shape[0], 3))
        kernel.step_many(
            self.state,
            self.buckets,
            rows.astype(np.int64, copy=False),
            xs.astype(np.float64, copy=False),
            ts.astype(np.float64, copy=False),
            self.vector,
            out,
        )
        return out

    def new_detector(self) -> RobustLikelihood:
        return RobustLikelihood.view(self, self.allocate())

    def step_one(self, row: int, x: float, t: float) -> tuple[float, float, float]:
        """:meth:`step` for one point: ``(score, expected, scale)``."""
        score, expected, scale = kernel.step_one(
            self.state, self.buckets, int(row), float(x), float(t), self.vector
        )
        return score, expected, scale

    def score(self, row: int, x: float, t: float) -> float:
        """Score of ``x`` at ``t`` on one row, before it is learnt."""
        return float(
            kernel.score(self.state, self.buckets, int(row), float(x), float(t), self.vector)
        )

    def learn(self, row: int, x: float, t: float) -> None:
        """Learn ``x`` at ``t`` on one row."""
        kernel.learn(self.state, self.buckets, int(row), float(x), float(t), self.vector)

    def expectation(self, row: int, t: float) -> Expectation | None:
        """What one row expects at ``t`` (``None`` before two points)."""
        if self.state[row, kernel.F_N] < 2:
            return None
        pred, err = kernel.best(self.state, self.buckets, int(row), float(t), self.vector)
        return Expectation(float(pred), float(err) * kernel.EXPECTATION_SCALE)

    def row_state(self, row: int) -> tuple[bytes, bytes]:
        """The bytes of one row: its state, then its buckets."""
        return self.state[row].tobytes(), self.buckets[row].tobytes()

    def load_row(self, row: int, state: bytes, buckets: bytes) -> None:
        """Inverse of :meth:`row_state`."""
        for target, data in ((self.state, state), (self.buckets, buckets)):
            if len(data) != 8 * target.shape[1]:
                raise ValueError(f"a row of {len(data)} bytes, expected {8 * target.shape[1]}")
            target[row] = np.frombuffer(data, dtype=np.float64)


class _Profile:
    """A seasonal profile as states of versions 1 and 2 pickled it (read and converted)."""

    __slots__ = ("alpha", "bins", "err", "level", "period", "seen", "t0", "t_last", "values")

    def __setstate__(self, state: tuple[object, ...]) -> None:
        counts = state[2]
        if isinstance(counts, array) and counts.typecode == "H":  # version 1: bucket counts
            old = dict(zip(_PROFILE_V1_SLOTS, state, strict=True))
            seen = array("B", bytes((len(counts) + 7) // 8))
            for b, n in enumerate(counts):
                if n:
                    seen[b >> 3] |= 1 << (b & 7)
            state = tuple(seen if k == "seen" else old[k] for k in self.__slots__)
        for k, v in zip(self.__slots__, state, strict=True):
            setattr(self, k, v)


_PROFILE_V1_SLOTS = ("alpha", "bins", "counts", "err", "level", "period", "t0", "t_last", "values")
"""Layout of a profile in states of version 1."""

_STATE_LAYOUT = 5
"""First item of a pickled :class:`RobustLikelihood` (older ones pickled a dict)."""

_PATTERN_COLUMNS = kernel.F_DEP_N - kernel.F_PAT_N
"""Columns of the change-of-pattern CUSUM, inserted before the profiles in layout 4."""

_DEPARTURE_COLUMNS = kernel.F_PROFILES - kernel.F_DEP_N
"""Columns of the season-departure CUSUM, inserted before the profiles in layout 5 (its
profile's buckets follow the other profiles' buckets)."""


@register_detector("robust_likelihood")
class RobustLikelihood(BankedDetector):
    """Robust prediction error turned into an anomaly likelihood, with novelty checks.

    Online models predict the next value: an exponentially weighted level, and seasonal
    profiles (a deseasonalised level plus time buckets over a period, as additive
    Holt-Winters without trend; by default a day in 5-minute buckets and a week in hourly
    buckets, each trusted once the series spans two periods). The model with the smallest
    recent mean absolute error is trusted; its error, in units of that mean absolute error,
    is the deviation ``z``. These signals make the score:

    * likelihood: the raw score ``z / (z + z_half)`` averaged over the last ``short_window``
      points, against the long-run (exponentially weighted) distribution of that average;
      its Gaussian tail probability is spread by its logarithm (1e-5 scores 0.5), as in
      Numenta's HTM post-processing; when the average is below its own recent peak, the
      score is damped by ``(average / peak) ** gate_power``; and it stays below 0.5 when
      the point's own log absolute error is less than ``error_gate`` long-run standard
      deviations above its long-run mean (see change of pattern below);
    * deviation novelty: a deviation beyond ``novel_z`` and beyond every deviation of the
      recent past (a peak decaying with ``peak_half_life`` points, tracked once the scales
      are learnt) scores above 0.5;
    * spatial novelty: a value beyond the range seen so far by more than
      ``spatial_tolerance`` of that range (and by at least ``spatial_noise`` mean absolute
      errors) scores at least 0.9.

    * change of pattern: an upper CUSUM of the log absolute prediction error, standardised
      by its long-run (exponentially weighted, ``pattern_alpha``) mean and variance, less
      ``pattern_drift`` a point; above ``pattern_limit`` it scores from 0.5 up (a
      sustained rise of the error's size, e.g. a flat series that starts to oscillate,
      even inside the usual range) and restarts from 0.

    * departure from the season: a copy of the longest seasonal profile whose deseasonalised
      level is slow (``departure_alpha``) gives the value the season and the last weeks lead
      to expect; a two-sided CUSUM of its error, in units of its mean absolute error (each
      step at most 4), less ``departure_drift`` a point, scores from 0.5 up above
      ``departure_limit`` and restarts from 0. It runs once that profile spans two periods
      and while a seasonal profile predicts better than the level model, and finds hours in
      which the whole series stays away from its season on one side, inside the usual
      range (a holiday in a traffic series).

    * extreme deviation: once the scales are learnt, a deviation of ``extreme_z`` mean
      absolute errors or more, beyond the recent peak, scores at least 0.9 whatever the
      time span seen and whatever the refractory period (a jump of hundreds of robust
      standard deviations from a well-learnt baseline always alerts).

    After any alert (score 0.5 or more), further likelihood, deviation, pattern and
    departure alerts are lowered to 0.3 for ``refractory`` points: one alert per episode
    (spatial novelty and extreme deviations still count).
    Memory is constant: about 5.4 KB per series with the default profiles. The state is one
    row of a :class:`RobustBank`; a :class:`~detectors.metric.MetricMonitor` keeps every
    series of one parameter set in one bank and runs a batch of points through one compiled
    loop (:mod:`detectors.metric.robust_kernel`).

    Parameters
    ----------
    level_alpha
        Smoothing of the levels that predict the next value.
    error_alpha
        Smoothing of the mean absolute errors (the robust scales).
    z_half
        Deviation at which the raw score is 0.5.
    short_window
        Points averaged before comparing with the long-run distribution.
    long_alpha
        Smoothing of the long-run mean and variance of that average.
    min_std
        Floor of the long-run standard deviation of the averaged raw score.
    novel_z, peak_half_life
        Deviation novelty: least deviation, and half-life (points) of the recent peaks.
    extreme_z
        Least deviation (mean absolute errors) that always alerts; ``inf`` disables.
    pattern_alpha, pattern_drift, pattern_limit
        Change of pattern: smoothing of the long-run distribution of the log absolute
        error, allowance per point and alert limit of its CUSUM (``inf`` disables).
    departure_alpha, departure_drift, departure_limit
        Departure from the season: smoothing of its profile's level, allowance per point
        and alert limit of its CUSUM (``inf`` disables).
    error_gate
        Least log absolute error of a point, in long-run standard deviations above its
        long-run mean, for its likelihood to alert (``-inf`` disables).
    refractory_break
        Inside the refractory period, a point whose deviation is at least this many times
        the recent peak deviation still alerts (0 disables): a fault much larger than the
        blip that armed the period is not hidden by it.
    spatial_tolerance
        Share of the seen range a value must exceed it by to count as novel; 0 disables.
    spatial_noise
        Least excess for spatial novelty, in mean absolute errors of the level model.
    seasons
        ``(period seconds, buckets)`` of each seasonal profile.
    season_alpha
        Smoothing of each bucket of the profiles.
    gate_power
        Damping of the likelihood below its recent peak (0: none).
    refractory
        Points after a likelihood alert during which the next ones are lowered.
    range_seconds, range_points
        Spatial novelty starts once the series spans this long or has this many values
        (before, the range of a seasonal series is not yet known).

    Examples
    --------
    >>> det = RobustLikelihood()
    >>> for i in range(600):
    ...     x = 10.0 + (i % 7) * 0.1
    ...     _ = det.score_one(x, 60.0 * i)
    ...     det.learn_one(x, 60.0 * i)
    >>> det.score_one(10.3, 36000.0) < 0.5 < det.score_one(50.0, 36000.0)
    True
    """

    __slots__ = ("bank", "row")
    bank: RobustBank

    def __init__(self, **params: Any) -> None:
        self.bank = RobustBank(RobustParams(**params))
        self.row = self.bank.allocate()

    @property
    def params(self) -> RobustParams:
        """The parameters."""
        return self.bank.params

    def new_bank(self) -> RobustBank:
        return RobustBank(self.bank.params)

    def score_one(self, x: float, t: float) -> float:
        if not math.isfinite(x):  # a gap: nothing to score (the monitor drops these)
            return 0.0
        return self.bank.score(self.row, x, t)

    def learn_one(self, x: float, t: float) -> None:
        if math.isfinite(x):
            self.bank.learn(self.row, x, t)

    def expectation(self, t: float) -> Expectation | None:
        return self.bank.expectation(self.row, t)

    def step_one(self, x: float, t: float) -> tuple[float, Expectation | None]:
        if not math.isfinite(x):
            return 0.0, self.expectation(t)
        score, expected, scale = self.bank.step_one(self.row, x, t)
        if math.isnan(expected):
            return score, None
        return score, Expectation(expected, scale)

    def __getstate__(self) -> tuple[object, ...]:
        return (_STATE_LAYOUT, self.bank.params.changed(), *self.bank.row_state(self.row))

    def __setstate__(self, state: object) -> None:
        if isinstance(state, dict):  # versions 1 and 2: every slot by name
            self.bank, self.row = _from_slots(state)
            return
        if not isinstance(state, tuple) or not state or state[0] not in (3, 4, _STATE_LAYOUT):
            raise ValueError("not a robust_likelihood state")
        layout, params, row_state, buckets = state
        if not isinstance(params, dict) or not isinstance(row_state, bytes):
            raise ValueError("not a robust_likelihood state")
        if not isinstance(buckets, bytes):
            raise ValueError("not a robust_likelihood state")
        self.bank = RobustBank(RobustParams(**params))
        self.row = self.bank.allocate()
        if layout < 5:  # no season-departure columns and profile yet: they start learning now
            at = 8 * kernel.F_PAT_N if layout == 3 else 8 * kernel.F_DEP_N
            added = _DEPARTURE_COLUMNS + (_PATTERN_COLUMNS if layout == 3 else 0)
            row_state = row_state[:at] + bytes(8 * added) + row_state[at:]
            empty = self.bank.buckets.shape[1] - len(buckets) // 8
            buckets += np.full(max(empty, 0), math.nan).tobytes()
        self.bank.load_row(self.row, row_state, buckets)


def _from_slots(old: dict[str, Any]) -> tuple[RobustBank, int]:
    """A bank of one row from a state of version 1 or 2 (a dict of every slot)."""
    names = {f.name for f in fields(RobustParams)}
    params = replace(RobustParams(), **{k: v for k, v in old.items() if k in names})
    bank = RobustBank(params)
    row = bank.allocate()
    state = bank.state[row]
    for column, key in (
        (kernel.F_T0, "_t0"),
        (kernel.F_LEVEL, "_level"),
        (kernel.F_ERR, "_err_level"),
        (kernel.F_LO, "_lo"),
        (kernel.F_HI, "_hi"),
        (kernel.F_RING_SUM, "_ring_sum"),
        (kernel.F_AVG_MEAN, "_avg_mean"),
        (kernel.F_AVG_VAR, "_avg_var"),
        (kernel.F_AVG_PEAK, "_avg_peak"),
        (kernel.F_Z_PEAK, "_z_peak"),
        (kernel.F_N, "_n"),
        (kernel.F_RING_I, "_ring_i"),
        (kernel.F_QUIET, "_quiet"),
    ):
        state[column] = old[key]
    ring_at = int(bank.vector[kernel.P_RING_AT])
    state[ring_at:] = np.frombuffer(old["_ring"], dtype=np.float64)
    offset = 0
    for p, profile in enumerate(old["_profiles"]):
        base = kernel.F_PROFILES + kernel.PROFILE_COLUMNS * p
        state[base + kernel.PF_LEVEL] = profile.level
        state[base + kernel.PF_ERR] = profile.err
        state[base + kernel.PF_T0] = profile.t0
        state[base + kernel.PF_TLAST] = profile.t_last
        values = np.frombuffer(profile.values, dtype=np.float64).copy()
        bits = np.unpackbits(np.frombuffer(profile.seen, dtype=np.uint8), bitorder="little")
        values[bits[: profile.bins] == 0] = math.nan
        bank.buckets[row, offset : offset + profile.bins] = values
        offset += profile.bins
    return bank, row


def warm_up() -> None:
    """Load the compiled steps (compiling them on the first run) before they are needed."""
    detector = RobustLikelihood()
    detector.score_one(1.0, 0.0)
    detector.expectation(0.0)
    detector.learn_one(1.0, 0.0)
    detector.step_one(1.0, 60.0)
    detector.bank.step(np.array([detector.row]), np.array([1.0]), np.array([120.0]))
