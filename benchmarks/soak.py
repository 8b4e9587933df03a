"""A soak: one worker under steady load with a fault every few minutes, sampled as it goes.

``python -m benchmarks.soak --minutes 30`` runs a worker on the local broker (started if
needed) and feeds it the demo scenario (:mod:`streams.scenario`: five services, four hours
of event time, one fault on ``payments``) over and over, each round paced to last
``--fault-every`` minutes of wall time and starting where the previous one ended in event
time. Every ``--sample-s`` seconds it samples the worker: RSS, open file descriptors,
consumer lag, open incidents, events accepted, incidents opened and resolved, and how long
``/health`` took to answer (a stalled event loop answers late). It prints the samples as a
table, the slope of RSS and of file descriptors over the second half of the run (a store
that grows without bound shows there), and writes a PNG plot (``--plot``).

Example::

    python -m benchmarks.soak --minutes 30                  # six rounds, six faults
    python -m benchmarks.soak --minutes 4 --fault-every 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaProducer

from benchmarks.e2e_kafka import WorkerUnderTest, delete_topics_with_prefix, ensure_broker
from streams.scenario import STEP_S, ScenarioShape, config_dir, generate

ROUND_S = ScenarioShape().total_steps * STEP_S
"""Event time of one round of the scenario."""


@dataclass(frozen=True, slots=True)
class Sample:
    """The worker at one moment of the soak."""

    t: float
    rss_mb: float
    fds: int
    lag: float
    open_incidents: float
    accepted: float
    opened: float
    resolved: float
    health_s: float


@dataclass
class SoakReport:
    """The samples, and what they say."""

    rounds: int
    samples: list[Sample] = field(default_factory=list)
    worker_running: bool = False

    def slope(self, values: list[float]) -> float:
        """Least-squares slope per hour over the second half of the samples."""
        half = self.samples[len(self.samples) // 2 :]
        if len(half) < 3:
            return float("nan")
        t = np.array([s.t for s in half]) / 3600.0
        y = np.array(values[len(self.samples) // 2 :], dtype=float)
        return float(np.polyfit(t, y, 1)[0])

    @property
    def rss_slope_mb_h(self) -> float:
        return self.slope([s.rss_mb for s in self.samples])

    @property
    def fd_slope_h(self) -> float:
        return self.slope([float(s.fds) for s in self.samples])

    def lines(self) -> list[str]:
        out = [
            "   t s   RSS MB   fds      lag   open   accepted   opened   resolved   /health s",
        ]
        for s in self.samples:
            out.append(
                f"{s.t:7.0f} {s.rss_mb:8.1f} {s.fds:5d} {s.lag:8.0f} {s.open_incidents:6.0f} "
                f"{s.accepted:10.0f} {s.opened:8.0f} {s.resolved:10.0f} {s.health_s:11.3f}"
            )
        last = self.samples[-1] if self.samples else None
        rss = [s.rss_mb for s in self.samples]
        if last is not None:
            out += [
                f"rounds (faults) sent: {self.rounds}; incidents opened {last.opened:.0f}, "
                f"resolved {last.resolved:.0f}; lag at the end {last.lag:.0f}",
                f"second half: RSS {self.rss_slope_mb_h:+.1f} MB/h, "
                f"file descriptors {self.fd_slope_h:+.1f}/h; "
                f"RSS {min(rss):.0f}..{max(rss):.0f} MB; "
                f"longest /health answer {max(s.health_s for s in self.samples):.2f} s",
                f"worker {'running' if self.worker_running else 'NOT running'}",
            ]
        return out

    def plot(self, path: Path) -> None:
        """RSS, descriptors, lag and open incidents against time, one panel each."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = [s.t / 60 for s in self.samples]
        panels = [
            ("RSS (MB)", [s.rss_mb for s in self.samples]),
            ("open file descriptors", [s.fds for s in self.samples]),
            ("consumer lag (messages)", [s.lag for s in self.samples]),
            ("open incidents", [s.open_incidents for s in self.samples]),
            ("/health answer (s)", [s.health_s for s in self.samples]),
        ]
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 10), sharex=True)
        for ax, (title, values) in zip(axes, panels, strict=True):
            ax.plot(t, values, color="#2a6fb0")
            ax.set_ylabel(title, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("minutes")
        fig.suptitle(f"aiops-stream soak: {self.rounds} rounds, one fault each")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)


