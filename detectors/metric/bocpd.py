"""Bayesian online change-point detection (Adams and MacKay, 2007).

The posterior over the *run length* (points since the last change) is updated with each
value: every run either grows by one, with probability ``1 - 1/hazard`` times the
predictive probability of the value under the Normal model of that run, or ends, and a
new run of length 0 starts. A change moves the mass to short runs within a point or two,
so the score is the posterior mass of runs shorter than ``short_run``, less what the
hazard alone puts there, on a 0..1 scale.

Each run's model is Normal with unknown mean and variance under a Normal-Gamma prior, so
its predictive is a Student t (the paper's conjugate case). Values are first standardised
by a slow exponentially weighted median-like level and mean absolute deviation, so that one
prior fits every series whatever its units; run lengths beyond ``max_run`` are pooled
into the longest (truncation, as the paper suggests for constant memory).

Reference: R. P. Adams and D. J. C. MacKay, "Bayesian Online Changepoint Detection",
arXiv:0710.3742 (2007). Written from that description.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detectors.metric.base import Expectation, MetricDetector, register_detector

MIN_POINTS = 10
"""Points before it scores: until then every run is short."""


@register_detector("bocpd")
class BayesianChangePoint(MetricDetector):
    """Run-length posterior of Adams and MacKay's change-point detector, as a score.

    Parameters
    ----------
    hazard
        Expected points between changes (the constant hazard is ``1 / hazard``).
    max_run
        Run lengths kept; longer ones are pooled into the last.
    short_run
        Runs shorter than this count as "just changed".
    scale_alpha
        Smoothing of the level and mean absolute deviation that standardise the values.
    kappa0, alpha0, beta0
        Normal-Gamma prior of a new run, on the standardised values (mean 0).

    >>> det = BayesianChangePoint()
    >>> scores = []
    >>> for i in range(300):
    ...     x = 10.0 + (i % 7) * 0.1 + (20.0 if i >= 250 else 0.0)
    ...     scores.append(det.score_one(x, 60.0 * i))
    ...     det.learn_one(x, 60.0 * i)
    >>> max(scores[60:250]) < 0.5 < max(scores[250:255])
    True
    """

    def __init__(
        self,
        *,
        hazard: float = 250.0,
        max_run: int = 100,
        short_run: int = 3,
        scale_alpha: float = 0.01,
        kappa0: float = 1.0,
        alpha0: float = 1.0,
        beta0: float = 1.0,
    ) -> None:
        self.hazard = float(hazard)
        self.max_run = int(max_run)
        self.short_run = int(short_run)
        self.scale_alpha = float(scale_alpha)
        self.prior = (float(kappa0), float(alpha0), float(beta0))
        self.n = 0
        self.level = 0.0
        self.mad = 0.0
        self._reset_runs()
        self._pending: tuple[float, float, tuple[np.ndarray, ...]] | None = None
        self._lgr: np.ndarray | None = None

    @property
    def _log_gamma_ratio(self) -> np.ndarray:
        """``lgamma((df + 1) / 2) - lgamma(df / 2)`` by run length: the shape of a run of
        length r is ``alpha0 + r / 2``, so it depends on r alone."""
        cached = getattr(self, "_lgr", None)
        if cached is None:
            alpha0 = self.prior[1]
            cached = np.array(
                [
                    math.lgamma(alpha0 + 0.5 * r + 0.5) - math.lgamma(alpha0 + 0.5 * r)
                    for r in range(self.max_run + 1)
                ]
            )
            self._lgr = cached
        return cached

    def _reset_runs(self) -> None:
        kappa0, alpha0, beta0 = self.prior
        self.runs = np.array([1.0])
        self.mu = np.array([0.0])
        self.kappa = np.array([kappa0])
        self.alpha = np.array([alpha0])
        self.beta = np.array([beta0])

    def _standardise(self, x: float) -> float:
        scale = max(self.mad * 1.2533, 1e-9 * max(abs(self.level), 1.0))
        return max(-1e6, min(1e6, (x - self.level) / scale))

    def _step(self, z: float) -> tuple[np.ndarray, ...]:
        """The run-length posterior and run statistics after ``z`` (nothing committed)."""
        df = 2.0 * self.alpha
        var = self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa)
        t = (z - self.mu) ** 2 / (df * var)
        log_pred = (
            self._log_gamma_ratio[: len(df)]
            - 0.5 * np.log(np.pi * df * var)
            - (df + 1.0) / 2.0 * np.log1p(t)
        )
        weighted = self.runs * np.exp(log_pred - log_pred.max())
        h = 1.0 / self.hazard
        grown = weighted * (1.0 - h)
        runs = np.concatenate(([weighted.sum() * h], grown))
        total = runs.sum()
        runs = runs / total if total > 0 and math.isfinite(total) else np.eye(1, len(runs))[0]
        kappa0, alpha0, beta0 = self.prior
        mu = np.concatenate(([0.0], (self.kappa * self.mu + z) / (self.kappa + 1.0)))
        beta = np.concatenate(
            ([beta0], self.beta + self.kappa * (z - self.mu) ** 2 / (2.0 * (self.kappa + 1.0)))
        )
        kappa = np.concatenate(([kappa0], self.kappa + 1.0))
        alpha = np.concatenate(([alpha0], self.alpha + 0.5))
        if len(runs) > self.max_run:  # pool the longest runs into one
            runs[self.max_run - 1] += runs[self.max_run :].sum()
            runs, mu, kappa, alpha, beta = (
                a[: self.max_run] for a in (runs, mu, kappa, alpha, beta)
            )
        return runs, mu, kappa, alpha, beta

    def score_one(self, x: float, t: float) -> float:
        if not math.isfinite(x) or self.n < MIN_POINTS:
            return 0.0
        state = self._step(self._standardise(x))
        self._pending = (x, t, state)
        floor = min(1.0, self.short_run / self.hazard)
        mass = float(state[0][: self.short_run].sum())
        return max(0.0, min(1.0, (mass - floor) / (1.0 - floor)))

    def learn_one(self, x: float, t: float) -> None:
        if not math.isfinite(x):
            return
        if self.n >= 2:
            pending = self._pending
            if pending is not None and pending[0] == x and pending[1] == t:
                state = pending[2]
            else:
                state = self._step(self._standardise(x))
            self.runs, self.mu, self.kappa, self.alpha, self.beta = state
        self._pending = None
        self._lgr = None
        a = max(self.scale_alpha, 1.0 / (self.n + 1))
        if self.n:
            self.mad += a * (abs(x - self.level) - self.mad)
        self.level += a * (x - self.level)
        self.n += 1

    def expectation(self, t: float) -> Expectation | None:
        if self.n < 2:
            return None
        return Expectation(self.level, self.mad * 1.2533)

    def __getstate__(self) -> tuple[object, ...]:
        arrays = [a.tolist() for a in (self.runs, self.mu, self.kappa, self.alpha, self.beta)]
        settings = [self.hazard, self.max_run, self.short_run, self.scale_alpha, *self.prior]
        return (1, settings, self.n, self.level, self.mad, arrays)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        _, settings, n, level, mad, arrays = state
        self.hazard, self.scale_alpha = float(settings[0]), float(settings[3])
        self.max_run, self.short_run = int(settings[1]), int(settings[2])
        self.prior = (float(settings[4]), float(settings[5]), float(settings[6]))
        self.n, self.level, self.mad = int(n), float(level), float(mad)
        self.runs, self.mu, self.kappa, self.alpha, self.beta = (
            np.array(a, dtype=float) for a in arrays
        )
        self._pending = None
        self._lgr = None
