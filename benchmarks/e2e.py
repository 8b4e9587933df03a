"""End-to-end figures through the real broker: ``python -m benchmarks.e2e``.

Measured, each run with a fresh worker (``aiops worker`` subprocess) on its own topics:

* **throughput**: the input topic is filled first (so the producer is not the bottleneck),
  then the worker drains it; events/s and CPU seconds per event are taken between the first
  and the last poll of its ``aiops_events_accepted_total`` counter (CPU from
  ``/proc/<pid>/stat``), for 1 event per Kafka message and for JSON arrays of ``--batch``
  events per message, at each ``--series`` count; "warm" counts only from the first poll
  after every series has had its first event (series creation excluded);
* the **naive pipeline** (``benchmarks.e2e_naive``: an aiokafka loop calling the same
  ``MetricMonitor.process``) drains the same topic, measured over the same window;
* **memory per series**: growth of the worker's resident memory (``VmRSS``) from before its
  first event to after the largest run, once its checkpoint interval has passed (detector
  state in memory plus its checkpoint copy in the table), divided by the series count;
* **log lines/s** of the worker, both message shapes;
* **latency** produce -> anomaly and produce -> incident at a steady paced rate
  (``benchmarks.e2e_latency``).

``--quick`` runs smaller loads and only batched messages at 100,000 series (about two
minutes); the default takes about six minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks.e2e_kafka import (
    BenchmarkError,
    ProcessSample,
    WorkerUnderTest,
    create_topics,
    delete_topics_with_prefix,
    ensure_broker,
    produce_all,
)
from benchmarks.e2e_latency import LatencyPlan, LatencyRecord, run_latency
from benchmarks.e2e_load import SeriesLayout, encode, log_events, metric_events
from detectors.metric import MetricDetectionConfig
from rca.config import CorrelationConfig
from streams.config import Settings

INPUT_PARTITIONS = 4
POLL_S = 0.25
LATENCY_SERVICES = 10
QUICK_BATCHED_ONLY = 100_000
STALL_S = 60.0


@dataclass(frozen=True, slots=True)
class Drain:
    """How one consumer drained a pre-filled topic.

    ``unresponsive_s`` is the longest gap between two answered ``/metrics`` polls (one
    every 0.25 s, 5 s timeout): how long the worker's event loop was at most busy at once.
    """

    events: int
    seconds: float
    cpu_s: float
    rss_before: int
    rss_after: int
    unresponsive_s: float = 0.0
    warm_events: int = 0  # after every series had its first event (no series creation)
    warm_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def warm_rate(self) -> float:
        return self.warm_events / self.warm_seconds if self.warm_seconds > 0 else float("nan")

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_s / self.events if self.events else float("nan")

    @property
    def cpu_share(self) -> float:
        """Cores the process used on average during the window."""
        return self.cpu_s / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True, slots=True)
class Row:
    what: str
    series: int
    shape: str
    total: int
    worker: Drain
    naive: Drain | None


def drain_with_worker(
    *,
    bootstrap: str,
    prefix: str,
    workdir: Path,
    role: str,
    topic: str,
    expect: int,
    hold_s: float,
    warm_after: int = 0,
    settings: Mapping[str, str] | None = None,
) -> Drain:
    """Start a worker on ``topic`` (as its ``role`` input) and time how it drains it; the
    warm rate counts from the first poll after ``warm_after`` events were accepted."""
    worker = WorkerUnderTest(
        bootstrap,
        prefix,
        workdir,
        overrides={**(settings or {}), f"AIOPS_TOPICS__{role.upper()}": topic},
    )
    probe = worker.start()
    labels = [("topic", topic)]
    try:
        idle: ProcessSample = probe.sample()
        first: tuple[ProcessSample, float] | None = None
        warm: tuple[ProcessSample, float] | None = None
        last: tuple[ProcessSample, float] = (idle, 0.0)
        progress_at = time.monotonic()
        answered_at = time.monotonic()
        longest_block = 0.0
        while True:
            try:
                accepted = worker.counter("aiops_events_accepted_total", labels)
            except OSError:  # the event loop did not answer within the timeout
                accepted = last[1]
            else:
                longest_block = max(longest_block, time.monotonic() - answered_at)
                answered_at = time.monotonic()
            sample = probe.sample()
            if accepted == 0:
                idle = sample
            elif first is None:
                first = (sample, accepted)
            if warm is None and warm_after and accepted >= warm_after:
                warm = (sample, accepted)
            if accepted > last[1]:
                progress_at = time.monotonic()
            last = (sample, accepted)
            if accepted >= expect:
                break
            if time.monotonic() - progress_at > STALL_S:
                raise BenchmarkError(
                    f"worker stalled at {accepted:.0f}/{expect} events:\n{worker.log_tail()}"
                )
            time.sleep(POLL_S)
        if hold_s:
            time.sleep(hold_s)  # the checkpoint interval: states land in the table too
        end = probe.sample()
    finally:
        worker.stop()
    start_sample, start_count = first or last
    end_sample, end_count = last
    warm_sample, warm_count = warm or last
    return Drain(
        events=int(end_count - start_count),
        seconds=end_sample.at - start_sample.at,
        cpu_s=end_sample.cpu_s - start_sample.cpu_s,
        rss_before=idle.rss_bytes,
        rss_after=end.rss_bytes,
        unresponsive_s=longest_block,
        warm_events=int(end_count - warm_count),
        warm_seconds=end_sample.at - warm_sample.at,
    )


def drain_naive(*, bootstrap: str, prefix: str, topic: str, expect: int) -> Drain:
    """Run the naive pipeline on ``topic`` in its own process."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.e2e_naive",
            f"--bootstrap={bootstrap}",
            f"--topic={topic}",
            f"--group={prefix}.naive",
            f"--anomalies={prefix}.naive-anomalies",
            f"--expect={expect}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        raise BenchmarkError(f"naive pipeline failed:\n{out.stderr[-3000:]}")
    figures = orjson.loads(out.stdout.strip().splitlines()[-1])
    return Drain(
        events=int(figures["window_events"]),
        seconds=float(figures["window_s"]),
        cpu_s=float(figures["window_cpu_s"]),
        rss_before=int(figures["rss_start"]),
        rss_after=int(figures["rss_end"]),
    )


