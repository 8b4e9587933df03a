"""Errors raised by :mod:`detectors.logs`."""

from __future__ import annotations


class LogDetectionError(Exception):
    """Root of the errors of :mod:`detectors.logs`."""


class StateError(LogDetectionError):
    """A persisted state cannot be restored (corrupt, or from an incompatible version)."""
