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


@register_detector("robust_likelihood")
class RobustLikelihood(MetricDetector):
    """Robust prediction error turned into an anomaly likelihood, with spatial novelty.

    Two online models predict the next value: an exponentially weighted level, and a
    seasonal one (a deseasonalised level plus a time-of-day profile of ``bins`` buckets over
    ``period`` seconds, as additive Holt-Winters without trend). The model with the smaller
    recent mean absolute error is trusted; its error, in units of that mean absolute error,
    is the deviation ``z``. The raw score ``z / (z + z_half)`` is averaged over the last
    ``short_window`` points and compared with the long-run distribution of that average (an
    exponentially weighted mean and variance): the Gaussian tail probability of the recent
    average is the anomaly likelihood, as in Numenta's HTM post-processing, spread by its
    logarithm (tail 1e-5 scores 0.5). As in HTM, only the first of consecutive very
    unlikely points keeps its score; the next ones are lowered to ``0.3``. A value beyond
    the range seen so far by more than ``spatial_tolerance`` of that range scores at least
    ``0.9`` (spatial novelty). Memory is constant: a few floats plus small arrays.

    Parameters
    ----------
    level_alpha
        Smoothing of the level that predicts the next value.
    error_alpha
        Smoothing of the mean absolute errors (the robust scales).
    error_clip
        If positive, errors are clipped at this many mean absolute errors before they update
        the scales (off by default: on NAB, letting an anomaly widen the scale for a while
        suppressed more false alarms than it cost in detections).
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
        Smoothing of each bucket of the profile.
    min_std
        Floor of the long-run standard deviation of the averaged raw score.

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
        "_deseason",
        "_err_level",
        "_err_season",
        "_hi",
        "_level",
        "_lo",
        "_n",
        "_peak_decay",
        "_quiet",
        "_ring",
        "_ring_i",
        "_ring_sum",
        "_season",
        "_season_n",
        "_z_peak",
        "bins",
        "error_alpha",
        "error_clip",
        "level_alpha",
        "long_alpha",
        "min_std",
        "novel_z",
        "peak_half_life",
        "period",
        "refractory",
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
        error_clip: float = 0.0,
        z_half: float = 3.0,
        short_window: int = 10,
        long_alpha: float = 0.002,
        spatial_tolerance: float = 0.05,
        period: float = 86400.0,
        bins: int = 288,
        season_alpha: float = 0.3,
        min_std: float = 0.01,
        novel_z: float = 6.0,
        peak_half_life: float = 2000.0,
        refractory: int = 300,
    ) -> None:
        self.level_alpha = level_alpha
        self.error_alpha = error_alpha
        self.error_clip = error_clip
        self.z_half = z_half
        self.short_window = short_window
        self.long_alpha = long_alpha
        self.spatial_tolerance = spatial_tolerance
        self.period = period
        self.bins = bins
        self.season_alpha = season_alpha
        self.min_std = min_std
        self.novel_z = novel_z
        self.peak_half_life = peak_half_life
        self.refractory = refractory
        self._n = 0
        self._level = 0.0
        self._deseason = 0.0
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
        self._peak_decay = 0.5 ** (1.0 / peak_half_life)
        self._z_peak = 0.0
        self._quiet = 0

    def _bin(self, t: float) -> int:
        return int((t % self.period) / self.period * self.bins) % self.bins

    def _use_season(self, b: int) -> bool:
        return self._season_n[b] >= 2 and self._err_season < self._err_level

    def _deviation(self, x: float, t: float) -> float:
        """Absolute error of the trusted model in units of its mean absolute error."""
        b = self._bin(t)
        if self._use_season(b):
            err, scale = abs(x - self._deseason - self._season[b]), self._err_season
        else:
            err, scale = abs(x - self._level), self._err_level
        floor = 1e-3 * max(abs(self._level), self._hi - self._lo, 1e-9)
        return err / max(scale, floor)

    def _likelihood_score(self, x: float, t: float) -> float:
        z = self._deviation(x, t)
        raw = z / (z + self.z_half)
        oldest = self._ring[self._ring_i]
        avg = (self._ring_sum - oldest + raw) / self.short_window
        std = max(math.sqrt(self._avg_var), self.min_std)
        tail = 0.5 * math.erfc((avg - self._avg_mean) / std / math.sqrt(2.0))
        score = spread_tail(tail)
        # the point on its own: a deviation larger than any seen lately
        if z > self.novel_z and z > self._z_peak:
            score = max(score, 1.0 - 0.5 * self._z_peak / z)
        return score

    def score_one(self, x: float, t: float) -> float:
        if self._n < self.short_window * 2:
            return 0.0
        score = self._likelihood_score(x, t)
        if self._quiet > 0 and score >= 0.5:
            score = 0.3
        if self.spatial_tolerance > 0 and self._hi > self._lo:
            span = self._hi - self._lo
            excess = max(x - self._hi, self._lo - x) / span
            if excess > self.spatial_tolerance:
                score = max(score, 0.9 + 0.1 * math.tanh(excess))
        return score

    def learn_one(self, x: float, t: float) -> None:
        b = self._bin(t)
        if self._n == 0:
            self._level = self._deseason = x
            self._lo = self._hi = x
        z = self._deviation(x, t) if self._n >= 2 else 0.0
        raw = z / (z + self.z_half)
        if self._n >= self.short_window * 2:
            if self._likelihood_score(x, t) >= 0.5:
                self._quiet = self.refractory
            elif self._quiet > 0:
                self._quiet -= 1
        self._z_peak = max(self._z_peak * self._peak_decay, z)
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
        # the two models and their mean absolute errors
        a = self.error_alpha if self._n > 1.0 / self.error_alpha else 1.0 / (self._n + 1)
        clip = self.error_clip
        self._err_level += a * (
            min(abs(x - self._level), clip * self._err_level if clip > 0 else math.inf)
            - self._err_level
        )
        self._level += self.level_alpha * (x - self._level)
        if self._season_n[b] >= 2:
            season_err = abs(x - self._deseason - self._season[b])
        else:
            season_err = 2.0 * abs(x - self._level)
        self._err_season += a * (
            min(season_err, clip * self._err_season if clip > 0 else math.inf) - self._err_season
        )
        if self._season_n[b] == 0:
            self._season[b] = x - self._deseason
        else:
            self._season[b] += self.season_alpha * (x - self._deseason - self._season[b])
        self._deseason += self.level_alpha * (x - self._season[b] - self._deseason)
        if self._season_n[b] < 65535:
            self._season_n[b] += 1
        self._lo = min(self._lo, x)
        self._hi = max(self._hi, x)
        self._n += 1

    def expectation(self, t: float) -> Expectation | None:
        if self._n < 2:
            return None
        b = self._bin(t)
        if self._use_season(b):
            return Expectation(self._deseason + self._season[b], self._err_season * 1.2533)
        return Expectation(self._level, self._err_level * 1.2533)

    def __getstate__(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
