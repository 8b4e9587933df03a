"""The worker publishes the recent points of series with a recent anomaly, for charts."""

from __future__ import annotations

import orjson

from detectors.events import MetricEvent
from notify.chart import metric_fingerprint
from streams.config import Settings
from streams.stages import Pipeline
from tests.streams.test_forecast_checkpoints import MemoryCheckpoints, RecordingPublisher

T0 = 1_700_000_000.0


def series_records(publisher: RecordingPublisher) -> list[tuple[bytes, dict]]:
    return [(k, orjson.loads(v)) for topic, k, v in publisher.records if topic == "series"]


async def test_an_anomalous_series_is_published_with_its_onset_band_and_points() -> None:
    publisher = RecordingPublisher()
    settings = Settings.model_validate({"worker": {"series_interval_s": 0.5}})
    pipe = Pipeline(settings=settings, publisher=publisher, checkpoints=MemoryCheckpoints())
    calm = [MetricEvent(T0 + 60.0 * i, "api", "latency_ms", 100.0 + (i % 5)) for i in range(400)]
    other = [MetricEvent(T0 + 60.0 * i, "db", "cpu", 0.4 + 0.01 * (i % 3)) for i in range(420)]
    spike = [MetricEvent(T0 + 60.0 * i, "api", "latency_ms", 900.0) for i in range(400, 420)]
    events = sorted(calm + other + spike, key=lambda e: e.timestamp)
    for start in range(0, len(events), 50):
        await pipe.on_metrics(events[start : start + 50], 0)
    pipe._series_due = 0.0
    await pipe.tick()

    fingerprint = metric_fingerprint(spike[0])
    records = series_records(publisher)
    assert [k for k, _ in records] == [fingerprint.encode()], "only the anomalous series"
    record = records[0][1]
    assert record["label"] == "api latency_ms"
    assert T0 + 60.0 * 400 <= record["onset"] <= T0 + 60.0 * 405
    assert record["band"] is not None and record["band"][1] < 900.0
    assert record["t"][-1] == spike[-1].timestamp and record["v"][-1] == 900.0
    assert record["t"][0] < record["onset"], "points before the onset, for context"

    pipe._series_due = 0.0
    await pipe.tick()
    assert len(series_records(publisher)) == 1, "no new point: not published again"
