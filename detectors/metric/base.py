"""The interface every metric detector speaks, and the registry that names them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from detectors.metric.exceptions import UnknownDetectorError

B = TypeVar("B", bound="BankedDetector")


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a detector expected before it saw a value: a centre and a robust scale.

    >>> e = Expectation(expected=10.0, scale=2.0)
    >>> e.z(16.0), e.band(3.0)
    (3.0, (4.0, 16.0))
    """

    expected: float
    scale: float

    def z(self, value: float) -> float:
        """Robust deviation of ``value`` in units of the scale."""
        return (value - self.expected) / self.scale if self.scale > 0 else 0.0

    def band(self, width: float) -> tuple[float, float]:
        """The normal band ``expected ± width * scale``."""
        return (self.expected - width * self.scale, self.expected + width * self.scale)


class MetricDetector(ABC):
    """An online, univariate anomaly detector for one metric series.

    As in River's ``AnomalyDetector``, :meth:`score_one` is called before :meth:`learn_one`
    for every value; a higher score is more anomalous and scores lie in ``[0, 1]``, never NaN.
    A missing or infinite value scores 0 and is not learnt (the monitor drops them before),
    and no finite value raises, however large. ``t`` is the sample's epoch time in seconds,
    for detectors that model time of day. A detector pickles to a compact state; that is how
    a series survives a restart.
    """

    name: str = "abstract"
    bank: DetectorBank | None = None
    """The shared bank this detector's state is a row of (``None``: it keeps its own)."""

    @abstractmethod
    def score_one(self, x: float, t: float) -> float:
        """Anomaly score of ``x`` at time ``t`` given what was learnt so far (0..1)."""

    @abstractmethod
    def learn_one(self, x: float, t: float) -> None:
        """Update the model with ``x`` at time ``t``."""

    @abstractmethod
    def expectation(self, t: float) -> Expectation | None:
        """The expected value and scale at time ``t`` (``None`` until known)."""


class DetectorBank(ABC):
    """The state of many series of one detector and parameter set, one row per series."""

    @abstractmethod
    def step(self, rows: np.ndarray, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Run points through their rows in order, each scored before it is learnt.

        Returns one row per point: its score, then the expected value and scale before it
        (as :class:`Expectation`; NaN where there is none yet).
        """

    @abstractmethod
    def new_detector(self) -> BankedDetector:
        """A detector of a fresh row of this bank."""

    @property
    @abstractmethod
    def key(self) -> Hashable:
        """Banks with equal keys hold the same detector and parameters."""

    @abstractmethod
    def allocate(self) -> int:
        """A fresh row."""

    @abstractmethod
    def release(self, row: int) -> None:
        """Hand a row back (its series is gone)."""

    @abstractmethod
    def copy_row(self, source: Any, source_row: int, row: int) -> None:
        """Make ``row`` a copy of ``source_row`` of ``source`` (a bank of the same key)."""


class RowBank(DetectorBank):
    """A bank whose rows are rows of the arrays named in :attr:`row_arrays`.

    Rows are handed out by :meth:`allocate` (and set fresh by :meth:`reset_row`) and
    returned by :meth:`release`; the arrays grow by doubling, and a row's memory is first
    written when the row is handed out (the untouched tail of a large array is not
    resident).
    """

    row_arrays: tuple[str, ...]
    """Attributes holding one row per series (the first gives the capacity)."""

    def __init__(self) -> None:
        self._used = 0
        self._free: list[int] = []

    @abstractmethod
    def reset_row(self, row: int) -> None:
        """Set ``row`` to the state of a new series."""

    @property
    def capacity(self) -> int:
        """Rows the arrays hold."""
        return int(getattr(self, self.row_arrays[0]).shape[0])

    def __len__(self) -> int:
        """Rows in use."""
        return self._used - len(self._free)

    def allocate(self) -> int:
        if self._free:
            row = self._free.pop()
        else:
            if self._used == self.capacity:
                self._grow(2 * self.capacity)
            row = self._used
            self._used += 1
        self.reset_row(row)
        return row

    def release(self, row: int) -> None:
        self._free.append(row)

    def copy_row(self, source: Any, source_row: int, row: int) -> None:
        for name in self.row_arrays:
            getattr(self, name)[row] = getattr(source, name)[source_row]

    def _grow(self, capacity: int) -> None:
        for name in self.row_arrays:
            old = getattr(self, name)
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: self._used] = old[: self._used]
            setattr(self, name, new)


class BankedDetector(MetricDetector):
    """A detector whose state can live as one row of a shared :class:`DetectorBank`.

    On its own it keeps a private bank of one row. A caller with many series moves each
    into the bank of its :meth:`bank_key` (:meth:`join`) and runs batches through
    :meth:`DetectorBank.step`; the detector stays a view of its row (scores, pickling).
    """

    bank: DetectorBank
    row: int
    """The row of this series in :attr:`bank`."""

    @classmethod
    def view(cls: type[B], bank: Any, row: int) -> B:
        """The detector of row ``row`` of ``bank``."""
        detector = cls.__new__(cls)
        detector.bank, detector.row = bank, row
        return detector

    def bank_key(self) -> Hashable:
        """Detectors with equal keys can share a bank."""
        return self.bank.key

    @abstractmethod
    def new_bank(self) -> DetectorBank:
        """An empty bank for detectors of this key."""

    def join(self, bank: DetectorBank) -> None:
        """Move this series' state into a row of ``bank``."""
        if bank.key != self.bank.key:
            raise ValueError(f"a {self.name} series joins a bank of its own parameters")
        row = bank.allocate()
        bank.copy_row(self.bank, self.row, row)
        self.bank.release(self.row)
        self.bank, self.row = bank, row

    def leave(self) -> None:
        """Give the row back to the bank (the series is dropped)."""
        self.bank.release(self.row)

    @abstractmethod
    def step_one(self, x: float, t: float) -> tuple[float, Expectation | None]:
        """Score ``x``, note the expectation, then learn it."""


D = TypeVar("D", bound=type[MetricDetector])

_REGISTRY: dict[str, Callable[..., MetricDetector]] = {}


def register_detector(name: str) -> Callable[[D], D]:
    """Class decorator that registers a detector under ``name``."""

    def wrap(cls: D) -> D:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def registered_detectors() -> list[str]:
    """Names of every registered detector, sorted."""
    return sorted(_REGISTRY)


def make_detector(name: str, params: dict[str, Any] | None = None) -> MetricDetector:
    """Build a registered detector with keyword parameters.

    >>> import detectors.metric  # registers the shipped detectors
    >>> make_detector("robust_likelihood").name
    'robust_likelihood'
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownDetectorError(name, registered_detectors()) from None
    return factory(**(params or {}))