def fill(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    asyncio.run(create_topics(bootstrap, {topic: INPUT_PARTITIONS}))
    _, seconds = asyncio.run(produce_all(bootstrap, topic, records))
    return seconds


def say(text: str) -> None:
    print(text, flush=True)


def throughput_rows(args: argparse.Namespace, run: str, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    largest = max(args.series)
    for series in args.series:
        total = max(args.events, series * args.min_points)
        layout = SeriesLayout(series=series)
        shapes = [("1/msg", 1), (f"{args.batch}/msg", args.batch)]
        if args.quick and series >= QUICK_BATCHED_ONLY:
            shapes = shapes[1:]  # one event per message at this size takes minutes
        for shape, batch in shapes:
            topic = f"{run}.in-m{series}-b{batch}"
            records = encode(metric_events(layout, total), batch)
            seconds = fill(args.bootstrap, topic, records)
            say(f"  metrics {series} series, {shape}: {total} events in {len(records)} messages")
            say(f"    produced in {seconds:.1f}s; worker draining ...")
            hold = args.hold_s if series == largest and batch == shapes[0][1] else 0.0
            worker = drain_with_worker(
                bootstrap=args.bootstrap,
                prefix=f"{run}.w-m{series}-b{batch}",
                workdir=workdir,
                role="metrics",
                topic=topic,
                expect=total,
                hold_s=hold,
                warm_after=series,
                settings=worker_settings(args),
            )
            say(f"    worker {worker.rate:,.0f} ev/s; naive pipeline draining ...")
            naive = (
                None
                if args.no_naive
                else drain_naive(
                    bootstrap=args.bootstrap,
                    prefix=f"{run}.n-m{series}-b{batch}",
                    topic=topic,
                    expect=total,
                )
            )
            if naive is not None:
                say(f"    naive {naive.rate:,.0f} ev/s")
            rows.append(Row("metrics", series, shape, total, worker, naive))
    for shape, batch in (("1/msg", 1), (f"{args.batch}/msg", args.batch)):
        topic = f"{run}.in-l-b{batch}"
        lines = args.log_events if batch > 1 else args.log_events // 4
        records = encode(log_events(args.log_services, lines), batch)
        fill(args.bootstrap, topic, records)
        say(f"  logs {args.log_services} services, {shape}: {lines} lines; draining ...")
        worker = drain_with_worker(
            bootstrap=args.bootstrap,
            prefix=f"{run}.w-l-b{batch}",
            workdir=workdir,
            role="logs",
            topic=topic,
            expect=lines,
            hold_s=0.0,
            settings=worker_settings(args),
        )
        say(f"    worker {worker.rate:,.0f} lines/s")
        rows.append(Row("logs", args.log_services, shape, lines, worker, None))
    return rows


def worker_settings(args: argparse.Namespace) -> dict[str, str]:
    """Settings of every worker under test (``--detector``: its default metric detector)."""
    if args.detector is None:
        return {}
    return {"AIOPS_DETECTION__METRICS__DEFAULT_DETECTOR": args.detector}


def latency(args: argparse.Namespace, run: str, workdir: Path) -> LatencyRecord:
    config = MetricDetectionConfig()
    layout = SeriesLayout(series=args.latency_series, services=LATENCY_SERVICES)
    per_series_s = layout.series / args.rate
    warmup_s = config.warmup_points * per_series_s + 5.0
    confirm_s = CorrelationConfig().confirm_s
    plan = LatencyPlan(
        rate=args.rate,
        layout=layout,
        batch=args.latency_batch,
        warmup_s=warmup_s,
        spikes=args.spikes,
        spike_every_s=0.5,
        fault_services=(1, 4, 7),
        fault_metrics=3,
        fault_at_s=warmup_s + 2.0,
        duration_s=max(warmup_s + 0.5 * args.spikes + 2.0, warmup_s + 2.0 + confirm_s + 15.0),
    )
    prefix = f"{run}.lat"
    worker = WorkerUnderTest(args.bootstrap, prefix, workdir, overrides=worker_settings(args))
    asyncio.run(
        create_topics(
            args.bootstrap,
            {
                worker.topic("metrics"): INPUT_PARTITIONS,
                worker.topic("anomalies"): 1,
                worker.topic("incidents"): INPUT_PARTITIONS,
            },
        )
    )
    say(
        f"  latency: {args.rate:,} events/s over {layout.series} series, "
        f"{plan.batch} event(s)/msg, {plan.duration_s:.0f}s (warm-up {warmup_s:.0f}s) ..."
    )
    probe = worker.start()
    try:
        time.sleep(3.0)  # partitions assigned before the clock starts
        before = probe.sample()
        record = asyncio.run(
            run_latency(
                bootstrap=args.bootstrap,
                metrics_topic=worker.topic("metrics"),
                anomalies_topic=worker.topic("anomalies"),
                incidents_topic=worker.topic("incidents"),
                plan=plan,
                classify_points=config.hysteresis.classify_points,
            )
        )
        after = probe.sample()
        accepted = worker.counter(
            "aiops_events_accepted_total", [("topic", worker.topic("metrics"))]
        )
    finally:
        worker.stop()
    say(
        f"    sent {record.sent:,} in {record.send_s:.1f}s; worker accepted {accepted:,.0f}, "
        f"used {(after.cpu_s - before.cpu_s) / (after.at - before.at):.2f} cores"
    )
    record.accepted = int(accepted)
    return record


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(rows: list[Row], lat: LatencyRecord | None, args: argparse.Namespace) -> None:
    if rows:
        throughput_table(rows, args)
    if lat is not None:
        latency_table(lat, args)


def warm_rate(row: Row) -> str:
    """Events/s once every series exists (metrics only), or ``-``."""
    rate = row.worker.warm_rate
    return "-" if row.what != "metrics" or math.isnan(rate) else f"{rate:,.0f}"


def throughput_table(rows: list[Row], args: argparse.Namespace) -> None:
    say("")
    say("Throughput (one worker, input pre-filled; CPU = worker process user+sys)")
    head = (
        f"{'input':8} {'series':>7} {'shape':>8} {'events':>8} {'worker ev/s':>12} "
        f"{'warm ev/s':>9} {'cpu us/ev':>9} {'cores':>5} {'stall s':>7} {'naive ev/s':>11} "
        f"{'naive us/ev':>11} {'ratio':>6}"
    )
    say(head)
    say("-" * len(head))
    for r in rows:
        naive = (
            f"{r.naive.rate:>11,.0f} {r.naive.cpu_us_per_event:>11.1f} "
            f"{r.worker.rate / r.naive.rate:>5.2f}x"
            if r.naive
            else f"{'-':>11} {'-':>11} {'-':>6}"
        )
        say(
            f"{r.what:8} {r.series:>7,} {r.shape:>8} {r.total:>8,} {r.worker.rate:>12,.0f} "
            f"{warm_rate(r):>9} {r.worker.cpu_us_per_event:>9.1f} {r.worker.cpu_share:>5.2f} "
            f"{r.worker.unresponsive_s:>7.1f} {naive}"
        )
    mem_rows = [r for r in rows if r.what == "metrics" and r.series == max(args.series)]
    if mem_rows:
        r = mem_rows[0]
        grown = r.worker.rss_after - r.worker.rss_before
        say("")
        say(
            f"Memory at {r.series:,} series ({r.shape}, {r.total // r.series} points each): worker "
            f"RSS {r.worker.rss_before / 2**20:,.0f} -> {r.worker.rss_after / 2**20:,.0f} MiB "
            f"after {args.hold_s:.0f}s, {grown / r.series / 1024:.1f} KiB/series"
        )
        if r.naive:
            naive_grown = r.naive.rss_after - r.naive.rss_before
            say(
                f"  naive pipeline: {naive_grown / r.series / 1024:.1f} KiB/series "
                "(detector state only: no checkpoint copy)"
            )


def latency_table(lat: LatencyRecord, args: argparse.Namespace) -> None:
    say("")
    say(
        f"Latency at {args.rate:,} events/s ({args.latency_series:,} series, "
        f"{args.latency_batch} event(s)/msg), seconds"
    )
    if lat.sent < 0.95 * lat.planned:
        say(
            f"  the producer could not keep the pace: {lat.sent:,} of {lat.planned:,} events "
            "sent (broker unavailable or machine overloaded); the figures below are not valid"
        )
    if lat.accepted < 0.99 * lat.sent:
        say(
            f"  the worker fell behind: it accepted {lat.accepted:,} of {lat.sent:,} events "
            "sent, so latency grows without bound at this rate"
        )
    for name, values, sent in (
        ("produce spike -> anomaly", lat.spike_onset, lat.spikes_sent),
        ("produce deciding point -> anomaly", lat.spike_decision, lat.spikes_sent),
        ("  of which until the worker sent it", lat.decision_to_published, lat.spikes_sent),
        ("produce fault start -> incident", lat.incident, lat.faults_sent),
    ):
        mean = statistics.fmean(values) if values else float("nan")
        say(
            f"  {name:34} p50 {pct(values, 0.5):7.3f}  p99 {pct(values, 0.99):7.3f}  "
            f"mean {mean:7.3f}  ({len(values)}/{sent} seen)"
        )
    say(
        f"  (incident latency includes the engine's confirmation wait, "
        f"confirm_s={CorrelationConfig().confirm_s:.0f}s)"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--series", default=None, help="comma-separated, e.g. 1000,10000,100000")
    parser.add_argument("--events", type=int, default=None, help="events per throughput run")
    parser.add_argument("--batch", type=int, default=100, help="events per batched message")
    parser.add_argument("--quick", action="store_true", help="smaller loads, a few minutes")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency run")
    parser.add_argument("--only-latency", action="store_true", help="only the latency run")
    parser.add_argument("--rate", type=int, default=10_000, help="latency run: events/s")
    parser.add_argument("--latency-series", type=int, default=1000)
    parser.add_argument("--latency-batch", type=int, default=50, help="latency run: events/msg")
    parser.add_argument("--spikes", type=int, default=None)
    parser.add_argument("--workdir", default=None)
    parser.add_argument(
        "--detector",
        default=None,
        help="the workers' default metric detector (the naive pipeline keeps the default)",
    )
    args = parser.parse_args(argv)
    args.series = [int(s) for s in (args.series or "1000,10000,100000").split(",")]
    if args.events is None:
        args.events = 60_000 if args.quick else 300_000
    args.min_points = 2 if args.quick else 3
    args.log_events = 50_000 if args.quick else 200_000
    args.log_services = 50
    args.hold_s = Settings().detection.checkpoint_interval_s + 1.0
    if args.spikes is None:
        args.spikes = 40 if args.quick else 100
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    local = ensure_broker(args.bootstrap)
    run = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    say(f"run {run} on {args.bootstrap}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        rows: list[Row] = []
        lat = None
        try:
            if not args.only_latency:
                rows = throughput_rows(args, run, workdir)
            if not args.no_latency:
                lat = latency(args, run, workdir)
        finally:
            asyncio.run(delete_topics_with_prefix(args.bootstrap, run))
            if local is not None:
                local.down()
    report(rows, lat, args)
    say(f"\n(total {time.monotonic() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
