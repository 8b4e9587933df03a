"""An ensemble of ``robust_likelihood`` and ``context``: the larger of their weighted scores.

The two see different things. ``robust_likelihood`` asks how far a value is from what its
models predict, in units of their recent error; ``context`` asks whether the value ever
followed its recent past at all. The ensemble scores ``max(robust, context_weight *
context)``: with the default weight of 0.5 and the default threshold of 0.5, the contextual
detector alone opens an episode only when the value is new in every context it arrives in
(its score is 1), and otherwise the ensemble scores what ``robust_likelihood`` scores. The
weight was chosen by leave-one-group-out cross-validation on NAB (``docs/detectors.md``).

Both detectors' state of a series live in rows of their own banks, moved together, so a
batch runs through both compiled loops in two calls.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from detectors.metric.base import BankedDetector, DetectorBank, Expectation, register_detector
from detectors.metric.context import ContextBank, ContextParams
from detectors.metric.robust import RobustBank, RobustLikelihood, RobustParams
from detectors.metric.robust import warm_up as warm_up_robust

STATE_LAYOUT = 1
"""First item of a pickled :class:`Ensemble`."""


class EnsembleBank(DetectorBank):
    """A :class:`RobustBank` and a :class:`ContextBank` whose rows go together."""

    def __init__(self, robust: RobustParams, context: ContextParams, context_weight: float) -> None:
        self.robust = RobustBank(robust)
        self.context = ContextBank(context)
        self.context_weight = float(context_weight)

    @property
    def key(self) -> Hashable:
        return ("ensemble", self.robust.params, self.context.params, self.context_weight)

    def allocate(self) -> int:
        row = self.robust.allocate()
        if self.context.allocate() != row:  # pragma: no cover - the banks move in step
            raise RuntimeError("ensemble banks out of step")
        return row

    def release(self, row: int) -> None:
        self.robust.release(row)
        self.context.release(row)

    def copy_row(self, source: EnsembleBank, source_row: int, row: int) -> None:
        self.robust.copy_row(source.robust, source_row, row)
        self.context.copy_row(source.context, source_row, row)

    def step(self, rows: np.ndarray, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        out = self.robust.step(rows, xs, ts)
        contextual = self.context.step(rows, xs, ts)[:, 0] * self.context_weight
        np.maximum(out[:, 0], contextual, out=out[:, 0])
        return out

    def new_detector(self) -> Ensemble:
        return Ensemble.view(self, self.allocate())


@register_detector("ensemble")
class Ensemble(BankedDetector):
    """``max(robust_likelihood, context_weight * context)`` per point.

    Parameters
    ----------
    context_weight
        Weight of the contextual score (0 leaves ``robust_likelihood`` alone).
    context
        Parameters of the ``context`` detector (a mapping).
    **robust
        Parameters of ``robust_likelihood``.

    >>> det = Ensemble()
    >>> scores = []
    >>> for i in range(600):
    ...     x = float(i % 10) + (30.0 if i == 500 else 0.0)
    ...     scores.append(det.score_one(x, 60.0 * i))
    ...     det.learn_one(x, 60.0 * i)
    >>> max(scores[200:500]) < 0.5 <= scores[500]
    True
    """

    bank: EnsembleBank

    def __init__(
        self,
        *,
        context_weight: float = 0.5,
        context: dict[str, Any] | None = None,
        **robust: Any,
    ) -> None:
        self.bank = EnsembleBank(
            RobustParams(**robust), ContextParams(**(context or {})), context_weight
        )
        self.row = self.bank.allocate()

    def new_bank(self) -> EnsembleBank:
        return EnsembleBank(
            self.bank.robust.params, self.bank.context.params, self.bank.context_weight
        )

    @classmethod
    def upgrade(cls, robust: RobustLikelihood, params: dict[str, Any]) -> Ensemble | None:
        """An ensemble of ``params`` that keeps what ``robust`` has learnt (its contextual
        half starts learning now), or ``None`` if ``robust`` has other parameters.

        >>> old = RobustLikelihood()
        >>> for i in range(200):
        ...     old.learn_one(10.0 + i % 3, 60.0 * i)
        >>> new = Ensemble.upgrade(old, {})
        >>> new.expectation(12000.0) == old.expectation(12000.0)
        True
        """
        detector = cls(**params)
        if detector.bank.robust.params != robust.bank.params:
            return None
        detector.bank.robust.copy_row(robust.bank, robust.row, detector.row)
        return detector

    @property
    def robust(self) -> RobustLikelihood:
        """The ``robust_likelihood`` view of this series (its expectation, its state)."""
        return RobustLikelihood.view(self.bank.robust, self.row)

    def score_one(self, x: float, t: float) -> float:
        contextual = self.bank.context.score(self.row, x, t) * self.bank.context_weight
        return max(self.robust.score_one(x, t), contextual)

    def learn_one(self, x: float, t: float) -> None:
        self.robust.learn_one(x, t)
        self.bank.context.learn(self.row, x, t)

    def expectation(self, t: float) -> Expectation | None:
        return self.robust.expectation(t)

    def step_one(self, x: float, t: float) -> tuple[float, Expectation | None]:
        contextual = self.bank.context.score(self.row, x, t) * self.bank.context_weight
        score, expectation = self.robust.step_one(x, t)
        self.bank.context.learn(self.row, x, t)
        return max(score, contextual), expectation

    def __getstate__(self) -> tuple[object, ...]:
        bank = self.bank
        return (
            STATE_LAYOUT,
            bank.context_weight,
            self.robust.__getstate__(),
            (bank.context.params.changed(), *bank.context.row_state(self.row)),
        )

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        if not isinstance(state, tuple) or len(state) != 4 or state[0] != STATE_LAYOUT:
            raise ValueError("not an ensemble state")
        _, weight, robust_state, (context_params, context_row, table) = state
        robust = RobustLikelihood.__new__(RobustLikelihood)
        robust.__setstate__(robust_state)
        self.bank = EnsembleBank(robust.bank.params, ContextParams(**context_params), float(weight))
        self.row = self.bank.allocate()
        self.bank.robust.copy_row(robust.bank, robust.row, self.row)
        self.bank.context.load_row(self.row, context_row, table)


def warm_up() -> None:
    """Load the compiled steps of the ensemble's detectors (compiling them on the first
    run) before they are needed."""
    warm_up_robust()
    detector = Ensemble()
    detector.score_one(1.0, 0.0)
    detector.learn_one(1.0, 0.0)
    detector.step_one(1.0, 60.0)
    detector.bank.step(np.array([detector.row]), np.array([1.0]), np.array([120.0]))
