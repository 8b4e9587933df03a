"""Quantiles estimated from bucketed distributions (OTLP histograms).

Both functions interpolate linearly inside the bucket that holds the wanted rank, as
Prometheus' ``histogram_quantile`` does, so their results match what users see there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _quantile_from_buckets(
    q: float, buckets: Sequence[tuple[float, float, float]], total: float
) -> float:
    # buckets: (lower, upper, count) in ascending order of bounds
    rank = q * total
    seen = 0.0
    for lower, upper, count in buckets:
        if count <= 0:
            continue
        if seen + count >= rank:
            if math.isinf(upper):
                return lower
            if math.isinf(lower):
                return upper
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return buckets[-1][1] if buckets else math.nan


def explicit_quantiles(
    quantiles: Sequence[float],
    bounds: Sequence[float],
    counts: Sequence[float],
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> list[float]:
    """Quantiles of an explicit-bucket histogram.

    Bucket ``i`` holds values in ``(bounds[i-1], bounds[i]]``; the first is open below and
    the last open above. Known ``minimum``/``maximum`` close the open ends; without them
    the first bucket starts at 0 (when its bound is positive) and the last one answers
    with its lower bound. NaN for every quantile when the histogram is empty.

    >>> explicit_quantiles([0.5], [10.0, 20.0], [0, 10, 0])
    [15.0]
    >>> explicit_quantiles([0.5, 0.99], [1.0, 2.0], [0, 0, 0])
    [nan, nan]
    """
    total = float(sum(counts))
    if total <= 0 or len(counts) != len(bounds) + 1:
        return [math.nan for _ in quantiles]
    first_lower = (
        minimum if minimum is not None else (0.0 if bounds and bounds[0] > 0 else -math.inf)
    )
    last_upper = maximum if maximum is not None else math.inf
    edges = [first_lower, *bounds, last_upper]
    buckets = [(edges[i], edges[i + 1], float(counts[i])) for i in range(len(counts))]
    return [_quantile_from_buckets(q, buckets, total) for q in quantiles]


def exponential_quantiles(
    quantiles: Sequence[float],
    *,
    scale: int,
    zero_count: float,
    positive_offset: int,
    positive_counts: Sequence[float],
    negative_offset: int,
    negative_counts: Sequence[float],
) -> list[float]:
    """Quantiles of an OTLP exponential histogram.

    With ``base = 2 ** (2 ** -scale)``, positive bucket ``offset + i`` holds values in
    ``(base ** (offset + i), base ** (offset + i + 1)]`` and negative buckets mirror it.

    >>> [round(v, 3) for v in exponential_quantiles([0.5], scale=0, zero_count=0,
    ...     positive_offset=1, positive_counts=[4], negative_offset=0, negative_counts=[])]
    [3.0]
    """
    base = 2.0 ** (2.0**-scale)
    buckets: list[tuple[float, float, float]] = []
    for i in range(len(negative_counts) - 1, -1, -1):
        index = negative_offset + i
        buckets.append((-(base ** (index + 1)), -(base**index), float(negative_counts[i])))
    if zero_count:
        buckets.append((0.0, 0.0, float(zero_count)))
    for i, count in enumerate(positive_counts):
        index = positive_offset + i
        buckets.append((base**index, base ** (index + 1), float(count)))
    total = sum(count for _, _, count in buckets)
    if total <= 0:
        return [math.nan for _ in quantiles]
    return [_quantile_from_buckets(q, buckets, total) for q in quantiles]


def quantile_suffix(q: float) -> str:
    """Metric name suffix of a quantile: ``p50``, ``p99``, ``p99_9``.

    >>> quantile_suffix(0.5), quantile_suffix(0.999), quantile_suffix(1.0)
    ('p50', 'p99_9', 'p100')
    """
    text = f"{q * 100:.6f}".rstrip("0").rstrip(".")
    return "p" + text.replace(".", "_")
