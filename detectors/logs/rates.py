"""Per-signal bucket counts and their learned baseline."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_MAX_DECAY_STEPS = 500


@dataclass(slots=True)
class RateBaseline:
    """Exponentially weighted mean and variance of counts per bucket.

    The same recursions as River's ``stats.EWMean`` / ``stats.EWVar``, kept in plain floats
    so that the state serialises to JSON (River's are Rust objects that only pickle).

    Parameters
    ----------
    alpha
        Weight of the newest bucket (``1 - 0.5 ** (1 / halflife)``).

    Examples
    --------
    >>> b = RateBaseline(alpha=0.5)
    >>> for x in [4, 4, 4, 4]:
    ...     b.update(x)
    >>> b.mean, b.zscore(4)
    (4.0, 0.0)
    >>> round(b.zscore(20), 2)
    7.16
    """

    alpha: float
    mean: float = 0.0
    var: float = 0.0
    buckets: int = 0
    peak: float = 0.0
    """Highest count seen, decaying slowly (see :meth:`LogMonitor` ``peak_halflife_buckets``)."""

    def update(self, x: float) -> None:
        """Learn one bucket count."""
        if self.buckets == 0:
            self.mean, self.var = float(x), 0.0
        else:
            diff = x - self.mean
            incr = self.alpha * diff
            self.mean += incr
            self.var = (1 - self.alpha) * (self.var + diff * incr)
        self.buckets += 1

    def decay(self, empty_buckets: int) -> None:
        """Learn ``empty_buckets`` zero counts at once (a long silence)."""
        if empty_buckets <= 0 or self.buckets == 0:
            return
        # Past a few half-lives the baseline is ~0 whatever the rest of the silence was.
        for _ in range(min(empty_buckets, _MAX_DECAY_STEPS)):
            self.update(0.0)
        self.buckets += max(0, empty_buckets - _MAX_DECAY_STEPS)

    def zscore(self, x: float) -> float:
        """Departure of ``x`` above the baseline, in Poisson-corrected deviations."""
        return (x - self.mean) / math.sqrt(self.var + self.mean + 1.0)


@dataclass(slots=True)
class SignalTrack:
    """Counts of one log signal (a template, or the error lines) of one service."""

    baseline: RateBaseline
    count: int = 0
    total: int = 0
    level: str | None = None
    active: bool = False
    examples: deque[str] = field(default_factory=deque)

    def to_list(self) -> list[Any]:
        """Compact JSON form."""
        b = self.baseline
        return [
            b.mean,
            b.var,
            b.buckets,
            b.peak,
            self.count,
            self.total,
            self.level,
            self.active,
            list(self.examples),
        ]

    @classmethod
    def from_list(cls, data: list[Any], alpha: float, max_examples: int) -> SignalTrack:
        """Inverse of :meth:`to_list`."""
        mean, var, buckets, peak, count, total, level, active, examples = data
        return cls(
            baseline=RateBaseline(alpha, float(mean), float(var), int(buckets), float(peak)),
            count=int(count),
            total=int(total),
            level=level,
            active=bool(active),
            examples=deque((str(e) for e in examples), maxlen=max_examples),
        )
