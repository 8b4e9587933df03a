"""Signal kind (cpu, memory, latency, errors, ...) from metric names and anomaly records."""

from __future__ import annotations

import re
from collections.abc import Mapping

from detectors.anomaly import Anomaly, Direction, SignalKind


class KindClassifier:
    """Infers the kind of a signal from its name with ordered regex patterns.

    Parameters
    ----------
    patterns
        ``kind -> regex``, tried in order (searched, case-insensitive); ``other`` if none.

    >>> kinds = KindClassifier({"cpu": "cpu", "latency": "lat"})
    >>> kinds.of_metric("carts-db_cpu"), kinds.of_metric("carts_lat_99"), kinds.of_metric("x")
    ('cpu', 'latency', 'other')
    """

    def __init__(self, patterns: Mapping[str, str]) -> None:
        self._patterns = [(kind, re.compile(rx, re.IGNORECASE)) for kind, rx in patterns.items()]
        self._cache: dict[str, str] = {}

    def of_metric(self, name: str) -> str:
        """Kind of a metric name."""
        kind = self._cache.get(name)
        if kind is None:
            kind = next((k for k, rx in self._patterns if rx.search(name)), "other")
            if len(self._cache) < 100_000:
                self._cache[name] = kind
        return kind

    def of_anomaly(self, anomaly: Anomaly) -> str:
        """Kind of an anomaly's signal: metric kinds by name, ``errors`` / ``new_template``
        / ``log`` for log signals, ``predicted`` for forecasts named by the forecast metric."""
        if anomaly.kind is SignalKind.LOG:
            if anomaly.signal == "log:errors":
                return "errors"
            if anomaly.direction is Direction.NEW_TEMPLATE:
                return "new_template"
            return "log"
        if anomaly.kind is SignalKind.ALERT:
            return "alert"
        if anomaly.kind is SignalKind.PREDICTED:
            metric = anomaly.details.get("metric") if anomaly.details else None
            return self.of_metric(str(metric or anomaly.signal))
        return self.of_metric(anomaly.signal)
