"""One record of an input topic, as the pipeline sees it (no Kafka client types)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputRecord:
    """A Kafka record of an input topic: offset, key, value and broker timestamp (s)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
