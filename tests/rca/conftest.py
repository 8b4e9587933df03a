"""Builders for anomaly records and metric streams used by the rca tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from detectors.anomaly import Anomaly, Direction, SignalKind


def make_anomaly(
    service: str,
    signal: str = "cpu",
    at: float = 1000.0,
    *,
    z: float | None = 10.0,
    score: float = 0.99,
    kind: SignalKind = SignalKind.METRIC,
    direction: Direction = Direction.SPIKE,
    **details: object,
) -> Anomaly:
    """One anomaly record as the detectors publish it."""
    extra: dict[str, object] = {"phase": "onset", **details}
    if z is not None:
        extra["z"] = z
    return Anomaly(
        service=service,
        signal=signal,
        kind=kind,
        timestamp=at,
        value=1.0,
        score=score,
        direction=direction,
        detector="test",
        details=extra,
    )


@pytest.fixture
def anomaly() -> Callable[..., Anomaly]:
    return make_anomaly
