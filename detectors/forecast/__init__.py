"""Predict limit crossings before they happen, and alert on SLO error-budget burn.

Pure: no Kafka, no HTTP. :class:`ForecastMonitor` takes :class:`~detectors.events.MetricEvent`
samples and returns :class:`~detectors.anomaly.Anomaly` records: ``predicted`` /
``withdrawn`` crossing predictions and ``firing`` / ``resolved`` burn-rate alerts.
"""

from detectors.forecast.burnrate import BurnRateTracker, BurnSample
from detectors.forecast.config import (
    SRE_WORKBOOK_WINDOWS,
    BurnRateRule,
    BurnWindow,
    ForecastConfig,
    ForecastRule,
    Limit,
    SeriesSelector,
)
from detectors.forecast.exceptions import ForecastError, StateError
from detectors.forecast.monitor import ForecastMonitor
from detectors.forecast.predictor import Crossing, CrossingPredictor, assess
from detectors.forecast.trend import RobustTrend, TrendEstimate

__all__ = [
    "SRE_WORKBOOK_WINDOWS",
    "BurnRateRule",
    "BurnRateTracker",
    "BurnSample",
    "BurnWindow",
    "Crossing",
    "CrossingPredictor",
    "ForecastConfig",
    "ForecastError",
    "ForecastMonitor",
    "ForecastRule",
    "Limit",
    "RobustTrend",
    "SeriesSelector",
    "StateError",
    "TrendEstimate",
    "assess",
]
