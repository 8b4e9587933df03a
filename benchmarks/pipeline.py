"""CPU per event and memory per series of the worker's metric path, without Kafka:
``python -m benchmarks.pipeline [--series 1000,10000,100000] [--points N]``.

The pure stages are built as :class:`streams.stages.Pipeline` builds them with the default
settings: a :class:`~detectors.metric.MetricMonitor`, the chart
:class:`~notify.chart.SeriesWindow` and the :class:`~rca.engine.IncidentEngine`, which
gets every raw sample (``on_metric``), every anomaly, and a ``tick`` per event-time step.
Events are Gaussian noise around a per-series level (the series of the end-to-end
benchmark, :mod:`benchmarks.e2e_load`), round robin over the series, 10 s apart.

Every figure comes from a fresh process, so that its resident memory starts clean: the
whole path (``all``), then each component alone (``detector``: the monitor; ``engine``:
the engine's raw-sample rings; ``chart``: the chart window). Reported per run: process CPU
time of the feed only (events are made beforehand, one round at a time) per event, and
the growth of the resident memory (``VmRSS``) per series; for the whole path, also the
cost of one checkpoint of every series (``MetricMonitor.dirty_states``, which the worker
does every ``checkpoint_interval_s``) and its bytes per series.

Timings are noisy on a shared machine: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from benchmarks.e2e_load import START_TS, STEP_S, SeriesLayout, metric_events
from detectors.events import MetricEvent
from detectors.metric import MetricDetectionConfig, MetricMonitor
from notify.chart import SeriesWindow
from notify.config import ChartConfig
from rca.config import RcaConfig
from rca.engine import IncidentEngine

PARTS = ("all", "detector", "engine", "chart")


@dataclass(frozen=True, slots=True)
class Run:
    """What one run measured."""

    us_per_event: float
    rss_per_series: float
    checkpoint_us: float = 0.0
    checkpoint_bytes: float = 0.0
    anomalies: int = 0


BATCH = 500
"""Events per batch: the most records the worker's input agents get at once."""


class MetricPath:
    """The worker's metric path, as :class:`streams.stages.Pipeline` wires it; ``only``
    keeps one component (``detector``, ``engine`` or ``chart``)."""

    def __init__(self, only: str = "all") -> None:
        self.only = only
        self.metrics = MetricMonitor(MetricDetectionConfig())
        self.window = SeriesWindow(ChartConfig())
        self.engine = IncidentEngine(config=RcaConfig())
        self.anomalies = 0

    def feed(self, events: Sequence[MetricEvent], now: float) -> None:
        """One round: detect (in batches of ``BATCH`` events, as the worker gets them),
        remember for charts and ranking, then one engine step."""
        if self.only == "detector":
            for at in range(0, len(events), BATCH):
                self.metrics.process_many(events[at : at + BATCH])
        elif self.only == "engine":
            for event in events:
                self.engine.on_metric(event)
            self.engine.tick(now)
        elif self.only == "chart":
            for event in events:
                self.window.observe(event)
        else:
            for at in range(0, len(events), BATCH):
                batch = events[at : at + BATCH]
                found = self.metrics.process_many(batch)
                for event in batch:
                    self.window.observe(event)
                    self.engine.on_metric(event)
                for anomaly in found:
                    self.anomalies += 1
                    self.window.mark(anomaly)
                    self.engine.on_anomaly(anomaly)
            self.engine.tick(now)


def rounds(series: int, points: int) -> Iterator[tuple[list[MetricEvent], float]]:
    """One list of events per round (every series once), and its event time."""
    layout = SeriesLayout(series=series)
    raw = metric_events(layout, series * points)
    for r in range(points):
        batch = []
        for _ in range(series):
            e = next(raw)
            t, v = e["timestamp"], e["value"]
            assert isinstance(t, float) and isinstance(v, float)
            batch.append(MetricEvent(t, str(e["service"]), str(e["metric"]), v))
        yield batch, START_TS + STEP_S * r


def rss_bytes() -> int:
    """Resident set size of this process (``VmRSS``)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run(series: int, points: int, only: str) -> Run:
    """Feed ``points`` rounds to the path (or one component of it) and measure."""
    warm = MetricPath(only)  # load compiled code first, as the worker does at start-up
    for batch, now in rounds(2, 3):
        warm.feed(batch, now)
    del warm
    gc.collect()
    rss0 = rss_bytes()
    path = MetricPath(only)
    spent = 0.0
    for batch, now in rounds(series, points):
        start = time.process_time()
        path.feed(batch, now)
        spent += time.process_time() - start
        del batch
    gc.collect()
    rss1 = rss_bytes()
    ckpt_us = ckpt_bytes = 0.0
    if only == "all":
        start = time.process_time()
        states = path.metrics.dirty_states()
        ckpt_us = 1e6 * (time.process_time() - start) / series
        ckpt_bytes = sum(len(s) for _, s in states) / series
    return Run(
        us_per_event=1e6 * spent / (series * points),
        rss_per_series=(rss1 - rss0) / series,
        checkpoint_us=ckpt_us,
        checkpoint_bytes=ckpt_bytes,
        anomalies=path.anomalies,
    )


def measure(series: int, points: int, only: str) -> Run:
    """:func:`run` in a fresh interpreter."""
    cmd = [sys.executable, "-m", "benchmarks.pipeline", "--run", only]
    cmd += ["--series", str(series), "--points", str(points)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return Run(**json.loads(done.stdout))


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per series count and component."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    parser.add_argument("--series", default="1000,10000,100000", help="comma-separated counts")
    parser.add_argument("--points", type=int, default=30, help="points per series")
    parser.add_argument("--only", default=",".join(PARTS), help="components to run")
    parser.add_argument("--run", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    counts = [int(s) for s in args.series.split(",")]
    if args.run is not None:
        print(json.dumps(asdict(run(counts[0], args.points, args.run))))
        return 0
    print(f"{args.points} points per series, 10 s apart; RSS growth per series")
    print(f"{'series':>8} {'part':>9} {'us/event':>9} {'RSS B':>7} {'ckpt us':>8} {'ckpt B':>7}")
    for n in counts:
        for only in args.only.split(","):
            r = measure(n, args.points, only)
            ckpt = f" {r.checkpoint_us:8.1f} {r.checkpoint_bytes:7.0f}" if only == "all" else ""
            print(
                f"{n:8d} {only:>9} {r.us_per_event:9.2f} {r.rss_per_series:7.0f}{ckpt}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
