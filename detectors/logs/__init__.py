"""Log intelligence: masking, online template mining and log anomaly detection."""

from detectors.logs.config import LogDetectionConfig, MinerConfig
from detectors.logs.masking import mask
from detectors.logs.miner import MinedLine, TemplateMiner

__all__ = ["LogDetectionConfig", "MinedLine", "MinerConfig", "TemplateMiner", "mask"]
