"""Bounded per-series memory of recent samples, and robust baselines frozen at an onset.

The ranker scores a series the way BARO does: ``|x - median| / spread`` with the median
and spread taken from the series' own samples before the incident began. Each series
keeps only a fixed-size ring of its latest samples (up to ``12 * capacity`` bytes:
float64 times, float32 values); at an incident's onset the baseline of every series is frozen
into two numbers, and from then on only the peak deviation is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.events import MetricEvent

_FIRST_SIZE = 16
"""Samples a new ring has room for before it first grows."""


@dataclass(frozen=True, slots=True)
class SeriesId:
    """Which service and metric a series belongs to."""

    key: str
    service: str
    metric: str


class SampleRing:
    """Fixed-capacity ring of ``(time, value)`` samples of one series.

    The buffers start small and double as samples come, up to ``capacity``: a series that
    has sent a few samples holds a few samples' worth of memory. They only grow before
    the ring first wraps, so every sample sits where a full-size buffer would hold it.

    >>> ring = SampleRing(4)
    >>> for t in range(6):
    ...     ring.add(float(t), float(t * 10))
    >>> sorted(ring.values_between(0.0, 4.5).tolist())
    [20.0, 30.0, 40.0]
    """

    __slots__ = ("_t", "_v", "capacity", "count", "head")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        size = min(capacity, _FIRST_SIZE)
        self._t = np.full(size, np.nan, dtype=np.float64)
        self._v = np.full(size, np.nan, dtype=np.float32)
        self.head = 0
        self.count = 0

    @property
    def nbytes(self) -> int:
        """Memory held by the samples."""
        return int(self._t.nbytes + self._v.nbytes)

    def add(self, t: float, v: float) -> None:
        """Append one sample, overwriting the oldest when full."""
        head = self.head
        if head == len(self._t):  # not wrapped yet and the buffers are full: grow
            self._grow()
        self._t[head] = t
        self._v[head] = v
        head += 1
        self.head = 0 if head == self.capacity else head
        if self.count < self.capacity:
            self.count += 1

    def _grow(self) -> None:
        size = len(self._t)
        bigger = min(2 * size, self.capacity)
        t = np.full(bigger, np.nan, dtype=np.float64)
        v = np.full(bigger, np.nan, dtype=np.float32)
        t[:size] = self._t
        v[:size] = self._v
        self._t, self._v = t, v

    def interval(self, latest: int = 16) -> float:
        """Median spacing of the ``latest`` most recent samples (0 with fewer than two).

        >>> ring = SampleRing(100)
        >>> for t in (0.0, 60.0, 120.0, 3600.0, 3660.0):
        ...     ring.add(t, 1.0)
        >>> ring.interval()
        60.0
        """
        times = self._t[np.isfinite(self._t)]
        if len(times) < 2:
            return 0.0
        steps = np.diff(np.sort(times)[-(latest + 1) :])
        steps = steps[steps > 0]
        return float(np.median(steps)) if len(steps) else 0.0

    def values_between(self, start: float, end: float) -> np.ndarray:
        """Finite values with ``start <= time < end`` (in ring order, not time order)."""
        mask = (self._t >= start) & (self._t < end) & np.isfinite(self._v)
        return self._v[mask].astype(np.float64)

    def samples_between(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """Times and finite values with ``start <= time < end``, in time order."""
        mask = (self._t >= start) & (self._t < end) & np.isfinite(self._v)
        times = self._t[mask]
        order = np.argsort(times, kind="stable")
        return times[order], self._v[mask][order].astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (oldest first)."""
        order = np.roll(np.arange(len(self._t)), -self.head)
        t, v = self._t[order], self._v[order]
        keep = np.isfinite(t)
        return {"capacity": self.capacity, "t": t[keep].tolist(), "v": v[keep].tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleRing:
        """Inverse of :meth:`to_dict`."""
        ring = cls(int(data["capacity"]))
        for t, v in zip(data["t"], data["v"], strict=True):
            ring.add(float(t), float("nan") if v is None else float(v))
        return ring


@dataclass(frozen=True, slots=True)
class RobustBaseline:
    """Median and spread of a series before an onset."""

    median: float
    spread: float

    def z(self, value: float) -> float:
        """Robust deviation of a value, ``|value - median| / spread``."""
        return abs(value - self.median) / self.spread


def robust_baseline(
    values: np.ndarray, *, relative_floor: float, absolute_floor: float
) -> RobustBaseline:
    """Median and spread of a sample.

    The spread is the largest of the normalised IQR, the normalised MAD, and
    ``relative_floor * |median|`` (so that a constant series does not make a tiny change
    look huge), and at least ``absolute_floor``.

    >>> b = robust_baseline(np.array([10.0, 10.0, 10.0, 10.0]), relative_floor=0.01,
    ...                     absolute_floor=1e-9)
    >>> b.median, b.spread, round(b.z(11.0), 1)
    (10.0, 0.1, 10.0)
    """
    median = float(np.median(values))
    q1, q3 = np.percentile(values, [25.0, 75.0])
    mad = float(np.median(np.abs(values - median))) * 1.4826
    spread = max(float(q3 - q1) / 1.349, mad, relative_floor * abs(median), absolute_floor)
    return RobustBaseline(median=median, spread=spread)


class MetricHistory:
    """The rings of every metric series seen, keyed by ``MetricEvent.series_key``.

    Parameters
    ----------
    capacity
        Samples kept per series.
    max_series
        Bound on series; beyond it the series not updated for longest is dropped.
    """

    def __init__(self, capacity: int, max_series: int = 100_000) -> None:
        self.capacity = capacity
        self.max_series = max_series
        self.rings: dict[str, SampleRing] = {}
        self.ids: dict[str, SeriesId] = {}

    def add(self, event: MetricEvent) -> SeriesId:
        """Record one sample; returns the series identity."""
        key = event.series_key
        ring = self.rings.get(key)
        if ring is None:
            if len(self.rings) >= self.max_series:
                oldest = next(iter(self.rings))
                del self.rings[oldest]
                del self.ids[oldest]
            ring = self.rings[key] = SampleRing(self.capacity)
            self.ids[key] = SeriesId(key=key, service=event.service, metric=event.metric)
        else:
            # Keep insertion order = recency order, so eviction drops the stalest series.
            self.rings[key] = self.rings.pop(key)
        value = event.value
        ring.add(event.timestamp, value if math.isfinite(value) else float("nan"))
        return self.ids[key]

    def __iter__(self) -> Iterator[tuple[SeriesId, SampleRing]]:
        for key, ring in self.rings.items():
            yield self.ids[key], ring

    @property
    def nbytes(self) -> int:
        """Memory held by the samples of all series."""
        return sum(r.nbytes for r in self.rings.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "capacity": self.capacity,
            "series": [
                {"key": k, "service": i.service, "metric": i.metric, "ring": r.to_dict()}
                for (i, r), k in zip(self, self.rings, strict=True)
            ],
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore state written by :meth:`to_dict`."""
        self.rings.clear()
        self.ids.clear()
        for item in data.get("series", []):
            key = str(item["key"])
            self.rings[key] = SampleRing.from_dict(item["ring"])
            self.ids[key] = SeriesId(key=key, service=item["service"], metric=item["metric"])
