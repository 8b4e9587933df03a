"""A robust online trend model: where is a series heading, and how sure are we.

River's Holt-Winters extrapolates a smoothed level and slope but says nothing about how
uncertain the slope is, and one spike bends it. Predicting a limit crossing needs both a
slope and its standard error, so :class:`RobustTrend` fits a straight line by least squares
over a sliding window of bucket means, with

* winsorised inputs (a lone bucket beyond the current fit +/- ``clip_sigmas`` residual
  standard deviations is clipped, so spikes cannot fake a trend; a run of them is a real
  change and passes),
* an optional seasonal profile (classical centred-moving-average decomposition, learned
  online with half a season of delay) removed before fitting,
* a slope standard error inflated by ``(1 + rho) / (1 - rho)``, rho being the lag-one
  autocorrelation of the one-step residuals, because real metric noise is far from white.

Every update is O(1): the window's sums are kept incrementally (and recomputed from the
window once per window length to stop rounding drift).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TrendEstimate:
    """A fitted line and its uncertainty, in epoch seconds.

    Parameters
    ----------
    time
        Time of the estimate: mean sample time of the last closed bucket.
    level
        Fitted (deseasonalised) level at ``time``.
    slope
        Change per second.
    slope_se
        Standard error of ``slope`` (autocorrelation-corrected).
    points
        Buckets in the fit.
    mean_time
        Mean time of the buckets in the fit.
    sxx
        Sum of squared deviations of the bucket times from ``mean_time`` (s^2).
    resid_var
        Residual variance of the fit, inflated for autocorrelation.
    """

    time: float
    level: float
    slope: float
    slope_se: float
    points: int
    mean_time: float
    sxx: float
    resid_var: float

    def level_at(self, t: float) -> float:
        """Extrapolated trend level at time ``t``.

        >>> est = TrendEstimate(0.0, 1.0, 0.5, 0.0, 10, -5.0, 100.0, 0.0)
        >>> est.level_at(4.0)
        3.0
        """
        return self.level + self.slope * (t - self.time)

    def level_sd_at(self, t: float) -> float:
        """Standard deviation of the fitted line at ``t`` (confidence, not prediction, band)."""
        var = self.resid_var * (1.0 / self.points + (t - self.mean_time) ** 2 / self.sxx)
        return math.sqrt(max(var, 0.0))


class RobustTrend:
    """Sliding-window, winsorised least-squares trend of a metric series.

    Parameters
    ----------
    bucket_seconds
        Samples are averaged into buckets of this width; the line is fitted on bucket means.
    lookback_seconds
        Length of the fit window (stretched to hold ``min_points`` buckets on sparse series).
    season_seconds
        Period of the seasonal profile to remove, or ``None``.
    season_alpha
        Smallest learning rate of the seasonal profile (per season).
    clip_sigmas
        Winsorisation width, in residual standard deviations.
    min_points
        Buckets needed before a line is fitted.

    Examples
    --------
    >>> model = RobustTrend(bucket_seconds=60, lookback_seconds=3600)
    >>> for i in range(120):
    ...     est = model.learn_one(i * 60.0, 10.0 + 0.01 * i)
    >>> round(est.slope * 3600, 3), round(est.level, 2)
    (0.6, 11.18)
    """

    def __init__(
        self,
        *,
        bucket_seconds: float,
        lookback_seconds: float,
        season_seconds: float | None = None,
        season_alpha: float = 0.1,
        clip_sigmas: float = 4.0,
        min_points: int = 6,
    ) -> None:
        self.bucket_seconds = float(bucket_seconds)
        self.lookback_buckets = max(round(lookback_seconds / bucket_seconds), 3)
        self.season_bins = max(round(season_seconds / bucket_seconds), 2) if season_seconds else 0
        self.season_alpha = season_alpha
        self.clip_sigmas = clip_sigmas
        self.min_points = max(min_points, 3)
        self._reset()

    def _reset(self) -> None:
        self.bucket: int | None = None
        self.bucket_sum = 0.0
        self.bucket_time = 0.0
        self.bucket_n = 0
        self.window: deque[tuple[float, float]] = deque()
        self.origin = 0
        self.sums = [0.0] * 5  # x, xx, y, xy, yy with x = time / bucket - origin
        self.added = 0
        self.last_resid: float | None = None
        self.outlier_side = 0
        self.c0 = 0.0
        self.c1 = 0.0
        self.estimate: TrendEstimate | None = None
        bins = self.season_bins
        self.raw: list[float] = [0.0] * bins
        self.raw_at: list[int] = [-1] * bins
        self.raw_sum = 0.0
        self.raw_n = 0
        self.profile: list[float] = [0.0] * bins
        self.seen: list[int] = [0] * bins

    # -- learning -------------------------------------------------------------------------

    def learn_one(self, t: float, y: float) -> TrendEstimate | None:
        """Add one sample; returns a new estimate when a bucket closes, else ``None``.

        Samples older than the open bucket are added to it (a stream is nearly ordered);
        NaN and infinite values are ignored.
        """
        if not math.isfinite(y) or not math.isfinite(t):
            return None
        k = math.floor(t / self.bucket_seconds)
        result = None
        if self.bucket is None:
            self.bucket = k
        elif k > self.bucket:
            result = self._close()
            self.bucket = k
        self.bucket_sum += y
        self.bucket_time += t
        self.bucket_n += 1
        return result

    def _close(self) -> TrendEstimate | None:
        assert self.bucket is not None
        k = self.bucket
        value = self.bucket_sum / self.bucket_n
        x = self.bucket_time / self.bucket_n / self.bucket_seconds  # mean sample time, buckets
        self.bucket_sum = 0.0
        self.bucket_time = 0.0
        self.bucket_n = 0
        if self.season_bins:
            self._learn_season(k, value)
            bin_ = k % self.season_bins
            if self.seen[bin_]:
                value -= self.profile[bin_]
        est = self.estimate
        if est is not None and est.points >= self.min_points:
            predicted = est.level_at(x * self.bucket_seconds)
            resid = value - predicted
            sd = math.sqrt(max(self._plain_var(), self.c0))
            bound = self.clip_sigmas * sd
            if sd > 0.0 and abs(resid) > bound:
                side = 1 if resid > 0 else -1
                # Only the first outlier of a run is clipped: a spike is one bucket, a change
                # of level or of slope goes on, and must reach the fit unbent.
                if side != self.outlier_side:
                    value = predicted + side * bound
                    resid = value - predicted
                self.outlier_side = side
            else:
                self.outlier_side = 0
            self._track_autocorrelation(resid)
        self._add(x, value)
        self.estimate = self._fit(x)
        return self.estimate

    def _track_autocorrelation(self, resid: float) -> None:
        alpha = 2.0 / (self.lookback_buckets + 1.0)
        self.c0 += alpha * (resid * resid - self.c0)
        if self.last_resid is not None:
            self.c1 += alpha * (resid * self.last_resid - self.c1)
        self.last_resid = resid

    def _add(self, x: float, y: float) -> None:
        window = self.window
        window.append((x, y))
        # Sparse series keep at least ``min_points`` buckets, even beyond the lookback.
        while len(window) > self.min_points and window[0][0] <= x - self.lookback_buckets:
            self._accumulate(*window.popleft(), sign=-1.0)
        self.added += 1
        if self.added >= self.lookback_buckets:
            self._recompute()
        else:
            self._accumulate(x, y, sign=1.0)

    def _accumulate(self, x: float, y: float, *, sign: float) -> None:
        x -= self.origin
        s = self.sums
        s[0] += sign * x
        s[1] += sign * x * x
        s[2] += sign * y
        s[3] += sign * x * y
        s[4] += sign * y * y

    def _recompute(self) -> None:
        self.added = 0
        self.origin = math.floor(self.window[0][0])
        self.sums = [0.0] * 5
        for x, y in self.window:
            self._accumulate(x, y, sign=1.0)

    def _plain_var(self) -> float:
        n = len(self.window)
        if n < 3:
            return 0.0
        sx, sxx, sy, sxy, syy = self.sums
        xc = sxx - sx * sx / n
        yc = syy - sy * sy / n
        b = (sxy - sx * sy / n) / xc if xc > 0 else 0.0
        return max(yc - b * b * xc, 0.0) / (n - 2)

    def _fit(self, x: float) -> TrendEstimate | None:
        n = len(self.window)
        if n < self.min_points:
            return None
        sx, sxx, sy, sxy, syy = self.sums
        xc = sxx - sx * sx / n
        if xc <= 0:
            return None
        b = (sxy - sx * sy / n) / xc
        var = max(syy - sy * sy / n - b * b * xc, 0.0) / (n - 2)
        rho = min(max(self.c1 / self.c0, 0.0), 0.9) if self.c0 > 0 else 0.0
        var *= (1.0 + rho) / (1.0 - rho)
        w = self.bucket_seconds
        xbar = sx / n
        x_now = x - self.origin
        return TrendEstimate(
            time=x * w,
            level=sy / n + b * (x_now - xbar),
            slope=b / w,
            slope_se=math.sqrt(var / xc) / w,
            points=n,
            mean_time=(xbar + self.origin) * w,
            sxx=xc * w * w,
            resid_var=var,
        )

    def _learn_season(self, k: int, value: float) -> None:
        bins = self.season_bins
        last = self.raw_at[(k - 1) % bins]
        gap = k - last if last >= 0 else 1
        for j in range(k - min(gap, bins) + 1, k + 1):  # slots skipped by a gap go stale
            slot = j % bins
            if self.raw_at[slot] >= 0:
                self.raw_sum -= self.raw[slot]
                self.raw_n -= 1
                self.raw_at[slot] = -1
        slot = k % bins
        self.raw[slot] = value
        self.raw_at[slot] = k
        self.raw_sum += value
        self.raw_n += 1
        if self.raw_n < 0.9 * bins:
            return
        mid = k - bins // 2
        mslot = mid % bins
        if self.raw_at[mslot] != mid:
            return
        resid = self.raw[mslot] - self.raw_sum / self.raw_n
        alpha = max(1.0 / (self.seen[mslot] + 1), self.season_alpha)
        self.profile[mslot] += alpha * (resid - self.profile[mslot])
        self.seen[mslot] += 1

    # -- persistence ----------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state; :meth:`from_state` restores an identical model."""
        return {
            "bucket": self.bucket,
            "bucket_sum": self.bucket_sum,
            "bucket_time": self.bucket_time,
            "bucket_n": self.bucket_n,
            "window": [list(p) for p in self.window],
            "origin": self.origin,
            "sums": list(self.sums),
            "added": self.added,
            "last_resid": self.last_resid,
            "outlier_side": self.outlier_side,
            "c": [self.c0, self.c1],
            "raw": self.raw,
            "raw_at": self.raw_at,
            "raw_sum": self.raw_sum,
            "raw_n": self.raw_n,
            "profile": self.profile,
            "seen": self.seen,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`to_state` produced (same model parameters assumed)."""
        self._reset()
        self.bucket = state["bucket"]
        self.bucket_sum = float(state["bucket_sum"])
        self.bucket_time = float(state["bucket_time"])
        self.bucket_n = int(state["bucket_n"])
        self.window = deque((float(x), float(y)) for x, y in state["window"])
        self.origin = int(state["origin"])
        self.sums = [float(v) for v in state["sums"]]
        self.added = int(state["added"])
        self.last_resid = state["last_resid"]
        self.outlier_side = int(state["outlier_side"])
        self.c0, self.c1 = (float(v) for v in state["c"])
        if self.season_bins and len(state["profile"]) == self.season_bins:
            self.raw = [float(v) for v in state["raw"]]
            self.raw_at = [int(v) for v in state["raw_at"]]
            self.raw_sum = float(state["raw_sum"])
            self.raw_n = int(state["raw_n"])
            self.profile = [float(v) for v in state["profile"]]
            self.seen = [int(v) for v in state["seen"]]
        if self.window:
            self.estimate = self._fit(self.window[-1][0])
