"""The default detector: robust prediction error, its anomaly likelihood, spatial novelty."""

from __future__ import annotations

import math
from array import array

from detectors.metric.base import Expectation, MetricDetector, register_detector

_LOG_FLOOR = math.log(1.0 - 0.9999999999)


def log_likelihood(likelihood: float) -> float:
    """Spread likelihoods near 1 over 0..1 (0.99999 -> 0.5), as HTM's NAB detector does.

    >>> round(log_likelihood(0.99999), 3)
    0.5
    """
    return math.log(1.0000000001 - likelihood) / _LOG_FLOOR


@register_detector("robust_likelihood")
class RobustLikelihood(MetricDetector):
    """Robust prediction error turned into an anomaly likelihood, with spatial novelty.

    Three online models predict the next value: a fast exponentially weighted level, and a
    time-of-day profile (``bins`` buckets over ``period`` seconds). The model with the smaller
    recent mean absolute error is trusted; its error, in units of that mean absolute error, is
    the deviation ``z``. The raw score ``z / (z + z_half)`` is averaged over the last
    ``short_window`` points and compared with the long-run distribution of that average (an
    exponentially weighted mean and variance): the Gaussian tail probability of the recent
    average is the anomaly likelihood, as in Numenta's HTM post-processing, and its log spread
    is the score. A value beyond the range seen so far by more than ``spatial_tolerance`` of that
    range scores 1 (spatial novelty). Memory is constant: a few floats plus two small arrays.

    Parameters
    ----------
    level_alpha
        Smoothing of the level that predicts the next value.
    error_alpha
        Smoothing of the mean absolute errors (the robust scales).
    z_half
        Deviation at which the raw score is 0.5.
    short_window
        Points averaged before comparing with the long-run distribution.
    long_alpha
        Smoothing of the long-run mean and variance of that average.
    spatial_tolerance
        Share of the seen range a value must exceed it by to count as novel; 0 disables.
    period, bins
        Seasonal profile: one bucket per ``period / bins`` seconds.
    season_alpha
        Smoothing of each bucket's mean.

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
        "_avg_var",
        "_err_level",
        "_err_season",
        "_hi",
        "_level",
        "_lo",
        "_n",
        "_ring",
        "_ring_i",
        "_ring_sum",
        "_season",
        "_season_n",
        "bins",
        "error_alpha",
        "level_alpha",
        "long_alpha",
        "period",
        "season_alpha",
        "short_window",
        "spatial_tolerance",
        "z_half",
    )

    def __init__(
        self,
        *,
        level_alpha: float = 0.5,
        error_alpha: float = 0.01,
        z_half: float = 3.0,
        short_window: int = 10,
        long_alpha: float = 0.002,
        spatial_tolerance: float = 0.05,
        period: float = 86400.0,
        bins: int = 96,
        season_alpha: float = 0.2,
    ) -> None:
        self.level_alpha = level_alpha
        self.error_alpha = error_alpha
        self.z_half = z_half
        self.short_window = short_window
        self.long_alpha = long_alpha
        self.spatial_tolerance = spatial_tolerance
        self.period = period
        self.bins = bins
        self.season_alpha = season_alpha
        self._n = 0
        self._level = 0.0
        self._err_level = 0.0
        self._err_season = 0.0
        self._lo = math.inf
        self._hi = -math.inf
        self._season = array("d", bytes(8 * bins))
        self._season_n = array("H", bytes(2 * bins))
        self._ring = array("d", bytes(8 * short_window))
        self._ring_i = 0
        self._ring_sum = 0.0
        self._avg_mean = 0.0
        self._avg_var = 0.0

    def _bin(self, t: float) -> int:
        return int((t % self.period) / self.period * self.bins) % self.bins

    def _use_season(self, b: int) -> bool:
        return self._season_n[b] >= 3 and self._err_season < self._err_level

    def _deviation(self, x: float, t: float) -> float:
        """Absolute error of the trusted model in units of its mean absolute error."""
        b = self._bin(t)
        if self._use_season(b):
            err, scale = abs(x - self._season[b]), self._err_season
        else:
            err, scale = abs(x - self._level), self._err_level
        floor = 1e-3 * max(abs(self._level), self._hi - self._lo, 1e-9)
        return err / max(scale, floor)

    def _raw(self, x: float, t: float) -> float:
        z = self._deviation(x, t)
        return z / (z + self.z_half)

    def score_one(self, x: float, t: float) -> float:
        if self._n < 2:
            return 0.0
        if self.spatial_tolerance > 0 and self._hi > self._lo:
            tol = (self._hi - self._lo) * self.spatial_tolerance
            if x > self._hi + tol or x < self._lo - tol:
                return 1.0
        raw = self._raw(x, t)
        oldest = self._ring[self._ring_i]
        avg = (self._ring_sum - oldest + raw) / self.short_window
        if self._n < self.short_window * 2:
            return 0.0
        std = max(math.sqrt(self._avg_var), 0.01)
        zz = (avg - self._avg_mean) / std
        likelihood = 1.0 - 0.5 * math.erfc(zz / math.sqrt(2.0))
        return log_likelihood(likelihood)

    def learn_one(self, x: float, t: float) -> None:
        b = self._bin(t)
        if self._n == 0:
            self._level = x
            self._lo = self._hi = x
        raw = self._raw(x, t) if self._n >= 2 else 0.0
        # long-run distribution of the short average
        i = self._ring_i
        self._ring_sum += raw - self._ring[i]
        self._ring[i] = raw
        self._ring_i = (i + 1) % self.short_window
        if self._n >= self.short_window:
            avg = self._ring_sum / self.short_window
            a = self.long_alpha if self._n > 1.0 / self.long_alpha else 1.0 / (self._n + 1)
            d = avg - self._avg_mean
            self._avg_mean += a * d
            self._avg_var = (1 - a) * (self._avg_var + a * d * d)
        # models and their mean absolute errors
        a = self.error_alpha if self._n > 1.0 / self.error_alpha else 1.0 / (self._n + 1)
        self._err_level += a * (abs(x - self._level) - self._err_level)
        if self._season_n[b] > 0:
            self._err_season += a * (abs(x - self._season[b]) - self._err_season)
            self._season[b] += self.season_alpha * (x - self._season[b])
        else:
            self._err_season += a * (abs(x - self._level) * 1.5 - self._err_season)
            self._season[b] = x
        if self._season_n[b] < 65535:
            self._season_n[b] += 1
        self._level += self.level_alpha * (x - self._level)
        self._lo = min(self._lo, x)
        self._hi = max(self._hi, x)
        self._n += 1

    def expectation(self, t: float) -> Expectation | None:
        if self._n < 2:
            return None
        b = self._bin(t)
        if self._use_season(b):
            return Expectation(self._season[b], self._err_season * 1.2533)
        return Expectation(self._level, self._err_level * 1.2533)

    def __getstate__(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
