"""River's anomaly detectors behind the :class:`MetricDetector` interface.

River is imported when one of these detectors is built, not when this module is imported
(importing ``river.anomaly`` costs about a second and a hundred megabytes).
"""

from __future__ import annotations

import contextlib
import math
from abc import abstractmethod
from typing import Any

from detectors.metric.base import Expectation, MetricDetector, register_detector


class _Baseline:
    """Exponentially weighted mean and mean absolute deviation: the expectation to report."""

    __slots__ = ("alpha", "mad", "mean", "n")

    def __init__(self, alpha: float = 0.02) -> None:
        self.alpha = alpha
        self.n = 0
        self.mean = 0.0
        self.mad = 0.0

    def update(self, x: float) -> None:
        a = max(self.alpha, 1.0 / (self.n + 1))
        if self.n:
            self.mad += a * (abs(x - self.mean) - self.mad)
        self.mean += a * (x - self.mean)
        self.n += 1

    def z(self, x: float) -> float:
        return (x - self.mean) / (self.mad * 1.2533) if self.mad > 0 else 0.0

    def expectation(self) -> Expectation | None:
        return Expectation(self.mean, self.mad * 1.2533) if self.n >= 2 else None

    def __getstate__(self) -> tuple[float, int, float, float]:
        return (self.alpha, self.n, self.mean, self.mad)

    def __setstate__(self, state: tuple[float, int, float, float]) -> None:
        self.alpha, self.n, self.mean, self.mad = state


MAX_MAGNITUDE = 1e150
"""Values are clipped to this magnitude before they reach River (its squares of 1e300
overflow)."""


class _RiverDetector(MetricDetector):
    """Common part: a River model, a baseline for expectations, a 0..1 mapping.

    :meth:`score_one` and :meth:`learn_one` guard what River does not: a missing or
    infinite value scores 0 and is not learnt, a huge one is clipped to
    :data:`MAX_MAGNITUDE`, and while the series has been constant its own value scores 0
    (River's Gaussian scores a flat line 1.0). The models' own steps are ``_score`` and
    ``_learn``.
    """

    def __init__(self, model: Any, z_half: float = 3.0) -> None:
        self.model = model
        self.z_half = z_half
        self.baseline = _Baseline()

    def expectation(self, t: float) -> Expectation | None:
        return self.baseline.expectation()

    def score_one(self, x: float, t: float) -> float:
        if not math.isfinite(x):
            return 0.0
        b = self.baseline
        if b.n >= 2 and b.mad == 0.0 and x == b.mean:
            return 0.0
        s = self._score(max(-MAX_MAGNITUDE, min(MAX_MAGNITUDE, x)), t)
        return min(max(s, 0.0), 1.0) if math.isfinite(s) else 0.0

    def learn_one(self, x: float, t: float) -> None:
        if math.isfinite(x):
            self._learn(max(-MAX_MAGNITUDE, min(MAX_MAGNITUDE, x)), t)

    @abstractmethod
    def _score(self, x: float, t: float) -> float: ...

    @abstractmethod
    def _learn(self, x: float, t: float) -> None: ...

    def _squash(self, s: float) -> float:
        s = abs(s) if math.isfinite(s) else 0.0
        return s / (s + self.z_half)


@register_detector("sad")
class StandardAbsoluteDeviationDetector(_RiverDetector):
    """River's ``StandardAbsoluteDeviation`` (|x - mean| / std), squashed to 0..1.

    Parameters
    ----------
    z_half
        Deviation (in standard deviations) that scores 0.5.
    """

    def __init__(self, *, z_half: float = 3.0) -> None:
        from river import anomaly

        super().__init__(anomaly.StandardAbsoluteDeviation(), z_half)

    def _score(self, x: float, t: float) -> float:
        if self.baseline.n < 2:
            return 0.0
        return self._squash(self.model.score_one(None, x))

    def _learn(self, x: float, t: float) -> None:
        self.model.learn_one(None, x)
        self.baseline.update(x)


@register_detector("gaussian")
class GaussianDetector(_RiverDetector):
    """River's ``GaussianScorer``: two-sided tail probability under a (windowed) Gaussian.

    Parameters
    ----------
    window_size
        Points the Gaussian is fitted on (``None``: all of them).
    grace_period
        Points before it scores anything.
    """

    def __init__(self, *, window_size: int | None = 500, grace_period: int = 100) -> None:
        from river import anomaly

        super().__init__(anomaly.GaussianScorer(window_size=window_size, grace_period=grace_period))

    def _score(self, x: float, t: float) -> float:
        return float(self.model.score_one(None, x))

    def _learn(self, x: float, t: float) -> None:
        self.model.learn_one(None, x)
        self.baseline.update(x)


@register_detector("half_space_trees")
class HalfSpaceTreesDetector(_RiverDetector):
    """River's ``HalfSpaceTrees`` on the robust z-score, mapped into [0, 1] by a tanh.

    Mapping through a running robust z-score (rather than a running min-max scaler) keeps
    one spike from stretching the range for good.

    Parameters
    ----------
    n_trees, height, window_size, seed
        As in River.
    """

    def __init__(
        self, *, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42
    ) -> None:
        from river import anomaly

        super().__init__(
            anomaly.HalfSpaceTrees(
                n_trees=n_trees,
                height=height,
                window_size=window_size,
                limits={"x": (0.0, 1.0)},
                seed=seed,
            )
        )

    def _feature(self, x: float) -> dict[str, float]:
        return {"x": 0.5 + 0.5 * math.tanh(self.baseline.z(x) / 6.0)}

    def _score(self, x: float, t: float) -> float:
        return float(self.model.score_one(self._feature(x)))

    def _learn(self, x: float, t: float) -> None:
        self.model.learn_one(self._feature(x))
        self.baseline.update(x)


@register_detector("holt_winters")
class HoltWintersDetector(_RiverDetector):
    """River's ``PredictiveAnomalyDetection`` around an additive ``HoltWinters`` forecaster.

    Scores 0 until one full season has been learnt (River's model cannot forecast before).

    Parameters
    ----------
    alpha, beta, gamma, seasonality
        Holt-Winters smoothing and season length in points.
    n_std
        Width of River's normal band.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.1,
        gamma: float = 0.6,
        seasonality: int = 24,
        n_std: float = 3.0,
    ) -> None:
        from river import anomaly, time_series

        super().__init__(
            anomaly.PredictiveAnomalyDetection(
                time_series.HoltWinters(
                    alpha=alpha, beta=beta, gamma=gamma, seasonality=seasonality
                ),
                horizon=1,
                n_std=n_std,
                warmup_period=2 * seasonality,
            )
        )
        self.seasonality = seasonality

    def _score(self, x: float, t: float) -> float:
        if self.baseline.n <= 2 * self.seasonality:
            return 0.0
        try:
            s = float(self.model.score_one(None, x))
        except (IndexError, ZeroDivisionError, ValueError):
            return 0.0
        return min(max(s, 0.0), 1.0) if math.isfinite(s) else 0.0

    def _learn(self, x: float, t: float) -> None:
        # River's forecaster cannot fit before a full season
        with contextlib.suppress(IndexError, ZeroDivisionError, ValueError):
            self.model.learn_one(None, x)
        self.baseline.update(x)
