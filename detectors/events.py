"""Telemetry domain objects: what the decoders produce and the detectors consume."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Labels = tuple[tuple[str, str], ...]
"""String labels as sorted ``(name, value)`` pairs: immutable and hashable."""


def freeze_labels(labels: Mapping[str, str] | None) -> Labels:
    """Sorted, immutable form of a label mapping.

    >>> freeze_labels({"b": "2", "a": "1"})
    (('a', '1'), ('b', '2'))
    """
    if not labels:
        return ()
    return tuple(sorted(labels.items()))


@dataclass(frozen=True, slots=True)
class MetricEvent:
    """One sample of one metric series.

    Parameters
    ----------
    timestamp
        Epoch seconds (float), UTC.
    service
        The service the sample belongs to.
    metric
        Metric name, e.g. ``http_request_duration_p99``.
    value
        The sample value; may be NaN (a gap).
    host
        Host or instance, if known.
    labels
        Other string labels, see :func:`freeze_labels`.
    """

    timestamp: float
    service: str
    metric: str
    value: float
    host: str | None = None
    labels: Labels = field(default=())
    series_key: str = field(init=False, repr=False, compare=False)
    """Identity of the series this sample belongs to (service, metric, host, labels).

    Built once with the event: the worker looks a sample's series up in several places.
    """

    def __post_init__(self) -> None:
        key = f"{self.service}|{self.metric}"
        if self.host:
            key = f"{key}|host={self.host}"
        if self.labels:
            key = "|".join([key, *(f"{k}={v}" for k, v in self.labels)])
        object.__setattr__(self, "series_key", key)


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One log record.

    ``level`` is normalised to one of ``trace, debug, info, notice, warning, error,
    critical, alert, emergency`` when known, else ``None``.
    """

    timestamp: float
    service: str
    message: str
    level: str | None = None
    host: str | None = None
    attributes: Labels = field(default=())


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One notification of another tool's alert (Alertmanager, Grafana, plain JSON): it
    fires, or it is resolved (see :mod:`ingest.alerts`)."""

    name: str
    service: str
    status: Literal["firing", "resolved"]
    severity: Literal["critical", "warning", "info"]
    starts_at: float
    ends_at: float | None
    labels: Labels
    summary: str
    fingerprint: str
    source: Literal["alertmanager", "grafana", "json"]
    url: str = ""
    received_at: float = 0.0


TelemetryEvent = MetricEvent | LogEvent
