"""Limit-crossing prediction for one series under one rule: the predicted/withdrawn episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import MetricEvent
from detectors.forecast.config import ForecastRule
from detectors.forecast.trend import RobustTrend, TrendEstimate

DETECTOR_NAME = "forecast.robust_trend"
INTERVAL_Z = 1.6448536269514722
"""The crossing interval is the 90% two-sided interval of the slope (z of the 95th centile)."""


class TrendModel(Protocol):
    """What a crossing predictor needs from a trend model."""

    def learn_one(self, t: float, y: float) -> TrendEstimate | None:
        """Learn a sample; a new estimate when one is ready."""

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`to_state`."""


def normal_cdf(z: float) -> float:
    """Standard normal cumulative distribution.

    >>> round(normal_cdf(1.6448536269514722), 3)
    0.95
    """
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class Crossing:
    """When the trend is expected to reach the limit, seen at ``time``.

    Parameters
    ----------
    time
        When the assessment was made (epoch s).
    confidence
        Probability that the trend level is beyond the limit at ``time + horizon``.
    crossing_time
        Expected crossing (epoch s), ``None`` when the trend does not head for the limit.
    interval
        ``(earliest, latest)`` crossing for the 90% slope interval; latest is ``None`` when
        a flat trend is within that interval.
    level
        The fitted level now.
    slope
        Trend, per second.
    breached
        Whether the fitted level is already at or beyond the limit.
    """

    time: float
    confidence: float
    crossing_time: float | None
    interval: tuple[float, float | None] | None
    level: float
    slope: float
    breached: bool


def assess(rule: ForecastRule, est: TrendEstimate, now: float) -> Crossing:
    """Where the fitted trend stands against the rule's limit at ``now``."""
    sign = rule.limit.sign
    target = rule.limit.value
    level = est.level_at(now)
    at_horizon = now + rule.horizon_seconds
    sd = est.level_sd_at(at_horizon)
    margin = sign * (est.level_at(at_horizon) - target)
    if sd > 1e-12 * (abs(target) + abs(level) + 1.0):
        confidence = normal_cdf(margin / sd)
    else:
        confidence = 1.0 if margin >= 0 else 0.0
    breached = rule.limit.reached(level)
    gap = sign * (target - level)
    rate = sign * est.slope
    crossing: float | None = None
    interval: tuple[float, float | None] | None = None
    if breached:
        crossing = now
        interval = (now, now)
    elif rate > 0:
        crossing = now + gap / rate
        spread = INTERVAL_Z * est.slope_se
        low = now + gap / (rate + spread)
        high = now + gap / (rate - spread) if rate > spread else None
        interval = (low, high)
    return Crossing(
        time=now,
        confidence=confidence,
        crossing_time=crossing,
        interval=interval,
        level=level,
        slope=est.slope,
        breached=breached,
    )


