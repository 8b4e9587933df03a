"""Turning cumulative counters into per-second rates.

A cumulative counter (an OTLP monotonic sum, a collectd ``counter``/``derive``, a
Prometheus ``*_total``) only means something as the difference between two points of
the same series. :class:`CumulativeState` keeps the last point per series, bounded in
size, so that the decoders stay pure functions of ``(payload, state)``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Point:
    timestamp: float
    start: float | None
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Increase:
    """What a series gained between its previous point and this one.

    Parameters
    ----------
    seconds
        Time between the two points (always > 0).
    deltas
        Per-value increase, in the order the values were given.
    """

    seconds: float
    deltas: tuple[float, ...]

    def rate(self, index: int = 0) -> float:
        """Per-second rate of the value at ``index``."""
        return self.deltas[index] / self.seconds


class CumulativeState:
    """The last point of each cumulative series, least recently updated evicted first.

    It is not persisted: after a restart the first point of each series only primes the
    store again (no rate comes out of it), exactly as after a counter reset.

    Parameters
    ----------
    max_series
        How many series to remember. Past it, the series not updated for the longest
        time is forgotten (its next point primes it again).

    Examples
    --------
    >>> state = CumulativeState(max_series=10)
    >>> state.increase("requests", 100.0, (10.0,)) is None  # first point: nothing yet
    True
    >>> state.increase("requests", 110.0, (30.0,)).rate()
    2.0
    >>> state.increase("requests", 120.0, (5.0,)) is None  # went down: a reset
    True
    """

    def __init__(self, max_series: int = 100_000) -> None:
        if max_series < 1:
            raise ValueError("max_series must be at least 1")
        self.max_series = max_series
        self._points: dict[Hashable, _Point] = {}

    def __len__(self) -> int:
        return len(self._points)

    def increase(
        self,
        key: Hashable,
        timestamp: float,
        values: tuple[float, ...],
        *,
        start: float | None = None,
        monotonic: bool = True,
    ) -> Increase | None:
        """Record a point and return its increase over the previous one of ``key``.

        Returns None when there is no usable previous point: the series is new, its start
        time changed or (``monotonic``) a value went down (both mean the counter was
        reset), the number of values changed, or the point is not newer than the last one
        (a replayed or out-of-order point, which is then ignored).

        Parameters
        ----------
        key
            Identity of the series.
        timestamp
            Time of the point, epoch seconds.
        values
            The cumulative values of the point (several for a histogram's buckets).
        start
            Start time of the cumulative run, when the producer says it (OTLP).
        monotonic
            Whether a decrease means a reset (counters) or a legitimate negative
            change (collectd ``derive``).
        """
        points = self._points
        previous = points.pop(key, None)
        if previous is not None and timestamp <= previous.timestamp:
            points[key] = previous  # keep the newer point, drop this one
            return None
        points[key] = _Point(timestamp, start, values)
        if len(points) > self.max_series:
            del points[next(iter(points))]
        if previous is None or len(previous.values) != len(values):
            return None
        if start is not None and previous.start is not None and start != previous.start:
            return None
        deltas = tuple(now - before for now, before in zip(values, previous.values, strict=True))
        if monotonic and any(delta < 0 for delta in deltas):
            return None
        return Increase(timestamp - previous.timestamp, deltas)
