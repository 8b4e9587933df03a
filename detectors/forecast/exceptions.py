"""Errors raised by :mod:`detectors.forecast`. Every one is a :class:`ForecastError`."""

from __future__ import annotations


class ForecastError(Exception):
    """Root of the errors of :mod:`detectors.forecast`."""


class StateError(ForecastError):
    """A persisted state cannot be restored (unknown key, corrupt or foreign bytes).

    Parameters
    ----------
    key
        The state key that was being restored.
    detail
        What was wrong with it.
    """

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key = key
        self.detail = detail
