"""Per-series detection with hysteresis, bounded memory and checkpointable state."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import MetricEvent
from detectors.metric.base import (
    BankedDetector,
    DetectorBank,
    Expectation,
    MetricDetector,
    make_detector,
    registered_detectors,
)
from detectors.metric.config import MetricDetectionConfig
from detectors.metric.ensemble import Ensemble
from detectors.metric.exceptions import StateError, UnknownDetectorError
from detectors.metric.robust import RobustLikelihood
from detectors.metric.state import dump_state, load_state


@dataclass(slots=True)
class MonitorStats:
    """Counters of one :class:`MetricMonitor` (monotonic except ``series``)."""

    series: int = 0
    created: int = 0
    restored: int = 0
    evicted: int = 0
    rejected_by_cap: int = 0
    points: int = 0
    missing_values: int = 0
    onsets: int = 0
    escalations: int = 0
    upgraded: int = 0  # restored robust_likelihood series that went on as the ensemble
    rewarmed: int = 0  # restored series that started a new warm-up as the ensemble


@dataclass(frozen=True, slots=True)
class Observation:
    """What one event produced: the detector score and the record to publish, if any."""

    score: float
    anomaly: Anomaly | None = None
    warming_up: bool = False


@dataclass(slots=True)
class _Series:
    """Everything kept for one series; pickled as its checkpoint."""

    detector: MetricDetector
    detector_name: str
    seen: int = 0
    last_seen: float = -math.inf
    above: int = 0  # consecutive scores at/above the open threshold
    below: int = 0  # consecutive scores below the close threshold, while open
    open: bool = False
    pending: bool = False  # open, onset not yet published (classifying its direction)
    confirmed: int = 0  # points seen since the onset, onset included
    same_side: int = 0  # of those, points beyond the onset band on the onset side
    onset: float = 0.0
    onset_value: float = 0.0
    onset_z: float = 0.0
    onset_score: float = 0.0
    onset_direction: str = Direction.SPIKE.value
    expected: float | None = None
    band: tuple[float, float] | None = None
    reported_z: float = 0.0
    escalations: int = 0


class MetricMonitor:
    """Runs one detector per metric series and turns scores into anomaly episodes.

    Every value is scored before it is learnt. Missing values (NaN, infinities) are counted
    and skipped. A series alerts only after ``warmup_points`` values; an episode opens once
    (one onset record), may escalate (same onset timestamp, ``phase="escalation"``) when its
    peak deviation doubles, and ends quietly after the scores fall below the close threshold.

    Parameters
    ----------
    config
        Detection settings; the defaults need no tuning.

    Examples
    --------
    >>> from detectors.events import MetricEvent
    >>> monitor = MetricMonitor()
    >>> records = []
    >>> for i in range(400):
    ...     value = 100.0 + (i % 5) + (400.0 if i == 300 else 0.0)
    ...     event = MetricEvent(60.0 * i, "checkout", "latency_ms", value)
    ...     anomaly = monitor.process(event)
    ...     if anomaly is not None:
    ...         records.append(anomaly)
    >>> [(a.timestamp, a.direction.value, a.details["phase"]) for a in records]
    [(18000.0, 'spike', 'onset')]
    >>> records[0].value
    500.0
    """

    def __init__(self, config: MetricDetectionConfig | None = None) -> None:
        self.config = config or MetricDetectionConfig()
        known = set(registered_detectors())
        for name in [self.config.default_detector, *(r.detector for r in self.config.rules)]:
            if name not in known:
                raise UnknownDetectorError(name, sorted(known))
        self._series: dict[str, _Series] = {}
        self._banks: dict[Hashable, DetectorBank] = {}
        self._bank_of_rule: dict[tuple[str, str], DetectorBank] = {}
        self._dirty: set[str] = set()
        self._stats = MonitorStats()

    @property
    def stats(self) -> MonitorStats:
        """A snapshot of the counters; ``series`` is the current number of series."""
        return replace(self._stats, series=len(self._series))

    def process(self, event: MetricEvent) -> Anomaly | None:
        """Score, learn, and return an onset or escalation record when there is one."""
        return self.observe(event).anomaly

    def score(self, event: MetricEvent) -> float:
        """Like :meth:`process`, but return the detector score (0 for skipped events)."""
        return self.observe(event).score

    def observe(self, event: MetricEvent) -> Observation:
        """Score-before-learn one event; the score and the record to publish, if any."""
        value = event.value
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            self._stats.missing_values += 1
            return Observation(0.0)
        key = event.series_key
        series = self._series.get(key)
        if series is None:
            series = self._create(event, key)
            if series is None:
                return Observation(0.0)
        self._stats.points += 1
        value = float(value)
        detector = series.detector
        if detector.bank is not None:
            score, expectation = detector.step_one(value, event.timestamp)  # type: ignore[attr-defined]
            anomaly = self._episode(series, event, value, score, expectation)
        else:
            score, anomaly = self._observe_alone(series, event, value)
        series.seen += 1
        if event.timestamp > series.last_seen:
            series.last_seen = event.timestamp
        self._dirty.add(key)
        return Observation(score, anomaly, series.seen <= self.config.warmup_points)

    def process_many(self, events: Sequence[MetricEvent]) -> list[Anomaly]:
        """:meth:`process` for a batch of events, in order; the records to publish.

        Series whose detector keeps its state in a shared bank (the default one does) run
        through it in one compiled call per bank; the result is the same as calling
        :meth:`process` on each event in turn.
        """
        kept: list[MetricEvent] = []
        kept_series: list[_Series] = []
        values: list[float] = []
        batches: dict[int, tuple[DetectorBank, list[int], list[int]]] = {}
        get = self._series.get
        for event in events:
            value = event.value
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                self._stats.missing_values += 1
                continue
            key = event.series_key
            series = get(key)
            if series is None:
                series = self._create(event, key)
                if series is None:
                    continue
            detector = series.detector
            bank = detector.bank
            if bank is not None:
                batch = batches.get(id(bank))
                if batch is None:
                    batch = batches[id(bank)] = (bank, [], [])
                batch[1].append(len(kept))
                batch[2].append(detector.row)  # type: ignore[attr-defined]
            kept.append(event)
            kept_series.append(series)
            values.append(float(value))
        results = np.full((len(kept), 3), math.nan)  # NaN scores: not banked, scored below
        if batches:
            xs = np.array(values)
            ts = np.array([event.timestamp for event in kept], dtype=np.float64)
            for bank, index, rows in batches.values():
                at = np.array(index, dtype=np.int64)
                results[at] = bank.step(np.array(rows, dtype=np.int64), xs[at], ts[at])
        found: list[Anomaly] = []
        threshold = self.config.threshold
        dirty = self._dirty
        for event, series, value, (score, expected, scale) in zip(
            kept, kept_series, values, results.tolist(), strict=True
        ):
            if score != score:  # NaN: a detector without a bank
                _, anomaly = self._observe_alone(series, event, value)
                if anomaly is not None:
                    found.append(anomaly)
            elif series.open or score >= threshold:
                expectation = None if expected != expected else Expectation(expected, scale)
                anomaly = self._episode(series, event, value, score, expectation)
                if anomaly is not None:
                    found.append(anomaly)
            else:
                series.above = 0
            series.seen += 1
            if event.timestamp > series.last_seen:
                series.last_seen = event.timestamp
            dirty.add(event.series_key)
        self._stats.points += len(kept)
        return found

    def _observe_alone(
        self, series: _Series, event: MetricEvent, value: float
    ) -> tuple[float, Anomaly | None]:
        """Score, episode and learn one value of a detector without a bank."""
        detector = series.detector
        score = detector.score_one(value, event.timestamp)
        expectation = None
        if series.open or score >= self.config.threshold:
            expectation = detector.expectation(event.timestamp)
        anomaly = self._episode(series, event, value, score, expectation)
        detector.learn_one(value, event.timestamp)
        return score, anomaly

    def _create(self, event: MetricEvent, key: str) -> _Series | None:
        if len(self._series) >= self.config.max_series:
            self._stats.rejected_by_cap += 1
            return None
        name, params = self.config.detector_for(event.service, event.metric, event.labels)
        series = _Series(detector=self._new_detector(name, params), detector_name=name)
        self._series[key] = series
        self._stats.created += 1
        return series

    def _new_detector(self, name: str, params: dict[str, object]) -> MetricDetector:
        """A fresh detector; one that can share a bank gets a row of its bank."""
        rule = (name, repr(sorted(params.items())))
        bank = self._bank_of_rule.get(rule)
        if bank is not None:
            return bank.new_detector()
        detector = make_detector(name, params)
        if isinstance(detector, BankedDetector):
            self._join(detector)
            self._bank_of_rule[rule] = self._banks[detector.bank_key()]
        return detector

    def _join(self, detector: BankedDetector) -> None:
        key = detector.bank_key()
        bank = self._banks.get(key)
        if bank is None:
            bank = self._banks[key] = detector.new_bank()
        detector.join(bank)

    def _episode(
        self,
        series: _Series,
        event: MetricEvent,
        value: float,
        score: float,
        expectation: Expectation | None,
    ) -> Anomaly | None:
        """Hysteresis: open, confirm, escalate or close the series' episode.

        ``expectation`` is what the detector expected before ``value`` (it is only needed
        while an episode is open or the score reaches the threshold).
        """
        cfg, hyst = self.config, self.config.hysteresis
        if not series.open and score < cfg.threshold:
            series.above = 0
            return None
        z = expectation.z(value) if expectation is not None else 0.0
        if series.open:
            series.below = series.below + 1 if score < hyst.close_threshold else 0
            if series.pending:
                return self._confirm(series, event, value)
            if series.below >= hyst.close_points:
                series.open = False
                series.above = 0
                return None
            peak = abs(z)
            if (
                series.escalations < hyst.max_escalations
                and peak >= 2.0 * max(series.reported_z, 0.5)
                and peak > cfg.band_width
            ):
                series.escalations += 1
                series.reported_z = peak
                self._stats.escalations += 1
                return self._record(series, event, value, z, "escalation")
            return None
        series.above = series.above + 1 if score >= cfg.threshold else 0
        if series.seen < cfg.warmup_points or series.above < hyst.open_points:
            return None
        series.open = True
        series.pending = True
        series.below = 0
        series.escalations = 0
        series.onset = event.timestamp
        series.onset_value = value
        series.onset_z = z
        series.onset_score = score
        series.reported_z = abs(z)
        series.confirmed = 1
        series.same_side = 1
        if expectation is not None:
            series.expected = expectation.expected
            series.band = expectation.band(cfg.band_width)
        else:
            series.expected = series.band = None
        return self._confirm(series, event, value, first=True)

    def _confirm(
        self, series: _Series, event: MetricEvent, value: float, *, first: bool = False
    ) -> Anomaly | None:
        """Watch the first points of an episode to tell a level shift from a spike or dip."""
        if not first:
            series.confirmed += 1
            if series.band is not None:
                low, high = series.band
                beyond = value > high if series.onset_z >= 0 else value < low
                series.same_side += int(beyond)
        if series.confirmed < self.config.hysteresis.classify_points:
            return None
        series.pending = False
        n = self.config.hysteresis.classify_points
        if n > 1 and series.same_side >= n:
            direction = Direction.LEVEL_SHIFT
        else:
            direction = Direction.SPIKE if series.onset_z >= 0 else Direction.DIP
        series.onset_direction = direction.value
        self._stats.onsets += 1
        return self._record(series, event, series.onset_value, series.onset_z, "onset")

    def _record(
        self, series: _Series, event: MetricEvent, value: float, z: float, phase: str
    ) -> Anomaly:
        details: dict[str, object] = {"z": round(z, 4), "phase": phase}
        if phase == "escalation":
            details["peak_value"] = value
            details["escalation"] = series.escalations
        return Anomaly(
            service=event.service,
            signal=event.metric,
            kind=SignalKind.METRIC,
            timestamp=series.onset,
            value=series.onset_value,
            score=round(min(max(series.onset_score, 0.0), 1.0), 6),
            direction=Direction(series.onset_direction),
            detector=series.detector_name,
            expected=series.expected,
            band=series.band,
            host=event.host,
            labels=event.labels,
            details=details,
        )

    def dirty_states(self) -> list[tuple[str, bytes]]:
        """``(series_key, state)`` of every series changed since the previous call."""
        out = [(key, dump_state(self._series[key])) for key in self._dirty if key in self._series]
        self._dirty.clear()
        return out

    def take_dirty(self) -> set[str]:
        """Keys of the series changed since the previous call (for checkpoints written in
        slices: fetch each one's state with :meth:`state_of` when its turn comes)."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def state_of(self, series_key: str) -> bytes | None:
        """Current state of one series, or ``None`` if it is not kept."""
        series = self._series.get(series_key)
        return None if series is None else dump_state(series)

    def restore(self, series_key: str, state: bytes) -> None:
        """Resume a series from a checkpoint (learnt baselines, warm-up, open episode).

        A restored series replaces one of the same key and is kept even at ``max_series``
        (it was admitted before). Raises :class:`StateError` if the bytes are not a state
        of this module.
        """
        series = load_state(state)
        if not isinstance(series, _Series):
            raise StateError(f"state of {series_key!r} is not a series state")
        self._upgrade(series)
        if isinstance(series.detector, BankedDetector):
            self._join(series.detector)
        self._drop(series_key)
        self._series[series_key] = series
        self._stats.restored += 1

    def _upgrade(self, series: _Series) -> None:
        """A series checkpointed by ``robust_likelihood`` when the default was that, now
        that the default is the ensemble (and no rule asks for ``robust_likelihood``), goes
        on as an ensemble that keeps its learnt baselines; its contextual half learns from
        here. With other parameters it starts a new warm-up as an ensemble."""
        config = self.config
        if series.detector_name != "robust_likelihood" or config.default_detector != "ensemble":
            return
        if any(rule.detector == "robust_likelihood" for rule in config.rules):
            return
        robust = series.detector
        upgraded = (
            Ensemble.upgrade(robust, config.default_params)
            if isinstance(robust, RobustLikelihood)
            else None
        )
        if upgraded is None:
            upgraded = Ensemble(**config.default_params)
            series.seen = 0
            self._stats.rewarmed += 1
        else:
            self._stats.upgraded += 1
        series.detector, series.detector_name = upgraded, "ensemble"

    def evict_idle(self, now: float) -> list[str]:
        """Drop series whose last event is older than ``idle_eviction_seconds`` before ``now``.

        ``now`` is in event time (epoch seconds). Returns the evicted keys, so that the
        caller can delete their checkpoints.
        """
        horizon = now - self.config.idle_eviction_seconds
        gone = [key for key, s in self._series.items() if s.last_seen < horizon]
        for key in gone:
            self._drop(key)
            self._dirty.discard(key)
        self._stats.evicted += len(gone)
        return gone

    def _drop(self, key: str) -> None:
        series = self._series.pop(key, None)
        if series is not None and isinstance(series.detector, BankedDetector):
            series.detector.leave()

    @property
    def at_capacity(self) -> bool:
        """Whether a new series would be refused (``max_series`` are kept)."""
        return len(self._series) >= self.config.max_series

    def tracks(self, series_key: str) -> bool:
        """Whether the series has state here."""
        return series_key in self._series

    def series_keys(self) -> list[str]:
        """Keys of the series currently kept."""
        return list(self._series)
