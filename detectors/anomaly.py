"""The anomaly record: what every detector emits and correlation consumes."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from detectors.events import Labels


class Direction(StrEnum):
    """How the signal departed from normal."""

    SPIKE = "spike"
    DIP = "dip"
    LEVEL_SHIFT = "level_shift"
    NEW_TEMPLATE = "new_template"
    RATE = "rate"
    BURST = "burst"
    PREDICTED = "predicted"
    ALERT = "alert"


class SignalKind(StrEnum):
    """Where the anomaly was seen."""

    METRIC = "metric"
    LOG = "log"
    PREDICTED = "predicted"
    ALERT = "alert"  # an alert of another tool (Alertmanager, Grafana, ...)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomalous episode of one signal.

    Parameters
    ----------
    service
        The service the signal belongs to; anomalies are keyed by it on Kafka.
    signal
        The metric name, or ``log:<template id>`` / ``log:errors`` for log signals.
    kind
        Metric, log, predicted, or an alert of another tool.
    timestamp
        Onset of the episode (epoch seconds).
    value
        The observed value at onset (a rate for log signals).
    score
        Detector score at onset, higher is more anomalous (0..1 for the default detectors).
    direction
        Spike, dip, level shift, new template, rate, burst or predicted.
    detector
        Name of the detector that raised it.
    expected
        The value the detector expected, when it has one.
    band
        ``(low, high)`` of the normal band, when the detector has one.
    host, labels
        The rest of the series identity.
    details
        Detector-specific evidence (log template, example lines, counts, forecast, ...);
        JSON-serialisable.
    """

    service: str
    signal: str
    kind: SignalKind
    timestamp: float
    value: float
    score: float
    direction: Direction
    detector: str
    expected: float | None = None
    band: tuple[float, float] | None = None
    host: str | None = None
    labels: Labels = field(default=())
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fingerprint(self) -> str:
        """Stable id of the signal (not the episode): same series, same fingerprint."""
        ident = "|".join(
            [self.service, self.signal, self.host or "", *(f"{k}={v}" for k, v in self.labels)]
        )
        return hashlib.blake2b(ident.encode(), digest_size=8).hexdigest()

    @property
    def anomaly_id(self) -> str:
        """Stable id of this episode: the fingerprint and the onset time."""
        return f"{self.fingerprint}-{int(self.timestamp * 1000)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as published on the anomalies topic."""
        data = asdict(self)
        data["kind"] = str(self.kind)
        data["direction"] = str(self.direction)
        data["labels"] = dict(self.labels)
        data["band"] = list(self.band) if self.band else None
        data["fingerprint"] = self.fingerprint
        data["id"] = self.anomaly_id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anomaly:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""
        band = data.get("band")
        return cls(
            service=str(data["service"]),
            signal=str(data["signal"]),
            kind=SignalKind(data["kind"]),
            timestamp=float(data["timestamp"]),
            value=float(data["value"]) if data.get("value") is not None else float("nan"),
            score=float(data["score"]),
            direction=Direction(data["direction"]),
            detector=str(data["detector"]),
            expected=None if data.get("expected") is None else float(data["expected"]),
            band=None if not band else (float(band[0]), float(band[1])),
            host=data.get("host"),
            labels=tuple(sorted((str(k), str(v)) for k, v in (data.get("labels") or {}).items())),
            details=dict(data.get("details") or {}),
        )