def _feed(bootstrap: str, worker: WorkerUnderTest, rounds: int, round_wall_s: float) -> None:
    """The scenario ``rounds`` times, each paced over ``round_wall_s`` seconds."""
    start = time.time() - (rounds + 1) * ROUND_S  # event time stays in the past

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
        await producer.start()
        try:
            began = time.monotonic()
            for k in range(rounds):
                messages = generate(start + k * ROUND_S, seed=7 + k)
                for step, group in groupby(messages, key=lambda m: m.at):
                    for message in group:
                        topic = worker.topic(message.topic)
                        await producer.send(topic, message.value, key=message.key)
                    due = began + (k + (step - start - k * ROUND_S) / ROUND_S) * round_wall_s
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def run(
    bootstrap: str,
    workdir: Path,
    *,
    minutes: float,
    fault_every_min: float,
    sample_s: float = 10.0,
    settle_s: float = 60.0,
) -> SoakReport:
    """Run the soak against a fresh worker on ``bootstrap`` (see the module)."""
    rounds = max(1, round(minutes / fault_every_min))
    report = SoakReport(rounds)
    scenario = config_dir()
    prefix = f"soak-{int(time.time() * 1000)}"
    worker = WorkerUnderTest(
        bootstrap,
        prefix,
        workdir,
        {
            "AIOPS_WORKER__LOG_LEVEL": "warning",
            "AIOPS_INCIDENTS__TOPOLOGY_FILE": str(scenario / "topology.yaml"),
            "AIOPS_INCIDENTS__REMEDIATION_FILE": str(scenario / "remediation.yaml"),
        },
    )
    probe = worker.start()
    assert worker.proc is not None
    fd_dir = Path(f"/proc/{worker.proc.pid}/fd")
    began = time.monotonic()

    def sample() -> Sample:
        t0 = time.monotonic()
        try:
            url = f"http://127.0.0.1:{worker.web_port}/health"
            with urllib.request.urlopen(url, timeout=120):
                pass
        except OSError:
            pass
        health_s = time.monotonic() - t0

        def counter(name: str, *labels: tuple[str, str]) -> float:
            try:
                return worker.counter(name, list(labels))
            except OSError:
                return float("nan")

        return Sample(
            t=time.monotonic() - began,
            rss_mb=probe.rss_bytes() / 1e6,
            fds=len(os.listdir(fd_dir)),
            lag=counter("aiops_consumer_lag_messages"),
            open_incidents=counter("aiops_incidents_open"),
            accepted=counter("aiops_events_accepted_total"),
            opened=counter("aiops_incident_changes_total", ("state", "opened")),
            resolved=counter("aiops_incident_changes_total", ("state", "resolved")),
            health_s=health_s,
        )

    feeder = threading.Thread(
        target=_feed, args=(bootstrap, worker, rounds, fault_every_min * 60.0), daemon=True
    )
    try:
        feeder.start()
        while feeder.is_alive():
            report.samples.append(sample())
            feeder.join(timeout=sample_s)
        settle_until = time.monotonic() + settle_s  # the last round's incident resolves
        while time.monotonic() < settle_until:
            time.sleep(min(sample_s, max(0.0, settle_until - time.monotonic())))
            report.samples.append(sample())
        report.worker_running = worker.proc.poll() is None
    finally:
        worker.stop()
        asyncio.run(delete_topics_with_prefix(bootstrap, prefix))
    return report


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fault-every", type=float, default=5.0, help="minutes per round")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--plot", type=Path, default=Path("build/soak.png"))
    args = parser.parse_args(argv)
    local = ensure_broker(args.bootstrap)
    try:
        with tempfile.TemporaryDirectory(prefix="aiops-soak-") as tmp:
            report = run(
                args.bootstrap,
                Path(tmp),
                minutes=args.minutes,
                fault_every_min=args.fault_every,
                sample_s=args.sample_s,
            )
    finally:
        if local is not None:
            local.down()
    for line in report.lines():
        say(line)
    report.plot(args.plot)
    say(f"plot: {args.plot}")
    return 0 if report.worker_running else 1


if __name__ == "__main__":
    sys.exit(main())
