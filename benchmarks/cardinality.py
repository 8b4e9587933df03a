"""A cardinality attack on one worker: memory stays bounded, refusals are counted, and the
series it already had keep being watched.

``python -m benchmarks.cardinality`` runs a worker on the local broker (started if needed)
and sends, in order:

1. **warm-up**: ``--steady`` regular series (``steady-<i>/cpu``, Gaussian noise around 50,
   one point every 10 s for 300 points) and a log stream of a few templates;
2. **the attack**: ``--series`` distinct series of one point each (batches of 1,000 per
   message) and ``--templates`` distinct log lines (random words of random lengths, spread over
   ``--log-services`` services), while the regular series go on;
3. **a fault**: ``steady-0`` jumps from 50 to 100 for 10 points.

The worker's RSS is sampled every second and ``/health`` is polled to find the longest
stall of its web loop. The report gives the series sent, tracked and refused
(``aiops_series_rejected_total``), the log lines put in no template of their own
(``aiops_log_lines_unmined_total``), RSS before, at peak and after the attack, how long
the worker took to drain the attack, and whether the fault on ``steady-0`` was reported
as an anomaly (read from the anomalies topic). The caps are the worker's settings
(``--max-series`` sets ``detection.metrics.max_series``, ``--max-templates``
``detection.logs.miner.max_templates``).

Example::

    python -m benchmarks.cardinality                                   # 1,000,000 / 200,000
    python -m benchmarks.cardinality --series 50000 --templates 20000 --max-series 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.e2e_kafka import WorkerUnderTest, delete_topics_with_prefix, ensure_broker

STEP_S = 10.0
WARM_POINTS = 300
FAULT_POINTS = 10
BATCH = 1000
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(_LETTERS, k=rng.randint(3, 9)))


@dataclass
class CardinalityReport:
    """What the run measured."""

    series_sent: int = 0
    templates_sent: int = 0
    series_tracked: float = 0
    series_rejected: float = 0
    log_services_tracked: float = 0
    lines_unmined: dict[str, float] = field(default_factory=dict)
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_after_mb: float = 0.0
    attack_s: float = 0.0
    drain_s: float = 0.0
    longest_stall_s: float = 0.0
    fault_detected: bool = False
    worker_running: bool = False

    def lines(self) -> list[str]:
        unmined = ", ".join(f"{k} {int(v):,}" for k, v in sorted(self.lines_unmined.items()))
        return [
            f"series sent {self.series_sent:,}: tracked {int(self.series_tracked):,}, "
            f"refused {int(self.series_rejected):,} (aiops_series_rejected_total)",
            f"log lines of distinct templates sent {self.templates_sent:,}: "
            f"services tracked {int(self.log_services_tracked):,}, "
            f"lines in no template of their own: {unmined or 'none'}",
            f"RSS {self.rss_before_mb:.0f} MB before, {self.rss_peak_mb:.0f} MB at peak, "
            f"{self.rss_after_mb:.0f} MB after",
            f"attack produced in {self.attack_s:.1f} s, drained {self.drain_s:.1f} s after it; "
            f"longest /health stall {self.longest_stall_s:.2f} s",
            f"fault on steady-0 after the attack: "
            f"{'reported' if self.fault_detected else 'NOT reported'}; "
            f"worker {'running' if self.worker_running else 'NOT running'}",
        ]


def _steady(i: int, n: int, t: float, rng: random.Random, value: float | None = None) -> bytes:
    return orjson.dumps(
        {
            "timestamp": t,
            "service": f"steady-{i}",
            "metric": "cpu",
            "value": value if value is not None else rng.gauss(50.0, 1.0),
        }
    )


def _attack_batches(n: int, t: float, rng: random.Random) -> Iterator[bytes]:
    for start in range(0, n, BATCH):
        yield orjson.dumps(
            [
                {
                    "timestamp": t,
                    "service": f"attack-{k % 5000}",
                    "metric": f"m{k}",
                    "value": rng.random(),
                    "labels": {"pod": f"p{k}"},
                }
                for k in range(start, min(n, start + BATCH))
            ]
        )


def _template_batches(n: int, services: int, t: float, rng: random.Random) -> Iterator[bytes]:
    for start in range(0, n, BATCH):
        yield orjson.dumps(
            [
                {
                    "timestamp": t,
                    "service": f"noisy-{k % services}",
                    # random words of random lengths: nothing for the miner to merge
                    "message": " ".join(_word(rng) for _ in range(rng.randint(3, 12))),
                }
                for k in range(start, min(n, start + BATCH))
            ]
        )


class _Sampler(threading.Thread):
    """RSS every second and the longest gap between two answers of ``/health``."""

    def __init__(self, worker: WorkerUnderTest, rss: Callable[[], int]) -> None:
        super().__init__(daemon=True)
        self.worker, self.rss = worker, rss
        self.peak = 0
        self.longest_stall = 0.0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            began = time.monotonic()
            url = f"http://127.0.0.1:{self.worker.web_port}/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=120):
                pass
            self.longest_stall = max(self.longest_stall, time.monotonic() - began)
            self.peak = max(self.peak, self.rss())
            self.stop_event.wait(1.0)


async def _produce(bootstrap: str, topic: str, values: Iterator[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=8 * 1_048_576, linger_ms=20
    )
    await producer.start()
    try:
        pending = []
        for value in values:
            pending.append(await producer.send(topic, value))
            if len(pending) >= 200:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _anomaly_services(bootstrap: str, topic: str) -> set[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    services: set[str] = set()
    try:
        idle = 0
        while idle < 4:
            batch = await consumer.getmany(timeout_ms=500)
            records = [r for rs in batch.values() for r in rs]
            idle = 0 if records else idle + 1
            for r in records:
                services.add(str(orjson.loads(r.value).get("service")))
    finally:
        await consumer.stop()
    return services


def run(
    bootstrap: str,
    workdir: Path,
    *,
    series: int,
    templates: int,
    steady: int = 10,
    log_services: int = 20,
    max_series: int | None = None,
    max_templates: int | None = None,
    seed: int = 1,
) -> CardinalityReport:
    """Run the attack against a fresh worker on ``bootstrap`` (see the module)."""
    rng = random.Random(seed)
    report = CardinalityReport(series_sent=series, templates_sent=templates)
    overrides = {"AIOPS_WORKER__LOG_LEVEL": "warning"}
    if max_series is not None:
        overrides["AIOPS_DETECTION__METRICS__MAX_SERIES"] = str(max_series)
    if max_templates is not None:
        overrides["AIOPS_DETECTION__LOGS__MINER__MAX_TEMPLATES"] = str(max_templates)
    prefix = f"card-{int(time.time() * 1000)}"
    worker = WorkerUnderTest(bootstrap, prefix, workdir, overrides)
    probe = worker.start()
    sampler = _Sampler(worker, probe.rss_bytes)
    sampler.start()
    metrics, logs = worker.topic("metrics"), worker.topic("logs")
    t0 = time.time() - 2 * WARM_POINTS * STEP_S

    def counter(name: str, *labels: tuple[str, str]) -> float:
        return worker.counter(name, list(labels))

    def wait_accepted(metric_events: int, log_events: int, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # a busy worker may answer late
                if (
                    counter("aiops_events_accepted_total", ("topic", metrics)) >= metric_events
                    and counter("aiops_events_accepted_total", ("topic", logs)) >= log_events
                ):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the worker did not drain in {timeout:.0f} s:\n{worker.log_tail()}")

    try:
        warm = [
            _steady(i, steady, t0 + p * STEP_S, rng)
            for p in range(WARM_POINTS)
            for i in range(steady)
        ]
        warm_logs = [
            orjson.dumps(
                {"timestamp": t0 + p * STEP_S, "service": "steady-logs", "message": f"served {p}"}
            )
            for p in range(WARM_POINTS)
        ]
        asyncio.run(_produce(bootstrap, metrics, iter(warm)))
        asyncio.run(_produce(bootstrap, logs, iter(warm_logs)))
        wait_accepted(len(warm), len(warm_logs))
        time.sleep(2)
        report.rss_before_mb = probe.rss_bytes() / 1e6

        t_attack = t0 + WARM_POINTS * STEP_S
        began = time.monotonic()

        def attack_metrics() -> Iterator[bytes]:
            point = WARM_POINTS
            for n, batch in enumerate(_attack_batches(series, t_attack, rng)):
                yield batch
                if n % 20 == 19:  # the regular series go on during the attack
                    for i in range(steady):
                        yield _steady(i, steady, t0 + point * STEP_S, rng)
                    point += 1

        sent_metrics = [0]

        def counted(values: Iterator[bytes]) -> Iterator[bytes]:
            for value in values:
                parsed = orjson.loads(value)
                sent_metrics[0] += len(parsed) if isinstance(parsed, list) else 1
                yield value

        threads = [
            threading.Thread(
                target=lambda: asyncio.run(_produce(bootstrap, metrics, counted(attack_metrics())))
            ),
            threading.Thread(
                target=lambda: asyncio.run(
                    _produce(
                        bootstrap, logs, _template_batches(templates, log_services, t_attack, rng)
                    )
                )
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report.attack_s = time.monotonic() - began
        drained_from = time.monotonic()
        wait_accepted(len(warm) + sent_metrics[0], len(warm_logs) + templates)
        report.drain_s = time.monotonic() - drained_from

        point = WARM_POINTS + series // BATCH // 20 + 1
        fault = [
            _steady(i, steady, t0 + (point + p) * STEP_S, rng, 100.0 if i == 0 else None)
            for p in range(FAULT_POINTS)
            for i in range(steady)
        ]
        asyncio.run(_produce(bootstrap, metrics, iter(fault)))
        wait_accepted(len(warm) + sent_metrics[0] + len(fault), len(warm_logs) + templates)
        time.sleep(3)
        report.fault_detected = "steady-0" in asyncio.run(
            _anomaly_services(bootstrap, worker.topic("anomalies"))
        )
        report.series_tracked = counter("aiops_series_tracked")
        report.series_rejected = counter("aiops_series_rejected_total")
        report.log_services_tracked = counter("aiops_log_services_tracked")
        report.lines_unmined = {
            cause: counter("aiops_log_lines_unmined_total", ("cause", cause))
            for cause in ("template_cap", "service_cap")
        }
        report.rss_after_mb = probe.rss_bytes() / 1e6
        report.worker_running = worker.proc is not None and worker.proc.poll() is None
    finally:
        sampler.stop_event.set()
        sampler.join(timeout=5)
        report.rss_peak_mb = sampler.peak / 1e6
        report.longest_stall_s = sampler.longest_stall
        worker.stop()
        asyncio.run(delete_topics_with_prefix(bootstrap, prefix))
    return report


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cardinality", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--templates", type=int, default=200_000)
    parser.add_argument("--steady", type=int, default=10)
    parser.add_argument("--log-services", type=int, default=20)
    parser.add_argument("--max-series", type=int, default=None, help="default: the worker's")
    parser.add_argument("--max-templates", type=int, default=None, help="default: the worker's")
    args = parser.parse_args(argv)
    local = ensure_broker(args.bootstrap)
    try:
        with tempfile.TemporaryDirectory(prefix="aiops-cardinality-") as tmp:
            report = run(
                args.bootstrap,
                Path(tmp),
                series=args.series,
                templates=args.templates,
                steady=args.steady,
                log_services=args.log_services,
                max_series=args.max_series,
                max_templates=args.max_templates,
            )
    finally:
        if local is not None:
            local.down()
    for line in report.lines():
        say(line)
    return 0 if report.fault_detected and report.worker_running else 1


if __name__ == "__main__":
    sys.exit(main())
