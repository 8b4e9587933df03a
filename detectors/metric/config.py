"""Settings of metric anomaly detection: which detector runs where, and when to alert."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, Field, model_validator

from detectors.events import Labels


class DetectorRule(BaseModel, frozen=True, extra="forbid"):
    """Run ``detector`` (with ``params``) on the series that match.

    ``metric`` and ``service`` are shell-style patterns (``fnmatch``, case-sensitive);
    every entry of ``labels`` must be present with exactly that value.

    >>> rule = DetectorRule(metric="http_*", labels={"env": "prod"}, detector="sad")
    >>> rule.matches("api", "http_latency", (("env", "prod"), ("pod", "a")))
    True
    >>> rule.matches("api", "cpu", (("env", "prod"),))
    False
    """

    metric: str = "*"
    service: str = "*"
    labels: dict[str, str] = Field(default_factory=dict)
    detector: str
    params: dict[str, Any] = Field(default_factory=dict)

    def matches(self, service: str, metric: str, labels: Labels) -> bool:
        """Whether the series ``(service, metric, labels)`` falls under this rule."""
        if not fnmatchcase(metric, self.metric) or not fnmatchcase(service, self.service):
            return False
        have = dict(labels)
        return all(have.get(k) == v for k, v in self.labels.items())


class HysteresisConfig(BaseModel, frozen=True, extra="forbid"):
    """How scores become episodes: one onset per episode, then silence until it ends.

    An episode opens when ``open_points`` consecutive scores reach the open threshold (the
    configuration's ``threshold``) and ends after ``close_points`` consecutive scores below
    ``close_threshold``. Its onset record is published after ``classify_points`` points
    (the onset included): a level shift if all of them lie beyond the normal band on the same
    side, else a spike or a dip (1 publishes at once, never calling a level shift). While it
    is open, an escalation record is emitted each time the peak absolute deviation at least
    doubles, at most ``max_escalations`` times.
    """

    open_points: int = Field(default=1, ge=1)
    classify_points: int = Field(default=3, ge=1)
    close_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    close_points: int = Field(default=10, ge=1)
    max_escalations: int = Field(default=5, ge=0)


class MetricDetectionConfig(BaseModel, frozen=True, extra="forbid"):
    """Settings of :class:`~detectors.metric.MetricMonitor`; the defaults need no tuning.

    Parameters
    ----------
    default_detector, default_params
        The detector for series that no rule matches.
    rules
        Ordered rules; the first that matches a series picks its detector.
    threshold
        Score (0..1) at which an episode opens.
    warmup_points
        Points a new series learns from before it may alert.
    band_width
        Half-width of the reported normal band, in robust standard deviations.
    hysteresis
        Episode opening, closing and escalation.
    idle_eviction_seconds
        A series not seen for this long (in event time) is dropped by ``evict_idle``.
    max_series
        Series one monitor keeps at most; new series beyond it are rejected and counted.
    """

    default_detector: str = "ensemble"
    default_params: dict[str, Any] = Field(default_factory=dict)
    rules: tuple[DetectorRule, ...] = ()
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    warmup_points: int = Field(default=150, ge=0)
    band_width: float = Field(default=3.0, gt=0.0)
    hysteresis: HysteresisConfig = Field(default_factory=HysteresisConfig)
    idle_eviction_seconds: float = Field(default=6 * 3600.0, gt=0.0)
    max_series: int = Field(default=100_000, ge=1)

    @model_validator(mode="after")
    def _close_below_open(self) -> MetricDetectionConfig:
        if self.hysteresis.close_threshold > self.threshold:
            raise ValueError("hysteresis.close_threshold must not exceed threshold")
        return self

    def detector_for(self, service: str, metric: str, labels: Labels) -> tuple[str, dict[str, Any]]:
        """Name and parameters of the detector for a series (first matching rule wins)."""
        for rule in self.rules:
            if rule.matches(service, metric, labels):
                return rule.detector, rule.params
        return self.default_detector, self.default_params
