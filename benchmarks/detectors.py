"""Speed and memory of the metric detectors alone: ``python -m benchmarks.detectors``.

Every registered detector gets the same generated series (a daily wave with noise, a weekly
swell and occasional spikes, one point every five minutes). Reported per detector: the
microseconds per point of ``score_one`` + ``learn_one``, the bytes of its persisted state
(what :class:`~detectors.metric.MetricMonitor` checkpoints per series, header included),
and, for the default, the cost per point of the whole monitor (hysteresis, records): one
event at a time (``process``), and in batches of 500 events over 1,000 series
(``process_many``, as the worker runs it; the series are the same wave with other seeds).
A warm-up point first loads the compiled code of the default detector.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Sequence

from detectors.events import MetricEvent
from detectors.metric import MetricDetectionConfig, MetricMonitor, make_detector, warm_up
from detectors.metric.base import registered_detectors
from detectors.metric.state import dump_state


def synthetic_series(n: int, seed: int = 1) -> list[tuple[float, float]]:
    """``(timestamp, value)`` pairs at 5-minute steps, with spikes on 0.2% of points."""
    rng = random.Random(seed)
    out = []
    start = 1_700_000_000.0
    for i in range(n):
        t = start + 300.0 * i
        day = math.sin(2 * math.pi * (t % 86400.0) / 86400.0)
        week = math.sin(2 * math.pi * (t % 604800.0) / 604800.0)
        x = 100.0 + 20.0 * day + 5.0 * week + rng.gauss(0.0, 2.0)
        if rng.random() < 0.002:
            x += rng.choice((-1, 1)) * rng.uniform(20.0, 60.0)
        out.append((t, x))
    return out


def bench_detector(name: str, points: Sequence[tuple[float, float]]) -> tuple[float, int]:
    """Microseconds per point and state bytes after the series."""
    det = make_detector(name)
    start = time.perf_counter()
    for t, x in points:
        det.score_one(x, t)
        det.learn_one(x, t)
    elapsed = time.perf_counter() - start
    return 1e6 * elapsed / len(points), len(dump_state(det))


def bench_monitor(points: Sequence[tuple[float, float]]) -> tuple[float, int]:
    """Microseconds per point of the default monitor and its per-series checkpoint bytes."""
    monitor = MetricMonitor(MetricDetectionConfig())
    events = [MetricEvent(t, "svc", "latency_ms", x) for t, x in points]
    start = time.perf_counter()
    for event in events:
        monitor.process(event)
    elapsed = time.perf_counter() - start
    [(_, state)] = monitor.dirty_states()
    return 1e6 * elapsed / len(points), len(state)


def bench_monitor_batched(
    points: Sequence[tuple[float, float]], series: int = 1000, batch: int = 500
) -> float:
    """Microseconds per point of the default monitor fed batches over many series."""
    per_series = max(1, len(points) // series)
    waves = [synthetic_series(per_series, seed=s) for s in range(series)]
    events = [
        MetricEvent(t, f"svc-{s % 50}", f"m{s}", x)
        for i in range(per_series)
        for s, wave in enumerate(waves)
        for t, x in [wave[i]]
    ]
    monitor = MetricMonitor(MetricDetectionConfig())
    start = time.perf_counter()
    for at in range(0, len(events), batch):
        monitor.process_many(events[at : at + batch])
    return 1e6 * (time.perf_counter() - start) / len(events)


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per detector."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detectors", description=__doc__)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--detector", action="append", help="only these (default: all)")
    args = parser.parse_args(argv)
    points = synthetic_series(args.points)
    warm_up()
    default = MetricDetectionConfig().default_detector
    names = args.detector or registered_detectors()
    print(f"{args.points} points per detector")
    print(f"{'detector':<20} {'us/point':>9} {'state bytes':>12}")
    for name in names:
        us, size = bench_detector(name, points)
        mark = "  (default)" if name == default else ""
        print(f"{name:<20} {us:9.1f} {size:12d}{mark}")
    us, size = bench_monitor(points)
    print(f"{'monitor (default)':<20} {us:9.1f} {size:12d}  series checkpoint, whole monitor")
    us = bench_monitor_batched(points)
    print(f"{'monitor, batches':<20} {us:9.1f} {'':12}  500 events per batch, 1,000 series")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
