"""Errors of :mod:`detectors.metric`. Every one is a :class:`MetricDetectionError`."""

from __future__ import annotations


class MetricDetectionError(Exception):
    """Root of the errors of :mod:`detectors.metric`."""


class UnknownDetectorError(MetricDetectionError, KeyError):
    """A rule or the configuration names a detector that is not registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown metric detector {name!r}; registered: {', '.join(known)}")
        self.name = name


class StateError(MetricDetectionError):
    """Persisted series state cannot be restored (bad bytes, unknown version)."""
