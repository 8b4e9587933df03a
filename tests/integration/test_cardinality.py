"""A cardinality attack, short: a worker with small caps is sent far more series and log
templates than it keeps (``python -m benchmarks.cardinality`` is the long run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.cardinality import run
from tests.kafka_harness import BrokerHandle

pytestmark = pytest.mark.kafka

MAX_SERIES = 2_000
MAX_TEMPLATES = 100


def test_series_and_templates_past_the_caps_are_refused_counted_and_bounded(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    report = run(
        kafka.bootstrap,
        tmp_path,
        series=30_000,
        templates=20_000,
        steady=10,
        log_services=20,
        max_series=MAX_SERIES,
        max_templates=MAX_TEMPLATES,
    )
    said = "\n".join(report.lines())
    assert report.worker_running, said
    assert report.series_tracked == MAX_SERIES, said
    # the 10 steady series came first; every later new series past the cap is refused
    assert report.series_rejected == 30_000 - (MAX_SERIES - 10), said
    # 1,000 distinct lines per service: the first 100 make templates, the rest overflow
    assert report.lines_unmined == {"template_cap": 20 * (1_000 - MAX_TEMPLATES), "service_cap": 0}
    assert report.log_services_tracked == 21, said  # the 20 noisy ones and steady-logs
    # the bound documented in docs/operations.md
    assert report.rss_peak_mb <= 450 + 9 * MAX_SERIES / 1000, said
    # the series it already had are still watched
    assert report.fault_detected, said
