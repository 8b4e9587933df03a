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

from detectors.metric.base import (
    BankedDetector,
    DetectorBank,
    Expectation,
    RowBank,
    register_detector,
)
from detectors.metric.context import ContextBank, ContextParams
from detectors.metric.resonance import ResonanceBank, ResonanceParams
from detectors.metric.robust import RobustBank, RobustLikelihood, RobustParams
from detectors.metric.robust import warm_up as warm_up_robust

STATE_LAYOUT = 1
"""First item of a pickled :class:`Ensemble`."""


class EnsembleBank(DetectorBank):
    """A :class:`RobustBank`, a :class:`ContextBank` and, with a weight above 0, a
    :class:`ResonanceBank`, whose rows go together."""

    def __init__(
        self,
        robust: RobustParams,
        context: ContextParams,
        context_weight: float,
        resonance: ResonanceParams | None = None,
        resonance_weight: float = 0.0,
    ) -> None:
        self.robust = RobustBank(robust)
        self.context = ContextBank(context)
        self.context_weight = float(context_weight)
        self.resonance_weight = float(resonance_weight)
        self.resonance = (
            ResonanceBank(resonance or ResonanceParams()) if self.resonance_weight > 0 else None
        )

    @property
    def key(self) -> Hashable:
        resonance = None if self.resonance is None else self.resonance.params
        return (
            "ensemble",
            self.robust.params,
            self.context.params,
            self.context_weight,
            resonance,
            self.resonance_weight,
        )

    def _members(self) -> tuple[RowBank, ...]:
        members: tuple[RowBank, ...] = (self.robust, self.context)
        return members if self.resonance is None else (*members, self.resonance)

    def allocate(self) -> int:
        rows = {bank.allocate() for bank in self._members()}
        if len(rows) != 1:  # pragma: no cover - the banks move in step
            raise RuntimeError("ensemble banks out of step")
        return rows.pop()

    def release(self, row: int) -> None:
        for bank in self._members():
            bank.release(row)

    def copy_row(self, source: EnsembleBank, source_row: int, row: int) -> None:
        for bank, other in zip(self._members(), source._members(), strict=True):
            bank.copy_row(other, source_row, row)

    def step(self, rows: np.ndarray, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        out = self.robust.step(rows, xs, ts)
        contextual = self.context.step(rows, xs, ts)[:, 0] * self.context_weight
        np.maximum(out[:, 0], contextual, out=out[:, 0])
        if self.resonance is not None:
            resonant = self.resonance.step(rows, xs, ts)[:, 0] * self.resonance_weight
            np.maximum(out[:, 0], resonant, out=out[:, 0])
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
        resonance_weight: float = 0.0,
        resonance: dict[str, Any] | None = None,
        **robust: Any,
    ) -> None:
        self.bank = EnsembleBank(
            RobustParams(**robust),
            ContextParams(**(context or {})),
            context_weight,
            ResonanceParams(**(resonance or {})),
            resonance_weight,
        )
        self.row = self.bank.allocate()

    def new_bank(self) -> EnsembleBank:
        bank = self.bank
        return EnsembleBank(
            bank.robust.params,
            bank.context.params,
            bank.context_weight,
            None if bank.resonance is None else bank.resonance.params,
            bank.resonance_weight,
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

    def _others(self, x: float, t: float) -> float:
        """The weighted scores of the members other than ``robust_likelihood``."""
        bank = self.bank
        value = bank.context.score(self.row, x, t) * bank.context_weight
        if bank.resonance is not None:
            value = max(value, bank.resonance.score(self.row, x, t) * bank.resonance_weight)
        return value

    def score_one(self, x: float, t: float) -> float:
        return max(self.robust.score_one(x, t), self._others(x, t))

    def learn_one(self, x: float, t: float) -> None:
        self.robust.learn_one(x, t)
        self.bank.context.learn(self.row, x, t)
        if self.bank.resonance is not None:
            self.bank.resonance.learn(self.row, x, t)

    def expectation(self, t: float) -> Expectation | None:
        return self.robust.expectation(t)

    def step_one(self, x: float, t: float) -> tuple[float, Expectation | None]:
        others = self._others(x, t)
        score, expectation = self.robust.step_one(x, t)
        self.bank.context.learn(self.row, x, t)
        if self.bank.resonance is not None:
            self.bank.resonance.learn(self.row, x, t)
        return max(score, others), expectation

    def __getstate__(self) -> tuple[object, ...]:
        bank = self.bank
        state: tuple[object, ...] = (
            STATE_LAYOUT,
            bank.context_weight,
            self.robust.__getstate__(),
            (bank.context.params.changed(), *bank.context.row_state(self.row)),
        )
        if bank.resonance is not None:
            resonance = (bank.resonance.params.changed(), *bank.resonance.row_state(self.row))
            state = (*state, bank.resonance_weight, resonance)
        return state

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 6) or state[0] != STATE_LAYOUT:
            raise ValueError("not an ensemble state")
        _, weight, robust_state, (context_params, context_row, table) = state[:4]
        resonance_weight, resonance = (0.0, None) if len(state) == 4 else state[4:]
        robust = RobustLikelihood.__new__(RobustLikelihood)
        robust.__setstate__(robust_state)
        self.bank = EnsembleBank(
            robust.bank.params,
            ContextParams(**context_params),
            float(weight),
            None if resonance is None else ResonanceParams(**resonance[0]),
            float(resonance_weight),
        )
        self.row = self.bank.allocate()
        self.bank.robust.copy_row(robust.bank, robust.row, self.row)
        self.bank.context.load_row(self.row, context_row, table)
        if resonance is not None and self.bank.resonance is not None:
            self.bank.resonance.load_row(self.row, *resonance[1:])


def warm_up() -> None:
    """Load the compiled steps of the ensemble's detectors (compiling them on the first
    run) before they are needed."""
    warm_up_robust()
    detector = Ensemble()
    detector.score_one(1.0, 0.0)
    detector.learn_one(1.0, 0.0)
    detector.step_one(1.0, 60.0)
    detector.bank.step(np.array([detector.row]), np.array([1.0]), np.array([120.0]))
