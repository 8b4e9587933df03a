"""Errors raised by the decoders. Every decoding failure is a :class:`DecodeError`."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a message or event was rejected; the dead-letter topic carries it."""

    INVALID_JSON = "invalid_json"
    OVERSIZED = "oversized"
    NOT_AN_EVENT = "not_an_event"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    EMPTY = "empty"
    UNKNOWN_FORMAT = "unknown_format"


class IngestError(Exception):
    """Root of the errors of :mod:`ingest`."""


class DecodeError(IngestError):
    """A message, or one event in it, cannot be turned into a telemetry event.

    Parameters
    ----------
    reason
        Machine-readable category (see :class:`Reason`).
    detail
        Human-readable explanation naming the field or format and what was wrong.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
