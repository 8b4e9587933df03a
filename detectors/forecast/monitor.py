"""The forecast monitor: routes metric samples to crossing predictors and SLO trackers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.anomaly import Anomaly
from detectors.events import Labels, MetricEvent
from detectors.forecast.burnrate import BurnRateTracker, group_labels, rule_matches
from detectors.forecast.config import BurnRateRule, ForecastConfig, ForecastRule
from detectors.forecast.exceptions import StateError
from detectors.forecast.predictor import CrossingPredictor

STATE_VERSION = 1
_FORECAST = "forecast"
_SLO = "slo"


@dataclass(slots=True)
class _Route:
    """The states one series feeds (cached per series), and when it last fed them."""

    forecasts: list[tuple[ForecastRule, str]]
    slos: list[tuple[BurnRateRule, bool, bool, str, Labels]]  # rule, is_error, is_total, key, group
    last_seen: float


class ForecastMonitor:
    """Predicts limit crossings and raises SLO burn-rate alerts from a stream of samples.

    Call :meth:`process` with every metric sample (any order of series; each series in
    time order). It returns the anomalies to publish: ``predicted`` / ``withdrawn`` crossing
    predictions (``kind=PREDICTED``) and ``firing`` / ``resolved`` burn-rate alerts
    (``kind=METRIC``, signal ``slo:<rule>``). Persist :meth:`dirty_states` (e.g. into a
    changelogged table) and feed them back to :meth:`restore` after a restart: before
    processing an event, restore the keys :meth:`unloaded_keys` names, so that states are
    read back lazily, when their series come back. Call :meth:`evict_idle` from time to time
    to drop the states of series that went away.

    Parameters
    ----------
    config
        Forecast and burn-rate rules.

    Examples
    --------
    >>> from detectors.forecast import ForecastConfig, ForecastRule, Limit
    >>> rule = ForecastRule(name="disk", metric="disk_used_ratio", limit=Limit(value=0.95),
    ...                     horizon_seconds=3600)
    >>> monitor = ForecastMonitor(ForecastConfig(rules=[rule]))
    >>> out = []
    >>> for i in range(400):  # flat at 0.5 for 2 h, then +0.2 per hour
    ...     value = 0.5 + max(0, i - 240) * 60 * 0.2 / 3600
    ...     out += monitor.process(MetricEvent(i * 60.0, "db", "disk_used_ratio", value))
    >>> first = out[0]
    >>> first.details["phase"], first.details["rule"]
    ('predicted', 'disk')
    >>> truth = 240 * 60 + 0.45 / 0.2 * 3600
    >>> abs(first.details["crossing_time"] - truth) < 0.1 * (truth - first.timestamp)
    True
    """

    def __init__(self, config: ForecastConfig) -> None:
        self.config = config
        self._rules = {r.name: r for r in config.rules}
        self._slos = {r.name: r for r in config.burn_rates}
        idle = config.idle_eviction_seconds
        # A tracker's longest window must run empty before its history stops mattering.
        self._tracker_idle = {r.name: max(idle, r.longest_seconds) for r in config.burn_rates}
        self._routes: dict[str, _Route] = {}
        self._predictors: dict[str, CrossingPredictor] = {}
        self._trackers: dict[str, BurnRateTracker] = {}
        self._last_seen: dict[str, float] = {}  # state key -> latest event time
        self._dirty: set[str] = set()

    def process(self, event: MetricEvent) -> list[Anomaly]:
        """Learn one sample; returns the anomalies it opened, moved, withdrew or resolved."""
        out: list[Anomaly] = []
        route = self._route(event)
        now = event.timestamp
        if now > route.last_seen:
            route.last_seen = now
        seen = self._last_seen
        for rule, key in route.forecasts:
            predictor = self._predictors.get(key)
            if predictor is None:
                predictor = self._predictors[key] = CrossingPredictor(rule, event)
            anomaly = predictor.process(event)
            self._dirty.add(key)
            if seen.get(key, -math.inf) < now:
                seen[key] = now
            if anomaly is not None:
                out.append(anomaly)
        for slo, is_error, is_total, key, labels in route.slos:
            tracker = self._trackers.get(key)
            if tracker is None:
                tracker = self._trackers[key] = BurnRateTracker(slo, event.service, labels)
            alert = tracker.process(event, is_error=is_error, is_total=is_total)
            self._dirty.add(key)
            if seen.get(key, -math.inf) < now:
                seen[key] = now
            if alert is not None:
                out.append(alert)
        return out

    def _route(self, event: MetricEvent) -> _Route:
        """The rules the event's series feeds, with their state keys (cached per series)."""
        route = self._routes.get(event.series_key)
        if route is None:
            forecasts = [
                (r, f"{_FORECAST}|{r.name}|{event.series_key}")
                for r in self.config.rules
                if r.matches(event.service, event.metric, event.labels)
            ]
            slos = []
            for slo in self.config.burn_rates:
                is_error, is_total = rule_matches(slo, event)
                if is_error or is_total:
                    labels = group_labels(slo, event.labels)
                    key = f"{_SLO}|{slo.name}|{event.service}|{_label_text(labels)}"
                    slos.append((slo, is_error, is_total, key, labels))
            route = self._routes[event.series_key] = _Route(forecasts, slos, event.timestamp)
        return route

    def unloaded_keys(self, event: MetricEvent) -> list[str]:
        """State keys that :meth:`process` would touch for ``event`` and that are not in memory.

        A caller that persists states restores these (if it has them) before processing the
        event, so that a restarted worker resumes every predictor and tracker it had, each
        the first time one of its series comes back.
        """
        route = self._route(event)
        return [k for _, k in route.forecasts if k not in self._predictors] + [
            k for _, _, _, k, _ in route.slos if k not in self._trackers
        ]

    def state_keys(self) -> list[str]:
        """Keys of the predictors and trackers currently kept."""
        return [*self._predictors, *self._trackers]

    def evict_idle(self, now: float) -> tuple[list[str], list[Anomaly]]:
        """Drop the states whose series have not been seen for a while before ``now``.

        ``now`` is in event time (epoch seconds). A predictor goes after
        ``idle_eviction_seconds`` without a sample; a burn-rate tracker after that or its
        rule's longest window, whichever is longer: by then every window of the tracker is
        empty, so its alert resolves. Within the trackers that stay, the counter baselines
        of series gone for ``idle_eviction_seconds`` are dropped. A state restored but not
        processed since counts as seen at its first call.

        Returns the evicted keys, so that the caller can delete their checkpoints, and the
        records that close what they left open: a ``resolved`` burn-rate alert, a
        ``withdrawn`` prediction (``reason="idle"``), emitted at ``now``.
        """
        idle = self.config.idle_eviction_seconds
        seen = self._last_seen
        gone = [k for k in self._predictors if seen.setdefault(k, now) < now - idle]
        for key, tracker in self._trackers.items():
            if seen.setdefault(key, now) < now - self._tracker_idle[tracker.rule.name]:
                gone.append(key)
            elif tracker.forget_series(now - idle):
                self._dirty.add(key)
        closing = []
        for key in gone:
            state = self._predictors.pop(key, None) or self._trackers.pop(key)
            anomaly = state.expire(now)
            if anomaly is not None:
                closing.append(anomaly)
            del seen[key]
            self._dirty.discard(key)
        stale = [s for s, route in self._routes.items() if route.last_seen < now - idle]
        for series in stale:
            del self._routes[series]
        return gone, closing

    def predictions(self) -> list[tuple[str, float | None]]:
        """Open predictions as ``(state key, expected crossing time)``."""
        return [
            (key, p.published_crossing)
            for key, p in self._predictors.items()
            if p.onset is not None
        ]

    def dirty_states(self) -> list[tuple[str, bytes]]:
        """States changed since the last call, as ``(key, bytes)``; clears the dirty set."""
        out = []
        for key in sorted(self._dirty):
            state: dict[str, Any]
            if key.startswith(f"{_FORECAST}|"):
                state = self._predictors[key].to_state()
            else:
                state = self._trackers[key].to_state()
            out.append((key, orjson.dumps({"v": STATE_VERSION, "state": state})))
        self._dirty.clear()
        return out

    def restore(self, key: str, state: bytes) -> None:
        """Restore one state produced by :meth:`dirty_states`.

        Raises
        ------
        StateError
            The bytes are not a state of this version, or the key names a rule that is
            no longer configured (the caller may drop it).
        """
        kind, _, rest = key.partition("|")
        name = rest.partition("|")[0]
        try:
            payload = orjson.loads(state)
            if payload.get("v") != STATE_VERSION:
                raise StateError(key, f"state version {payload.get('v')!r} not supported")
            body = payload["state"]
            if kind == _FORECAST:
                rule = self._rules.get(name)
                if rule is None:
                    raise StateError(key, f"no forecast rule named {name!r}")
                self._predictors[key] = CrossingPredictor.from_state(rule, body)
            elif kind == _SLO:
                slo: BurnRateRule | None = self._slos.get(name)
                if slo is None:
                    raise StateError(key, f"no burn-rate rule named {name!r}")
                self._trackers[key] = BurnRateTracker.from_state(slo, body)
            else:
                raise StateError(key, f"unknown state kind {kind!r}")
        except StateError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(key, f"corrupt state: {exc}") from exc


def _label_text(labels: Labels) -> str:
    return ",".join(f"{k}={v}" for k, v in labels)
