"""Log intelligence: masking, online template mining and log anomaly detection.

:class:`LogMonitor` is the entry point: one per process, fed every :class:`LogEvent`,
reporting :class:`~detectors.anomaly.Anomaly` records of kind ``log`` (new templates, rate
departures, bursts) with their template, a few example lines and counts.
"""

from detectors.logs.config import LogDetectionConfig, MinerConfig
from detectors.logs.exceptions import LogDetectionError, StateError
from detectors.logs.masking import PARAM, mask
from detectors.logs.miner import OVERFLOW_ID, MinedLine, TemplateMiner
from detectors.logs.monitor import (
    ERRORS_SIGNAL,
    LineVerdict,
    LogMonitor,
    LogMonitorStats,
    template_signal,
)
from detectors.logs.severity import SeverityScorer

__all__ = [
    "ERRORS_SIGNAL",
    "OVERFLOW_ID",
    "PARAM",
    "LineVerdict",
    "LogDetectionConfig",
    "LogDetectionError",
    "LogMonitor",
    "LogMonitorStats",
    "MinedLine",
    "MinerConfig",
    "SeverityScorer",
    "StateError",
    "TemplateMiner",
    "mask",
    "template_signal",
]
