"""Confirmation: a detector's blip opens nothing; a deviation that lasts does.

Detectors flag onsets after a few points. When the engine also receives the raw samples,
each metric anomaly that does not join an open incident waits here until its series has
stayed off its own baseline for ``confirm_s`` or ``confirm_samples`` of its sampling
intervals, whichever is longer (``confirm_fraction`` of the samples at ``confirm_z`` robust
sigma or more), and is dropped otherwise. Anomalies without raw
samples (logs, forecasts, series not fed to the engine) are confirmed at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from detectors.anomaly import Anomaly, SignalKind
from detectors.events import MetricEvent
from rca.baseline import MetricHistory, RobustBaseline, robust_baseline
from rca.config import CorrelationConfig, RankingConfig


def series_key_of(anomaly: Anomaly) -> str:
    """The :attr:`~detectors.events.MetricEvent.series_key` of a metric anomaly's series."""
    return MetricEvent(
        timestamp=anomaly.timestamp,
        service=anomaly.service,
        metric=anomaly.signal,
        value=0.0,
        host=anomaly.host,
        labels=anomaly.labels,
    ).series_key


@dataclass
class PendingAnomaly:
    """An anomaly waiting for its series to confirm it."""

    anomaly: Anomaly
    key: str | None = None
    baseline: RobustBaseline | None = None
    samples: int = 0
    hits: int = 0
    window: float = 0.0
    """How long after the onset the series' samples count (``confirm_s`` at the least)."""

    @property
    def share(self) -> float:
        """Share of samples since the onset that deviate enough."""
        return self.hits / self.samples if self.samples else 0.0


class ConfirmationGate:
    """Holds metric anomalies until their series confirms or refutes them.

    Parameters
    ----------
    config
        ``confirm_s``, ``confirm_z``, ``confirm_fraction`` and ``max_pending``.
    ranking
        Baseline settings (shared with the ranker).
    """

    def __init__(self, config: CorrelationConfig, ranking: RankingConfig) -> None:
        self.config = config
        self.ranking = ranking
        self.pending: dict[str, PendingAnomaly] = {}
        self._by_key: dict[str, set[str]] = {}

    def add(self, anomaly: Anomaly, history: MetricHistory) -> PendingAnomaly | None:
        """Returns the anomaly as confirmed at once, or None while it waits."""
        item = PendingAnomaly(anomaly)
        if anomaly.kind is not SignalKind.METRIC or self.config.confirm_s <= 0:
            return item
        key = series_key_of(anomaly)
        ring = history.rings.get(key)
        if ring is None:
            return item
        before = ring.values_between(-math.inf, anomaly.timestamp)
        if len(before) < self.ranking.min_baseline_samples:
            return item
        item.key = key
        item.window = self.window(ring.interval())
        item.baseline = robust_baseline(
            before,
            relative_floor=self.ranking.relative_floor,
            absolute_floor=self.ranking.absolute_floor,
        )
        # only the confirmation period counts (a late anomaly may find its future in the ring)
        end = anomaly.timestamp + item.window
        for value in ring.values_between(anomaly.timestamp, end + 1e-9):
            self._count(item, float(value))
        if anomaly.anomaly_id in self.pending:
            return None
        if len(self.pending) >= self.config.max_pending:
            oldest = min(self.pending.values(), key=lambda p: p.anomaly.timestamp)
            self._drop(oldest)
        self.pending[anomaly.anomaly_id] = item
        self._by_key.setdefault(key, set()).add(anomaly.anomaly_id)
        return None

    def window(self, interval: float) -> float:
        """The confirmation time of a series sampled every ``interval`` seconds."""
        return max(self.config.confirm_s, self.config.confirm_samples * interval)

    def observe(self, key: str, at: float, value: float) -> None:
        """Count a new sample of a series against its pending anomalies."""
        ids = self._by_key.get(key)
        if not ids or not math.isfinite(value):
            return
        for anomaly_id in ids:
            item = self.pending[anomaly_id]
            onset = item.anomaly.timestamp
            if onset <= at <= onset + item.window:
                self._count(item, value)

    def due(self, now: float) -> list[PendingAnomaly]:
        """Anomalies whose confirmation period is over and that were confirmed; the
        refuted ones are dropped."""
        confirmed = []
        for item in list(self.pending.values()):
            if now < item.anomaly.timestamp + item.window:
                continue
            self._drop(item)
            if item.samples and item.share >= self.config.confirm_fraction:
                confirmed.append(item)
        confirmed.sort(key=lambda p: (p.anomaly.timestamp, p.anomaly.anomaly_id))
        return confirmed

    def to_dict(self) -> list[dict[str, Any]]:
        """JSON-ready state: the waiting anomalies and their counts."""
        return [
            {
                "anomaly": item.anomaly.to_dict(),
                "key": item.key,
                "baseline": None
                if item.baseline is None
                else [item.baseline.median, item.baseline.spread],
                "samples": item.samples,
                "hits": item.hits,
                "window": item.window,
            }
            for item in self.pending.values()
        ]

    def load(self, items: list[dict[str, Any]]) -> None:
        """Restore state written by :meth:`to_dict`."""
        for data in items:
            base = data.get("baseline")
            item = PendingAnomaly(
                anomaly=Anomaly.from_dict(data["anomaly"]),
                key=data.get("key"),
                baseline=None if base is None else RobustBaseline(float(base[0]), float(base[1])),
                samples=int(data.get("samples", 0)),
                hits=int(data.get("hits", 0)),
                window=float(data.get("window", self.config.confirm_s)),
            )
            self.pending[item.anomaly.anomaly_id] = item
            if item.key is not None:
                self._by_key.setdefault(item.key, set()).add(item.anomaly.anomaly_id)

    def _count(self, item: PendingAnomaly, value: float) -> None:
        assert item.baseline is not None
        item.samples += 1
        if item.baseline.z(value) >= self.config.confirm_z:
            item.hits += 1

    def _drop(self, item: PendingAnomaly) -> None:
        self.pending.pop(item.anomaly.anomaly_id, None)
        if item.key is not None:
            ids = self._by_key.get(item.key)
            if ids is not None:
                ids.discard(item.anomaly.anomaly_id)
                if not ids:
                    del self._by_key[item.key]
