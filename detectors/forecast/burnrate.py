"""SLO burn-rate alerting, multi-window and multi-burn-rate, computed online from counters.

The burn rate of a window is its error ratio divided by the error budget (``1 - objective``):
at burn rate 1 the budget lasts exactly the SLO period. A window pair fires when both its
long and its short window burn at least at its rate; the short window makes the alert stop
soon after the errors stop (SRE workbook, "Alerting on SLOs", recommendation 6).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import Labels, MetricEvent
from detectors.forecast.config import BurnRateRule, BurnWindow

DETECTOR_NAME = "forecast.burn_rate"
SEVERITY_SCORE = {"page": 1.0, "ticket": 0.5}


@dataclass(frozen=True, slots=True)
class BurnSample:
    """What one window pair measured.

    Parameters
    ----------
    window
        The window pair.
    long_rate, short_rate
        Burn rates over its long and short windows.
    long_total
        Requests counted in the long window.
    error_ratio
        Error ratio of the long window.
    """

    window: BurnWindow
    long_rate: float
    short_rate: float
    long_total: float
    error_ratio: float


def rule_matches(rule: BurnRateRule, event: MetricEvent) -> tuple[bool, bool]:
    """Whether ``event`` counts as (errors, total) for ``rule``."""
    if not fnmatchcase(event.service, rule.service):
        return False, False
    labels = dict(event.labels)
    if not all(fnmatchcase(labels.get(k, ""), v) for k, v in rule.labels.items()):
        return False, False
    if rule.ratio_metric is not None:
        hit = event.metric == rule.ratio_metric
        return hit, hit
    is_error = event.metric == rule.error_metric and all(
        fnmatchcase(labels.get(k, ""), v) for k, v in rule.error_labels.items()
    )
    return is_error, event.metric == rule.total_metric


def group_labels(rule: BurnRateRule, labels: Labels) -> Labels:
    """The labels that identify an SLO group within a service."""
    have = dict(labels)
    return tuple((k, have.get(k, "")) for k in sorted(rule.group_by))


class BurnRateTracker:
    """Burn rates of one SLO for one service (and ``group_by`` label values).

    Counters are turned into increases per series (a decrease is a reset: the new value is
    the increase), summed into buckets of ``bucket_seconds``, and kept as running totals so
    that any window's sum is two binary searches away.

    Parameters
    ----------
    rule
        The burn-rate rule.
    service
        The service.
    labels
        The ``group_by`` label values.
    """

    def __init__(self, rule: BurnRateRule, service: str, labels: Labels) -> None:
        self.rule = rule
        self.service = service
        self.labels = labels
        self.last_values: dict[str, tuple[float, float]] = {}
        self.ks: list[int] = []
        self.cum_err: list[float] = []
        self.cum_tot: list[float] = []
        self.bucket: int | None = None
        self.first_bucket: int | None = None
        self.err = 0.0
        self.tot = 0.0
        self.severity: str | None = None
        self.onset: float | None = None

    def process(self, event: MetricEvent, *, is_error: bool, is_total: bool) -> Anomaly | None:
        """Count one sample; returns an anomaly when the alert fires, escalates or resolves."""
        if not math.isfinite(event.value):
            return None
        rule = self.rule
        if rule.ratio_metric is not None:
            err, tot = min(max(event.value, 0.0), 1.0), 1.0
        else:
            increase = self._increase(event)
            if increase is None:
                return None
            err = increase if is_error else 0.0
            tot = increase if is_total else 0.0
        k = math.floor(event.timestamp / rule.bucket_seconds)
        result = None
        if self.bucket is not None and k > self.bucket:
            self._close()
            result = self._evaluate(event.timestamp)
        if self.bucket is None or k > self.bucket:
            self.bucket = k
        if self.first_bucket is None:
            self.first_bucket = k
        self.err += err
        self.tot += tot
        return result

    def _increase(self, event: MetricEvent) -> float | None:
        key = event.series_key
        previous = self.last_values.get(key)
        if previous is not None and event.timestamp < previous[0]:
            return None  # late sample of a counter: its increase was already counted
        self.last_values[key] = (event.timestamp, event.value)
        if previous is None:
            return None
        delta = event.value - previous[1]
        return delta if delta >= 0 else max(event.value, 0.0)

    def expire(self, now: float) -> Anomaly | None:
        """Resolve a firing alert whose samples stopped; call it before dropping the tracker.

        Closes the windows at ``now`` as a sample counting nothing would: once the longest
        window has run empty the alert resolves, with the burn rates as of ``now``. Returns
        ``None`` when nothing was firing or a window still burns.
        """
        if self.severity is None or self.bucket is None:
            return None
        k = math.floor(now / self.rule.bucket_seconds)
        if k <= self.bucket:
            return None
        self._close()
        self.bucket = k
        self._close()  # the empty bucket of ``now``: the windows end there
        return self._evaluate(now)

    def forget_series(self, before: float) -> bool:
        """Drop the counter baselines of series last seen before ``before`` (event time).

        A series that comes back afterwards starts a new baseline: its first sample adds
        nothing. Returns whether anything was dropped.
        """
        gone = [k for k, (t, _) in self.last_values.items() if t < before]
        for key in gone:
            del self.last_values[key]
        return bool(gone)

    def _close(self) -> None:
        assert self.bucket is not None
        base_err = self.cum_err[-1] if self.cum_err else 0.0
        base_tot = self.cum_tot[-1] if self.cum_tot else 0.0
        self.ks.append(self.bucket)
        self.cum_err.append(base_err + self.err)
        self.cum_tot.append(base_tot + self.tot)
        self.err = 0.0
        self.tot = 0.0
        keep = self.rule.longest_seconds / self.rule.bucket_seconds + 1
        if len(self.ks) > 64 and self.ks[-1] - self.ks[len(self.ks) // 2] > keep:
            half = len(self.ks) // 2
            del self.ks[:half], self.cum_err[:half], self.cum_tot[:half]

    def _window_sums(self, seconds: float) -> tuple[float, float]:
        buckets = max(round(seconds / self.rule.bucket_seconds), 1)
        start = self.ks[-1] - buckets  # sum over buckets in (start, last]
        i = bisect_right(self.ks, start) - 1
        base_err = self.cum_err[i] if i >= 0 else 0.0
        base_tot = self.cum_tot[i] if i >= 0 else 0.0
        return self.cum_err[-1] - base_err, self.cum_tot[-1] - base_tot

    def burn_rates(self) -> list[BurnSample]:
        """Burn rates of the window pairs whose long window the history already covers.

        A window that is not yet full would judge the budget on too little time: one bad
        hour after a restart would look like a bad three days.
        """
        if not self.ks or self.first_bucket is None:
            return []
        budget = self.rule.budget
        seen = (self.ks[-1] - self.first_bucket + 1) * self.rule.bucket_seconds
        out = []
        for window in self.rule.windows:
            if seen < window.long_seconds:
                continue
            long_err, long_tot = self._window_sums(window.long_seconds)
            short_err, short_tot = self._window_sums(window.short_seconds)
            long_ratio = long_err / long_tot if long_tot > 0 else 0.0
            short_ratio = short_err / short_tot if short_tot > 0 else 0.0
            out.append(
                BurnSample(
                    window=window,
                    long_rate=long_ratio / budget,
                    short_rate=short_ratio / budget,
                    long_total=long_tot,
                    error_ratio=long_ratio,
                )
            )
        return out

    def _evaluate(self, now: float) -> Anomaly | None:
        samples = self.burn_rates()
        if not samples:
            return None
        firing = [
            s
            for s in samples
            if s.long_total >= self.rule.min_events
            and s.long_rate >= s.window.burn_rate
            and s.short_rate >= s.window.burn_rate
        ]
        worst = next((s for s in firing if s.window.severity == "page"), None) or next(
            iter(firing), None
        )
        severity = worst.window.severity if worst else None
        if severity == self.severity:
            return None
        if worst is None:
            anomaly = self._anomaly(now, samples, samples[0], phase="resolved")
            self.severity = None
            self.onset = None
            return anomaly
        if self.onset is None:
            self.onset = now
        self.severity = severity
        return self._anomaly(now, samples, worst, phase="firing")

    def _anomaly(
        self, now: float, samples: list[BurnSample], chosen: BurnSample, *, phase: str
    ) -> Anomaly:
        assert self.onset is not None
        severity = self.severity or chosen.window.severity
        details: dict[str, Any] = {
            "phase": phase,
            "rule": self.rule.name,
            "severity": severity,
            "burn_rate": chosen.long_rate,
            "short_burn_rate": chosen.short_rate,
            "threshold": chosen.window.burn_rate,
            "window": chosen.window.label,
            "objective": self.rule.objective,
            "error_ratio": chosen.error_ratio,
            "burn_rates": {s.window.label: [s.long_rate, s.short_rate] for s in samples},
            "emitted_at": now,
        }
        return Anomaly(
            service=self.service,
            signal=f"slo:{self.rule.name}",
            kind=SignalKind.METRIC,
            timestamp=self.onset,
            value=chosen.long_rate,
            score=SEVERITY_SCORE[severity] if phase == "firing" else 0.0,
            direction=Direction.RATE,
            detector=DETECTOR_NAME,
            expected=chosen.window.burn_rate,
            labels=self.labels,
            details=details,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state, identity included."""
        return {
            "service": self.service,
            "labels": [list(p) for p in self.labels],
            "last_values": {k: list(v) for k, v in self.last_values.items()},
            "ks": self.ks,
            "cum_err": self.cum_err,
            "cum_tot": self.cum_tot,
            "bucket": self.bucket,
            "first_bucket": self.first_bucket,
            "err": self.err,
            "tot": self.tot,
            "severity": self.severity,
            "onset": self.onset,
        }

    @classmethod
    def from_state(cls, rule: BurnRateRule, state: dict[str, Any]) -> BurnRateTracker:
        """Inverse of :meth:`to_state`."""
        labels = tuple((str(k), str(v)) for k, v in state["labels"])
        tracker = cls(rule, str(state["service"]), labels)
        tracker.last_values = {
            str(k): (float(t), float(v)) for k, (t, v) in state["last_values"].items()
        }
        tracker.ks = [int(k) for k in state["ks"]]
        tracker.cum_err = [float(v) for v in state["cum_err"]]
        tracker.cum_tot = [float(v) for v in state["cum_tot"]]
        tracker.bucket = state["bucket"]
        tracker.first_bucket = state["first_bucket"]
        tracker.err = float(state["err"])
        tracker.tot = float(state["tot"])
        tracker.severity = state["severity"]
        tracker.onset = state["onset"]
        return tracker
