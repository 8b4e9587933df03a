"""Pieces shared by the format decoders: error wording and counter handling."""

from __future__ import annotations

import json
from typing import Any

import orjson

from detectors.events import Labels, MetricEvent
from ingest.contract import Decoded, EventError
from ingest.exceptions import DecodeError, Reason
from ingest.formats.cumulative import CumulativeState


def dumps(obj: Any) -> bytes:
    """JSON bytes of a parsed element, for dead letters; never raises.

    Falls back to the standard library for what orjson refuses (integers beyond 64 bits,
    which another JSON parser may have produced).
    """
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, default=repr).encode()


def fail(fmt: str, where: str, reason: Reason, detail: str) -> DecodeError:
    """A :class:`DecodeError` whose detail names the format and the element.

    >>> str(fail("influx", "line 3", Reason.INVALID_VALUE, "bad field"))
    'invalid_value: influx: line 3: bad field'
    """
    prefix = f"{fmt}: {where}: " if where else f"{fmt}: "
    return DecodeError(reason, prefix + detail)


def relabel(exc: DecodeError, fmt: str, where: str) -> DecodeError:
    """The same error, its detail prefixed with the format and the element."""
    return fail(fmt, where, exc.reason, exc.detail)


def add_error(out: Decoded[MetricEvent], index: int, exc: DecodeError, raw: bytes) -> None:
    """Record one rejected element of a message."""
    out.errors.append(EventError(index, exc, raw))


def counter_rate(
    state: CumulativeState | None,
    *,
    fmt: str,
    service: str,
    metric: str,
    host: str | None,
    labels: Labels,
    timestamp: float,
    value: float,
    start: float | None = None,
    monotonic: bool = True,
) -> float | None:
    """Per-second rate of a cumulative counter point, None while there is no previous one.

    Raises :class:`DecodeError` when no state was given: a counter cannot become a rate
    without the previous point, and dropping it silently would hide the misconfiguration.
    """
    if state is None:
        raise DecodeError(
            Reason.INVALID_VALUE,
            f"{fmt}: '{metric}' is a cumulative counter and no CumulativeState was given "
            "to turn it into a rate",
        )
    increase = state.increase(
        (service, metric, host, labels), timestamp, (value,), start=start, monotonic=monotonic
    )
    return None if increase is None else increase.rate()
