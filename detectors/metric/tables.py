"""Banks whose row is a state row and a table row, stepped by compiled kernels.

``context`` and ``resonance`` keep the same shape of state: a few floats of a series (the
first three its learnt range: low, high, values it was learnt from) and a table (context
masks, categories). :class:`TableBank` holds both arrays, one row per series, and runs a
kernel module's ``score``, ``learn`` and ``step_many`` over them; :class:`TableDetector` is
the detector of one row.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

import numpy as np
from numba import njit

from detectors.metric.base import BankedDetector, Expectation, RowBank

S_LO, S_HI, S_RANGED = 0, 1, 2
"""State columns every table bank starts with: its learnt range."""


@njit(cache=True, nogil=True)
def learn_range(state: np.ndarray, row: int, x: float, points: float, margin: float) -> bool:
    """Take ``x`` into the range of a row: while the range is learnt from the first
    ``points`` values (then widened by ``margin`` of its span on each side), and when ``x`` is
    a new extreme (the range widens to take it in, with the margin). Returns whether the
    range was still being learnt."""
    if state[row, S_RANGED] < points:
        state[row, S_LO] = min(state[row, S_LO], x)
        state[row, S_HI] = max(state[row, S_HI], x)
        state[row, S_RANGED] += 1.0
        if state[row, S_RANGED] >= points:
            pad = margin * (state[row, S_HI] - state[row, S_LO])
            state[row, S_LO] -= pad
            state[row, S_HI] += pad
        return True
    if x < state[row, S_LO] or x > state[row, S_HI]:
        pad = margin * (state[row, S_HI] - state[row, S_LO])
        state[row, S_LO] = min(state[row, S_LO], x - pad)
        state[row, S_HI] = max(state[row, S_HI], x + pad)
    return False


class TableBank(RowBank):
    """State and table rows of one parameter set, and the kernels that step them.

    Subclasses set :attr:`name` and the kernels, and build :attr:`vector` (the parameters
    as the kernels read them), the fresh state row and the table width.
    """

    name: ClassVar[str]
    kernel_score: ClassVar[Callable[..., float]]
    kernel_learn: ClassVar[Callable[..., None]]
    kernel_step_many: ClassVar[Callable[..., None]]
    row_arrays = ("state", "table")

    def __init__(
        self,
        params: Any,
        vector: np.ndarray,
        fresh: np.ndarray,
        table_width: int,
        table_dtype: Any,
        capacity: int = 1,
    ) -> None:
        self.params = params
        self.vector = vector
        self._fresh = fresh
        super().__init__()
        self.state = np.empty((max(capacity, 1), fresh.shape[0]))
        self.table = np.empty((max(capacity, 1), table_width), dtype=table_dtype)

    @property
    def key(self) -> Hashable:
        return (self.name, self.params)

    def reset_row(self, row: int) -> None:
        self.state[row] = self._fresh
        self.table[row] = 0

    def step(self, rows: np.ndarray, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        out = np.empty((rows.shape[0], 3))
        type(self).kernel_step_many(
            self.state,
            self.table,
            rows.astype(np.int64, copy=False),
            xs.astype(np.float64, copy=False),
            ts.astype(np.float64, copy=False),
            self.vector,
            out,
        )
        return out

    def score(self, row: int, x: float, t: float) -> float:
        """Score of ``x`` at ``t`` on one row, before it is learnt."""
        kernel = type(self).kernel_score
        return float(kernel(self.state, self.table, int(row), float(x), float(t), self.vector))

    def learn(self, row: int, x: float, t: float) -> None:
        """Learn ``x`` at ``t`` on one row."""
        kernel = type(self).kernel_learn
        kernel(self.state, self.table, int(row), float(x), float(t), self.vector)

    def expectation(self, row: int) -> Expectation | None:
        """The middle of the learnt range and a sixth of its span."""
        if self.state[row, S_RANGED] < self.params.range_points:
            return None
        lo, hi = float(self.state[row, S_LO]), float(self.state[row, S_HI])
        return Expectation(0.5 * (lo + hi), (hi - lo) / 6.0) if hi > lo else None

    def row_state(self, row: int) -> tuple[bytes, bytes]:
        """The bytes of one row: its state, then its table."""
        return self.state[row].tobytes(), self.table[row].tobytes()

    def load_row(self, row: int, state: bytes, table: bytes) -> None:
        """Inverse of :meth:`row_state`."""
        width = self.table.shape[1] * self.table.itemsize
        if len(state) != 8 * self.state.shape[1] or len(table) != width:
            raise ValueError(f"a {self.name} row of the wrong size for its parameters")
        self.state[row] = np.frombuffer(state, dtype=np.float64)
        self.table[row] = np.frombuffer(table, dtype=self.table.dtype)


class TableDetector(BankedDetector):
    """The detector of one row of a :class:`TableBank`; subclasses name their bank and
    parameter classes."""

    bank: TableBank
    bank_class: ClassVar[type[TableBank]]
    params_class: ClassVar[type[Any]]

    def __init__(self, **params: Any) -> None:
        self.bank = self.bank_class(self.params_class(**params))  # type: ignore[call-arg]
        self.row = self.bank.allocate()

    def new_bank(self) -> TableBank:
        return self.bank_class(self.bank.params)  # type: ignore[call-arg]

    def score_one(self, x: float, t: float) -> float:
        return self.bank.score(self.row, x, t)

    def learn_one(self, x: float, t: float) -> None:
        self.bank.learn(self.row, x, t)

    def expectation(self, t: float) -> Expectation | None:
        return self.bank.expectation(self.row)

    def step_one(self, x: float, t: float) -> tuple[float, Expectation | None]:
        value = self.score_one(x, t)
        expectation = self.expectation(t)
        self.learn_one(x, t)
        return value, expectation

    def __getstate__(self) -> tuple[object, ...]:
        return (1, self.bank.params.changed(), *self.bank.row_state(self.row))

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        if not isinstance(state, tuple) or len(state) != 4 or state[0] != 1:
            raise ValueError(f"not a {self.bank_class.name} state")
        _, params, row_state, table = state
        self.bank = self.bank_class(self.params_class(**params))  # type: ignore[call-arg]
        self.row = self.bank.allocate()
        self.bank.load_row(self.row, row_state, table)
