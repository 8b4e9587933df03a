"""Online anomaly detection on metric series.

:class:`MetricMonitor` keeps one detector per series (chosen by :class:`DetectorRule`s, with
``robust_likelihood`` as the default), scores every value before learning it, and turns
scores into one :class:`~detectors.anomaly.Anomaly` per episode. Series state is compact,
versioned bytes that a changelog-backed table can store and restore.
"""

from __future__ import annotations

from detectors.metric import bocpd as _bocpd  # noqa: F401  (registers)
from detectors.metric import context as _context  # noqa: F401  (registers)
from detectors.metric import ensemble as _ensemble  # noqa: F401  (registers)
from detectors.metric import resonance as _resonance  # noqa: F401  (registers)
from detectors.metric import river_adapters as _river_adapters  # noqa: F401  (registers)
from detectors.metric.base import (
    Expectation,
    MetricDetector,
    make_detector,
    register_detector,
    registered_detectors,
)
from detectors.metric.config import DetectorRule, HysteresisConfig, MetricDetectionConfig
from detectors.metric.ensemble import warm_up
from detectors.metric.exceptions import MetricDetectionError, StateError, UnknownDetectorError
from detectors.metric.monitor import MetricMonitor, MonitorStats, Observation
from detectors.metric.robust import RobustBank, RobustLikelihood, RobustParams

__all__ = [
    "DetectorRule",
    "Expectation",
    "HysteresisConfig",
    "MetricDetectionConfig",
    "MetricDetectionError",
    "MetricDetector",
    "MetricMonitor",
    "MonitorStats",
    "Observation",
    "RobustBank",
    "RobustLikelihood",
    "RobustParams",
    "StateError",
    "UnknownDetectorError",
    "make_detector",
    "register_detector",
    "registered_detectors",
    "warm_up",
]