class CrossingPredictor:
    """Follows one series for one rule and emits the predicted / withdrawn anomalies.

    A prediction is published when the expected crossing is within the horizon with at
    least ``min_confidence``; it is re-published only when the crossing time moves by more
    than ``republish_fraction`` of the time left, and withdrawn when the confidence falls
    below ``withdraw_confidence`` while the limit is not reached.

    Parameters
    ----------
    rule
        The forecast rule.
    event
        The first sample of the series (gives its identity; it is not learned here).
    model
        The trend model; by default a :class:`RobustTrend` set up from the rule.
    """

    def __init__(
        self, rule: ForecastRule, event: MetricEvent, model: TrendModel | None = None
    ) -> None:
        self.rule = rule
        self.service = event.service
        self.metric = event.metric
        self.host = event.host
        self.labels = event.labels
        self.model: TrendModel = model or RobustTrend(
            bucket_seconds=rule.effective_bucket_seconds,
            lookback_seconds=rule.effective_lookback_seconds,
            season_seconds=rule.season_seconds,
        )
        self.first_seen: float | None = None
        self.onset: float | None = None
        self.published_crossing: float | None = None
        self.last: Crossing | None = None

    def process(self, event: MetricEvent) -> Anomaly | None:
        """Learn one sample; returns an anomaly when a prediction opens, moves or is withdrawn."""
        if not math.isfinite(event.value):
            return None
        if self.first_seen is None:
            self.first_seen = event.timestamp
        est = self.model.learn_one(event.timestamp, event.value)
        if est is None:
            return None
        now = event.timestamp
        crossing = assess(self.rule, est, now)
        self.last = crossing
        rule = self.rule
        if self.onset is None:
            if now - self.first_seen < rule.effective_min_history_seconds:
                return None
            if (
                crossing.confidence >= rule.min_confidence
                and crossing.crossing_time is not None
                and crossing.crossing_time - now <= rule.horizon_seconds
            ):
                self.onset = now
                self.published_crossing = crossing.crossing_time
                return self._anomaly(event, crossing, phase="predicted")
            return None
        if crossing.confidence < rule.withdraw_confidence and not crossing.breached:
            anomaly = self._anomaly(event, crossing, phase="withdrawn")
            self.onset = None
            self.published_crossing = None
            return anomaly
        if (
            crossing.crossing_time is not None
            and self.published_crossing is not None
            and not crossing.breached  # once reached, the crossing time is history
        ):
            time_left = max(self.published_crossing - now, rule.effective_bucket_seconds)
            moved = abs(crossing.crossing_time - self.published_crossing)
            if moved > rule.republish_fraction * time_left:
                self.published_crossing = crossing.crossing_time
                return self._anomaly(event, crossing, phase="predicted")
        return None

    def expire(self, now: float) -> Anomaly | None:
        """Withdraw an open prediction whose series stopped; call it before dropping the
        predictor. The record carries the last assessment, emitted at ``now``, with
        ``reason="idle"``. Returns ``None`` when no prediction is open."""
        crossing = self.last
        if self.onset is None or crossing is None:
            return None
        event = MetricEvent(now, self.service, self.metric, crossing.level, self.host, self.labels)
        anomaly = self._anomaly(event, crossing, phase="withdrawn")
        anomaly.details["reason"] = "idle"
        self.onset = None
        self.published_crossing = None
        return anomaly

    def _anomaly(self, event: MetricEvent, crossing: Crossing, *, phase: str) -> Anomaly:
        assert self.onset is not None
        limit = self.rule.limit
        crossing_time = crossing.crossing_time
        details: dict[str, Any] = {
            "phase": phase,
            "rule": self.rule.name,
            "limit": {"op": limit.op, "value": limit.value},
            "horizon_s": self.rule.horizon_seconds,
            "crossing_time": crossing_time,
            "crossing_interval": list(crossing.interval) if crossing.interval else None,
            "time_left_s": None
            if crossing_time is None
            else max(crossing_time - event.timestamp, 0),
            "trend_per_hour": crossing.slope * 3600.0,
            "level": crossing.level,
            "confidence": crossing.confidence,
            "breached": crossing.breached,
            "emitted_at": event.timestamp,
        }
        expected = limit.value if crossing_time is not None else crossing.level
        return Anomaly(
            service=self.service,
            signal=self.metric,
            kind=SignalKind.PREDICTED,
            timestamp=self.onset,
            value=event.value,
            score=crossing.confidence,
            direction=Direction.PREDICTED,
            detector=DETECTOR_NAME,
            expected=expected,
            host=self.host,
            labels=self.labels,
            details=details,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state, series identity included."""
        return {
            "service": self.service,
            "metric": self.metric,
            "host": self.host,
            "labels": [list(p) for p in self.labels],
            "first_seen": self.first_seen,
            "onset": self.onset,
            "published_crossing": self.published_crossing,
            "model": self.model.to_state(),
        }

    @classmethod
    def from_state(cls, rule: ForecastRule, state: dict[str, Any]) -> CrossingPredictor:
        """Inverse of :meth:`to_state`."""
        identity = MetricEvent(
            timestamp=0.0,
            service=str(state["service"]),
            metric=str(state["metric"]),
            value=math.nan,
            host=state["host"],
            labels=tuple((str(k), str(v)) for k, v in state["labels"]),
        )
        predictor = cls(rule, identity)
        predictor.first_seen = state["first_seen"]
        predictor.onset = state["onset"]
        predictor.published_crossing = state["published_crossing"]
        predictor.model.load_state(state["model"])
        return predictor
