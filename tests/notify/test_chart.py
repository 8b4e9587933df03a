"""Series memory for charts stays bounded; charts are PNGs that mark the onset."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import MetricEvent
from notify.chart import SeriesWindow, metric_fingerprint, render_chart
from notify.config import ChartConfig
from notify.exceptions import ChartError


def anomaly(service: str, metric: str, at: float, *, host: str | None = None) -> Anomaly:
    return Anomaly(
        service,
        metric,
        SignalKind.METRIC,
        at,
        1.0,
        0.9,
        Direction.SPIKE,
        "d",
        host=host,
        band=(0.0, 1.0),
    )


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_fingerprint_matches_the_anomaly_of_the_same_series() -> None:
    event = MetricEvent(1.0, "api", "latency", 3.0, host="h1", labels=(("zone", "a"),))
    same = Anomaly(
        "api",
        "latency",
        SignalKind.METRIC,
        9.0,
        3.0,
        0.9,
        Direction.SPIKE,
        "d",
        host="h1",
        labels=(("zone", "a"),),
    )
    other = anomaly("api", "latency", 9.0, host="h2")
    assert metric_fingerprint(event) == same.fingerprint != other.fingerprint


def test_anomalous_series_keep_a_long_history_others_a_short_one() -> None:
    window = SeriesWindow(ChartConfig(lookback_points=5, points=50, retain_s=100.0))
    for t in range(20):
        window.observe(MetricEvent(float(t), "api", "cpu", float(t)))
        window.observe(MetricEvent(float(t), "db", "cpu", float(t)))
    window.mark(anomaly("api", "cpu", 19.0))
    for t in range(20, 40):
        window.observe(MetricEvent(float(t), "api", "cpu", float(t)))
        window.observe(MetricEvent(float(t), "db", "cpu", float(t)))
    api = window.points(anomaly("api", "cpu", 0.0).fingerprint)
    db = window.points(anomaly("db", "cpu", 0.0).fingerprint)
    assert api is not None and db is not None
    # Promoted at t=19 with its 5 recent points, then 20 more.
    assert api.times.tolist() == [float(t) for t in range(15, 40)]
    assert api.mark is not None and api.mark.onset == 19.0 and api.mark.band == (0.0, 1.0)
    assert db.times.tolist() == [35.0, 36.0, 37.0, 38.0, 39.0]
    # Long after the anomaly the series falls back to the short ring.
    window.observe(MetricEvent(200.0, "api", "cpu", 1.0))
    api = window.points(anomaly("api", "cpu", 0.0).fingerprint)
    assert api is not None and len(api.times) == 5 and api.mark is None


def test_memory_is_bounded_by_series_caps() -> None:
    config = ChartConfig(lookback_points=10, points=100, max_series=50, max_anomalous=3)
    window = SeriesWindow(config)
    for i in range(500):
        for t in range(12):
            window.observe(MetricEvent(float(t), f"svc{i}", "cpu", 1.0))
        window.mark(anomaly(f"svc{i}", "cpu", 5.0))
    assert len(window) == 50
    assert window.nbytes <= 3 * 100 * 12 + 47 * 10 * 12
    # The most recently seen survive; the first ones were dropped.
    assert anomaly("svc499", "cpu", 0.0).fingerprint in window
    assert anomaly("svc0", "cpu", 0.0).fingerprint not in window


def test_nan_samples_are_skipped() -> None:
    window = SeriesWindow(ChartConfig(lookback_points=4))
    for t, v in enumerate([1.0, float("nan"), 3.0]):
        window.observe(MetricEvent(float(t), "a", "m", v))
    series = window.points(metric_fingerprint(MetricEvent(0.0, "a", "m", 0.0)))
    assert series is not None and series.values.tolist() == [1.0, 3.0]


def test_chart_is_a_png_of_the_configured_size() -> None:
    t = np.arange(0.0, 600.0, 5.0)
    v = np.where(t >= 300, 90.0, 40.0) + np.sin(t)
    config = ChartConfig(width_in=5.0, height_in=2.0, dpi=80)
    png = render_chart(t, v, onset=300.0, band=(35.0, 45.0), title="carts cpu", config=config)
    assert png_size(png) == (400, 160)
    assert 2_000 < len(png) < 200_000


def test_chart_needs_points() -> None:
    with pytest.raises(ChartError):
        render_chart(np.array([]), np.array([]))
