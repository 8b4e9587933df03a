"""Series and log services past their caps leave nothing behind in the pipeline."""

from __future__ import annotations

from detectors.events import LogEvent, MetricEvent
from streams.config import Settings
from streams.stages import Pipeline
from tests.streams.test_forecast_checkpoints import MemoryCheckpoints, RecordingPublisher

T0 = 1_700_000_000.0


async def test_refused_series_and_services_are_not_remembered() -> None:
    settings = Settings.model_validate(
        {"detection": {"metrics": {"max_series": 5}, "logs": {"max_services": 3}}}
    )
    pipe = Pipeline(
        settings=settings, publisher=RecordingPublisher(), checkpoints=MemoryCheckpoints()
    )
    for start in range(0, 1000, 100):  # 1,000 series of one point, 100 per batch
        batch = [MetricEvent(T0 + i, f"svc-{i}", "cpu", 1.0) for i in range(start, start + 100)]
        await pipe.on_metrics(batch, 0)
    await pipe.on_logs([LogEvent(T0 + i, f"logs-{i}", f"line {i}", "info") for i in range(50)], 0)

    assert pipe.metrics.stats.series == 5
    assert pipe.metrics.stats.rejected_by_cap == 995
    assert len(pipe._series_partition) == 5, "no partition remembered for a refused series"
    assert len(pipe.window._rings) <= 5, "no chart points of a refused series"
    assert {e.series_key for feed in pipe._engine_feed.values() for e in feed} == set(
        pipe.metrics.series_keys()
    ), "the incident engine gets only the kept series"

    assert pipe.logs.services() == ["logs-0", "logs-1", "logs-2"]
    assert pipe.logs.stats.services_rejected == 47
    assert len(pipe._service_partition) == len(pipe._log_seen) == 3
