"""Settings of the forecast monitor: forecast rules and SLO burn-rate rules."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from detectors.events import Labels


class Limit(BaseModel, frozen=True, extra="forbid"):
    """The value a series must not cross.

    Parameters
    ----------
    op
        ``">="``: the limit is crossed when the series reaches ``value`` from below
        (usage, queue length); ``"<="``: when it falls to ``value`` from above (free bytes).
    value
        The limit, in the unit of the metric.

    >>> Limit(op=">=", value=0.95).reached(0.97)
    True
    """

    op: Literal[">=", "<="] = ">="
    value: float

    @property
    def sign(self) -> float:
        """+1 when the series must rise to cross, -1 when it must fall."""
        return 1.0 if self.op == ">=" else -1.0

    def reached(self, value: float) -> bool:
        """Whether ``value`` is at or beyond the limit."""
        return value >= self.value if self.op == ">=" else value <= self.value


class SeriesSelector(BaseModel, frozen=True, extra="forbid"):
    """Which series a rule applies to: shell-style patterns on metric and service, exact labels."""

    metric: str = Field(description="fnmatch pattern on the metric name, e.g. 'disk_used_ratio'")
    service: str = "*"
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, service: str, metric: str, labels: Labels) -> bool:
        """Whether a series (service, metric, labels) is selected."""
        if not fnmatchcase(metric, self.metric) or not fnmatchcase(service, self.service):
            return False
        if not self.labels:
            return True
        have = dict(labels)
        return all(fnmatchcase(have.get(k, ""), v) for k, v in self.labels.items())


class ForecastRule(SeriesSelector, frozen=True, extra="forbid"):
    """Predict when matching series will cross a limit, within a horizon.

    Parameters
    ----------
    name
        Rule name; published in the anomaly details, used by remediation rules.
    metric, service, labels
        Series selector (fnmatch patterns for metric and service; label values may be
        patterns too).
    limit
        The limit and its direction.
    horizon_seconds
        Publish a prediction only when the crossing is expected within this time.
    min_confidence
        Probability (0..1) that the trend level is beyond the limit at the horizon, required
        to publish.
    withdraw_confidence
        A published prediction is withdrawn when the probability falls below this (hysteresis)
        and the limit is not reached.
    lookback_seconds
        Length of the trailing window the trend is fitted on (default: the horizon).
    bucket_seconds
        Samples are averaged into buckets of this width before fitting (default: horizon/48,
        at least 10 s).
    season_seconds
        Period of a seasonal profile removed before fitting (e.g. 86400), or ``None``.
    min_history_seconds
        No prediction before this much of the series has been seen (default: the lookback,
        plus one and a half seasons when there is one).
    republish_fraction
        A published prediction is re-published when its crossing time moves by more than this
        fraction of the time left.

    >>> rule = ForecastRule(name="disk", metric="disk_used_*", limit=Limit(value=0.95))
    >>> rule.horizon_seconds, rule.effective_bucket_seconds, rule.effective_lookback_seconds
    (14400.0, 300.0, 14400.0)
    """

    name: str
    limit: Limit
    horizon_seconds: float = Field(default=4 * 3600.0, gt=0)
    min_confidence: float = Field(default=0.9, gt=0, lt=1)
    withdraw_confidence: float = Field(default=0.5, ge=0, lt=1)
    lookback_seconds: float | None = Field(default=None, gt=0)
    bucket_seconds: float | None = Field(default=None, gt=0)
    season_seconds: float | None = Field(default=None, gt=0)
    min_history_seconds: float | None = Field(default=None, ge=0)
    republish_fraction: float = Field(default=0.2, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ForecastRule:
        if self.withdraw_confidence > self.min_confidence:
            raise ValueError("withdraw_confidence must not exceed min_confidence")
        return self

    @property
    def effective_bucket_seconds(self) -> float:
        """Bucket width actually used."""
        return self.bucket_seconds or max(self.horizon_seconds / 48.0, 10.0)

    @property
    def effective_lookback_seconds(self) -> float:
        """Fit window actually used."""
        return self.lookback_seconds or self.horizon_seconds

    @property
    def effective_min_history_seconds(self) -> float:
        """History required before the first prediction."""
        if self.min_history_seconds is not None:
            return self.min_history_seconds
        # the seasonal profile is complete one and a half seasons in (centred average)
        return self.effective_lookback_seconds + 1.5 * (self.season_seconds or 0.0)


class BurnWindow(BaseModel, frozen=True, extra="forbid"):
    """One multi-window burn-rate condition (SRE workbook, chapter 5).

    Fires when the error-budget burn rate over both the long and the short window is at
    least ``burn_rate``.
    """

    long_seconds: float = Field(gt=0)
    short_seconds: float = Field(gt=0)
    burn_rate: float = Field(gt=0)
    severity: Literal["page", "ticket"]

    @property
    def label(self) -> str:
        """Readable name of the window pair, e.g. ``1h/5m``."""
        return f"{_duration(self.long_seconds)}/{_duration(self.short_seconds)}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


SRE_WORKBOOK_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(long_seconds=3600, short_seconds=300, burn_rate=14.4, severity="page"),
    BurnWindow(long_seconds=6 * 3600, short_seconds=1800, burn_rate=6.0, severity="page"),
    BurnWindow(long_seconds=86400, short_seconds=7200, burn_rate=3.0, severity="ticket"),
    BurnWindow(long_seconds=3 * 86400, short_seconds=6 * 3600, burn_rate=1.0, severity="ticket"),
)
"""The recommended windows for a 30-day SLO: 2% of the budget in 1 h or 5% in 6 h pages,
10% in 1 d or 10% in 3 d opens a ticket."""


class BurnRateRule(BaseModel, frozen=True, extra="forbid"):
    """Multi-window, multi-burn-rate SLO alert computed from counters.

    Either ``error_metric`` and ``total_metric`` (cumulative counters, resets handled) or
    ``ratio_metric`` (a gauge of the error ratio, 0..1, averaged over time) must be given.

    Parameters
    ----------
    name
        SLO name; the anomaly signal is ``slo:<name>``.
    error_metric, total_metric
        Counter names (exact) of failed and of all requests.
    ratio_metric
        Alternative: a gauge of the error ratio.
    objective
        The SLO target, e.g. 0.999 (error budget 0.001).
    service
        fnmatch pattern on the service; each service is evaluated on its own.
    labels
        Label filter (values may be fnmatch patterns) applied to both counters.
    error_labels
        Extra label filter for the error counter only, so one counter with a status label
        can serve as both (``total_metric = error_metric``, ``error_labels = {"code": "5*"}``).
    group_by
        Label names that split a service into separate SLOs (e.g. ``["route"]``); series are
        summed within a group, so hosts add up.
    windows
        Burn-rate conditions; defaults to the SRE workbook's four. A pair is evaluated once
        the history covers its long window (after a restart, restore the state to keep it).
    bucket_seconds
        Resolution of the counters' history.
    min_events
        No alert when the long window saw fewer requests than this.
    """

    name: str
    objective: float = Field(gt=0, lt=1)
    error_metric: str | None = None
    total_metric: str | None = None
    ratio_metric: str | None = None
    service: str = "*"
    labels: dict[str, str] = Field(default_factory=dict)
    error_labels: dict[str, str] = Field(default_factory=dict)
    group_by: list[str] = Field(default_factory=list)
    windows: list[BurnWindow] = Field(default_factory=lambda: list(SRE_WORKBOOK_WINDOWS))
    bucket_seconds: float = Field(default=60.0, gt=0)
    min_events: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> BurnRateRule:
        counters = self.error_metric is not None and self.total_metric is not None
        if counters == (self.ratio_metric is not None):
            raise ValueError("give either error_metric and total_metric, or ratio_metric")
        if not self.windows:
            raise ValueError("at least one burn-rate window is needed")
        for window in self.windows:
            if window.short_seconds > window.long_seconds:
                raise ValueError(f"window {window.label}: short window longer than long one")
        return self

    @property
    def budget(self) -> float:
        """The error budget, ``1 - objective``."""
        return 1.0 - self.objective

    @property
    def longest_seconds(self) -> float:
        """Longest window: how much history is kept."""
        return max(w.long_seconds for w in self.windows)


class ForecastConfig(BaseModel, frozen=True, extra="forbid"):
    """Settings of :class:`detectors.forecast.ForecastMonitor`.

    Parameters
    ----------
    rules
        Forecast rules.
    burn_rates
        SLO burn-rate rules.
    idle_eviction_seconds
        A forecast series not seen for this long (in event time) is dropped by
        ``evict_idle``; an SLO tracker is kept for at least its rule's longest window.
    """

    rules: list[ForecastRule] = Field(default_factory=list)
    burn_rates: list[BurnRateRule] = Field(default_factory=list)
    idle_eviction_seconds: float = Field(default=6 * 3600.0, gt=0.0)

    @model_validator(mode="after")
    def _unique_names(self) -> ForecastConfig:
        for kind, names in (
            ("forecast rule", [r.name for r in self.rules]),
            ("burn-rate rule", [r.name for r in self.burn_rates]),
        ):
            dupes = {n for n in names if names.count(n) > 1}
            if dupes:
                raise ValueError(f"duplicate {kind} names: {sorted(dupes)}")
        return self
