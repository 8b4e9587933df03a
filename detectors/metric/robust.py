"""The default detector: robust prediction error, its anomaly likelihood, spatial novelty."""

from __future__ import annotations

import math
from array import array

from detectors.metric.base import Expectation, MetricDetector, register_detector

_LOG_FLOOR = math.log(1.0 - 0.9999999999)


def spread_tail(tail: float) -> float:
    """Spread a tail probability over 0..1: 1e-5 -> 0.5, 1e-10 -> 1 (as HTM's log
    likelihood), then on, more slowly, below 1 so that rarer points still rank higher.

    >>> round(spread_tail(1e-5), 3), round(spread_tail(0.5), 3), spread_tail(1e-30) < 1.0
    (0.5, 0.03, True)
    """
    s = math.log(tail + 1e-300) / _LOG_FLOOR
    if s <= 0.9:
        return max(s, 0.0)
    return 0.9 + 0.1 * math.tanh((s - 0.9) / 2.0)


MIN_PERIODS = 2
"""Periods a profile must span before it may be trusted."""


class _Profile:
    """A time-of-day (or time-of-week) profile over a deseasonalised level.

    Additive Holt-Winters without trend, with buckets keyed by the timestamp rather than by
    a point count, so that gaps and irregular sampling do not shift the season. One bit per
    bucket says whether it has had a value yet.
    """

    __slots__ = ("alpha", "bins", "err", "level", "period", "seen", "t0", "t_last", "values")

    def __init__(self, period: float, bins: int, alpha: float) -> None:
        self.period = period
        self.bins = bins
        self.alpha = alpha
        self.values = array("d", bytes(8 * bins))
        self.seen = array("B", bytes((bins + 7) // 8))
        self.level = math.nan
        self.err = 0.0
        self.t0 = math.nan
        self.t_last = math.nan

    def bucket(self, t: float) -> int:
        return int((t % self.period) / self.period * self.bins) % self.bins

    def has(self, b: int) -> bool:
        """Whether bucket ``b`` has had a value."""
        return bool(self.seen[b >> 3] >> (b & 7) & 1)

    def ready(self, b: int) -> bool:
        """Whether bucket ``b`` has data and the profile spans ``MIN_PERIODS`` periods."""
        return self.t_last - self.t0 >= MIN_PERIODS * self.period and self.has(b)

    def predict(self, b: int) -> float:
        return self.level + self.values[b]

    def learn(self, x: float, t: float, level_alpha: float, a: float, fallback_err: float) -> None:
        b = self.bucket(t)
        if math.isnan(self.level):
            self.level = x
            self.t0 = t
        self.t_last = t
        err = abs(x - self.predict(b)) if self.ready(b) else fallback_err
        self.err += a * (err - self.err)
        if self.has(b):
            self.values[b] += self.alpha * (x - self.level - self.values[b])
        else:
            self.values[b] = x - self.level
            self.seen[b >> 3] |= 1 << (b & 7)
        self.level += level_alpha * (x - self.values[b] - self.level)

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

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
"""Layout of a profile in states of version 1 (migrated on load)."""


_TRANSIENT = frozenset({"_best_at", "_cache"})
"""Slots of :class:`RobustLikelihood` that memoise within one point, not persisted."""


@register_detector("robust_likelihood")
class RobustLikelihood(MetricDetector):
    """Robust prediction error turned into an anomaly likelihood, with novelty checks.

    Online models predict the next value: an exponentially weighted level, and seasonal
    profiles (a deseasonalised level plus time buckets over a period, as additive
    Holt-Winters without trend; by default a day in 5-minute buckets and a week in hourly
    buckets, each trusted once the series spans two periods). The model with the smallest
    recent mean absolute error is trusted; its error, in units of that mean absolute error,
    is the deviation ``z``. Three signals make the score:

    * likelihood: the raw score ``z / (z + z_half)`` averaged over the last ``short_window``
      points, against the long-run (exponentially weighted) distribution of that average;
      its Gaussian tail probability is spread by its logarithm (1e-5 scores 0.5), as in
      Numenta's HTM post-processing; when the average is below its own recent peak, the
      score is damped by ``(average / peak) ** gate_power``;
    * deviation novelty: a deviation beyond ``novel_z`` and beyond every deviation of the
      recent past (a peak decaying with ``peak_half_life`` points, tracked once the scales
      are learnt) scores above 0.5;
    * spatial novelty: a value beyond the range seen so far by more than
      ``spatial_tolerance`` of that range (and by at least ``spatial_noise`` mean absolute
      errors) scores at least 0.9.

    * extreme deviation: once the scales are learnt, a deviation of ``extreme_z`` mean
      absolute errors or more, beyond the recent peak, scores at least 0.9 whatever the
      time span seen and whatever the refractory period (a jump of hundreds of robust
      standard deviations from a well-learnt baseline always alerts).

    After any alert (score 0.5 or more), further likelihood and deviation alerts are lowered
    to 0.3 for ``refractory`` points: one alert per episode (spatial novelty and extreme
    deviations still count).
    Memory is constant (about 4.8 KB pickled with the default profiles).

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

    __slots__ = (
        "_avg_mean",
        "_avg_peak",
        "_avg_var",
        "_best_at",
        "_cache",
        "_err_level",
        "_hi",
        "_level",
        "_lo",
        "_n",
        "_peak_decay",
        "_profiles",
        "_quiet",
        "_ring",
        "_ring_i",
        "_ring_sum",
        "_t0",
        "_z_peak",
        "error_alpha",
        "extreme_z",
        "gate_power",
        "level_alpha",
        "long_alpha",
        "min_std",
        "novel_z",
        "peak_half_life",
        "range_points",
        "range_seconds",
        "refractory",
        "season_alpha",
        "seasons",
        "short_window",
        "spatial_noise",
        "spatial_tolerance",
        "z_half",
    )

    def __init__(
        self,
        *,
        level_alpha: float = 0.5,
        error_alpha: float = 0.01,
        z_half: float = 4.0,
        short_window: int = 10,
        long_alpha: float = 0.002,
        min_std: float = 0.01,
        novel_z: float = 6.0,
        peak_half_life: float = 2000.0,
        spatial_tolerance: float = 0.02,
        seasons: tuple[tuple[float, int], ...] = ((86400.0, 288), (604800.0, 168)),
        season_alpha: float = 0.3,
        refractory: int = 300,
        range_seconds: float = 86400.0,
        range_points: int = 2000,
        spatial_noise: float = 1.0,
        gate_power: float = 10.0,
        extreme_z: float = 500.0,
    ) -> None:
        self.level_alpha = level_alpha
        self.error_alpha = error_alpha
        self.z_half = z_half
        self.short_window = short_window
        self.long_alpha = long_alpha
        self.min_std = min_std
        self.novel_z = novel_z
        self.peak_half_life = peak_half_life
        self.spatial_tolerance = spatial_tolerance
        self.seasons = tuple((float(p), int(b)) for p, b in seasons)
        self.season_alpha = season_alpha
        self.refractory = refractory
        self.range_seconds = range_seconds
        self.range_points = range_points
        self.spatial_noise = spatial_noise
        self.gate_power = gate_power
        self.extreme_z = extreme_z
        self._t0 = 0.0
        self._n = 0
        self._level = 0.0
        self._err_level = 0.0
        self._lo = math.inf
        self._hi = -math.inf
        self._profiles = [_Profile(p, b, season_alpha) for p, b in self.seasons]
        self._ring = array("d", bytes(8 * short_window))
        self._ring_i = 0
        self._ring_sum = 0.0
        self._avg_mean = 0.0
        self._avg_var = 0.0
        self._avg_peak = 0.0
        self._z_peak = 0.0
        self._peak_decay = 0.5 ** (1.0 / peak_half_life)
        self._quiet = 0
        self._cache: tuple[float, float, float, float] | None = None
        self._best_at: tuple[float, float, float] | None = None

    def _best(self, t: float) -> tuple[float, float]:
        """Prediction and mean absolute error of the trusted model at time ``t``."""
        # asked twice per point (score, then expectation) before the point is learnt
        cached = self._best_at
        if cached is not None and cached[0] == t:
            return cached[1], cached[2]
        pred, err = self._level, self._err_level
        for profile in self._profiles:
            b = profile.bucket(t)
            if profile.err < err and profile.ready(b):
                pred, err = profile.predict(b), profile.err
        self._best_at = (t, pred, err)
        return pred, err

    def _deviation(self, x: float, t: float) -> float:
        """Absolute error of the trusted model in units of its mean absolute error."""
        pred, scale = self._best(t)
        floor = 1e-3 * max(abs(self._level), self._hi - self._lo, 1e-9)
        return abs(x - pred) / max(scale, floor)

    def _evaluate(self, x: float, t: float) -> tuple[float, float]:
        """Deviation and likelihood-and-novelty score (before the refractory rule)."""
        cache = self._cache
        if cache is not None and cache[0] == x and cache[1] == t:
            return cache[2], cache[3]
        z = self._deviation(x, t)
        raw = z / (z + self.z_half)
        avg = (self._ring_sum - self._ring[self._ring_i] + raw) / self.short_window
        std = max(math.sqrt(self._avg_var), self.min_std)
        score = spread_tail(0.5 * math.erfc((avg - self._avg_mean) / std / math.sqrt(2.0)))
        if self._avg_peak > 0.0 and avg < self._avg_peak:
            score *= (max(avg, 0.0) / self._avg_peak) ** self.gate_power
        if z > self.novel_z and z > self._z_peak:
            score = max(score, 1.0 - 0.5 * self._z_peak / z)
        self._cache = (x, t, z, score)
        return z, score

    def _range_known(self, t: float) -> bool:
        """Whether the seen range is trusted: a day seen, or ``range_points`` values."""
        return self._n >= self.range_points or t - self._t0 >= self.range_seconds

    def _spatial(self, x: float, t: float) -> float:
        """Spatial novelty score of ``x`` (0 when inside the seen range and its margin)."""
        if self.spatial_tolerance <= 0 or self._hi <= self._lo or not self._range_known(t):
            return 0.0
        span = self._hi - self._lo
        margin = max(self.spatial_tolerance * span, self.spatial_noise * self._err_level)
        beyond = max(x - self._hi, self._lo - x)
        return 0.9 + 0.1 * math.tanh(beyond / span) if beyond > margin else 0.0

    def _extreme(self, z: float) -> float:
        """Score of an extreme deviation (0 below ``extreme_z`` or the recent peak)."""
        if z < self.extreme_z or z <= self._z_peak or self._n * self.error_alpha < 1.0:
            return 0.0
        return 0.9 + 0.1 * (1.0 - self.extreme_z / z)

    def score_one(self, x: float, t: float) -> float:
        if self._n < self.short_window * 2:
            return 0.0
        z, score = self._evaluate(x, t)
        if self._quiet > 0 and score >= 0.5:
            score = 0.3
        return max(score, self._spatial(x, t), self._extreme(z))

    def learn_one(self, x: float, t: float) -> None:
        n = self._n
        if n == 0:
            self._t0 = t
            self._level = x
            self._lo = self._hi = x
        if n >= 2:
            z, score = self._evaluate(x, t)
        else:
            z, score = 0.0, 0.0
        self._cache = self._best_at = None
        if n >= self.short_window * 2:
            if score >= 0.5 or self._spatial(x, t) > 0.0:
                self._quiet = self.refractory
            elif self._quiet > 0:
                self._quiet -= 1
        trusted = n * self.error_alpha >= 1.0  # scales learnt: deviations mean something
        if trusted:
            self._z_peak = max(self._z_peak * self._peak_decay, z)
        # long-run distribution of the short average of raw scores
        raw = z / (z + self.z_half)
        i = self._ring_i
        self._ring_sum += raw - self._ring[i]
        self._ring[i] = raw
        self._ring_i = (i + 1) % self.short_window
        if n >= self.short_window:
            avg = self._ring_sum / self.short_window
            a = self.long_alpha if n > 1.0 / self.long_alpha else 1.0 / (n + 1)
            if trusted:
                self._avg_peak = max(self._avg_peak * self._peak_decay, avg)
            d = avg - self._avg_mean
            self._avg_mean += a * d
            self._avg_var = (1 - a) * (self._avg_var + a * d * d)
        # the models and their mean absolute errors
        a = self.error_alpha if n > 1.0 / self.error_alpha else 1.0 / (n + 1)
        level_err = abs(x - self._level)
        self._err_level += a * (level_err - self._err_level)
        self._level += self.level_alpha * (x - self._level)
        for profile in self._profiles:
            profile.learn(x, t, self.level_alpha, a, 2.0 * level_err)
        self._lo = min(self._lo, x)
        self._hi = max(self._hi, x)
        self._n = n + 1

    def expectation(self, t: float) -> Expectation | None:
        if self._n < 2:
            return None
        pred, err = self._best(t)
        return Expectation(pred, err * 1.2533)

    def __getstate__(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__ if k not in _TRANSIENT}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._cache = self._best_at = None
        self.extreme_z = 500.0  # states saved before the setting existed
        for k, v in state.items():
            setattr(self, k, v)
