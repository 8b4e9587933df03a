"""The forecast monitor: routes metric samples to crossing predictors and SLO trackers."""

from __future__ import annotations

from typing import Any

import orjson

from detectors.anomaly import Anomaly
from detectors.events import Labels, MetricEvent
from detectors.forecast.burnrate import BurnRateTracker, group_labels, rule_matches
from detectors.forecast.config import BurnRateRule, ForecastConfig, ForecastRule
from detectors.forecast.exceptions import StateError
from detectors.forecast.predictor import CrossingPredictor

Route = tuple[str, str, str | None, Labels]
STATE_VERSION = 1
_FORECAST = "forecast"
_SLO = "slo"


class ForecastMonitor:
    """Predicts limit crossings and raises SLO burn-rate alerts from a stream of samples.

    Call :meth:`process` with every metric sample (any order of series; each series in
    time order). It returns the anomalies to publish: ``predicted`` / ``withdrawn`` crossing
    predictions (``kind=PREDICTED``) and ``firing`` / ``resolved`` burn-rate alerts
    (``kind=METRIC``, signal ``slo:<rule>``). Persist :meth:`dirty_states` (e.g. into a
    changelogged table) and feed them back to :meth:`restore` after a restart.

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
        self._routes: dict[Route, list[tuple[ForecastRule, str]]] = {}
        self._predictors: dict[str, CrossingPredictor] = {}
        self._trackers: dict[str, BurnRateTracker] = {}
        self._dirty: set[str] = set()

    def process(self, event: MetricEvent) -> list[Anomaly]:
        """Learn one sample; returns the anomalies it opened, moved, withdrew or resolved."""
        out: list[Anomaly] = []
        for rule, key in self._forecast_rules(event):
            predictor = self._predictors.get(key)
            if predictor is None:
                predictor = self._predictors[key] = CrossingPredictor(rule, event)
            anomaly = predictor.process(event)
            self._dirty.add(key)
            if anomaly is not None:
                out.append(anomaly)
        for slo in self.config.burn_rates:
            is_error, is_total = rule_matches(slo, event)
            if not (is_error or is_total):
                continue
            labels = group_labels(slo, event.labels)
            key = f"{_SLO}|{slo.name}|{event.service}|{_label_text(labels)}"
            tracker = self._trackers.get(key)
            if tracker is None:
                tracker = self._trackers[key] = BurnRateTracker(slo, event.service, labels)
            alert = tracker.process(event, is_error=is_error, is_total=is_total)
            self._dirty.add(key)
            if alert is not None:
                out.append(alert)
        return out

    def _forecast_rules(self, event: MetricEvent) -> list[tuple[ForecastRule, str]]:
        """The rules that select the event's series, with their state keys (cached)."""
        route = (event.service, event.metric, event.host, event.labels)
        rules = self._routes.get(route)
        if rules is None:
            rules = [
                (r, f"{_FORECAST}|{r.name}|{event.series_key}")
                for r in self.config.rules
                if r.matches(event.service, event.metric, event.labels)
            ]
            self._routes[route] = rules
        return rules

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
