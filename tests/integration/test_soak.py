"""The soak, short: two rounds of the demo scenario a minute each, sampled as it goes
(``python -m benchmarks.soak --minutes 30`` is the long run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak import run
from tests.kafka_harness import BrokerHandle

pytestmark = pytest.mark.kafka


def test_two_faults_under_steady_load_two_incidents_and_nothing_left_behind(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    report = run(kafka.bootstrap, tmp_path, minutes=2, fault_every_min=1, sample_s=5, settle_s=40)
    said = "\n".join(report.lines())
    assert report.worker_running, said
    first, last = report.samples[0], report.samples[-1]
    assert last.opened == last.resolved == report.rounds == 2, said  # one incident per fault
    assert last.open_incidents == 0 and last.lag == 0, said
    assert last.fds <= first.fds + 10, said  # no descriptor left open per round
    plot = tmp_path / "soak.png"
    report.plot(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
