"""A generated multi-service fault, replayed by ``aiops demo`` and the end-to-end tests.

Five services (``frontend → checkout → payments → payments-db``, and ``catalogue`` beside
them) report cpu, memory, p99 latency, error ratio and request rate every 10 s, and log a
few lines each. After a long normal stretch, ``payments`` exhausts its connection pool:
its errors and latency jump, it logs a new error over and over, and the services that call
it slow down a little later. Then it recovers. Generated data, no licence attached.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import orjson

STEP_S = 10.0
SERVICES = ("frontend", "checkout", "payments", "payments-db", "catalogue")
ROOT_CAUSE = "payments"

# (cpu, memory_mb, latency_p99_ms, error_ratio, requests_per_s) in normal operation
_BASE = {
    "frontend": (0.35, 512.0, 120.0, 0.002, 220.0),
    "checkout": (0.30, 768.0, 95.0, 0.002, 60.0),
    "payments": (0.25, 640.0, 80.0, 0.001, 55.0),
    "payments-db": (0.40, 2048.0, 6.0, 0.0005, 300.0),
    "catalogue": (0.20, 384.0, 40.0, 0.001, 150.0),
}
_METRICS = ("cpu", "memory_mb", "latency_p99_ms", "error_ratio", "requests_per_s")
# How the fault moves each (service, metric): multiplier at full effect, delay after onset (s)
_FAULT = {
    ("payments", "error_ratio"): (60.0, 0.0),
    ("payments", "latency_p99_ms"): (11.0, 0.0),
    ("payments", "cpu"): (1.8, 10.0),
    ("checkout", "latency_p99_ms"): (7.0, 30.0),
    ("checkout", "error_ratio"): (25.0, 40.0),
    ("frontend", "latency_p99_ms"): (3.0, 60.0),
}
_NORMAL_LOGS = {
    "frontend": ["GET /cart 200 {ms}ms", "GET /product/{id} 200 {ms}ms"],
    "checkout": ["order {id} placed in {ms} ms", "cart {id} validated"],
    "payments": ["charge {id} authorised in {ms} ms", "refund {id} settled"],
    "payments-db": ["checkpoint complete: wrote {id} buffers", "autovacuum: table orders"],
    "catalogue": ["served {id} products in {ms} ms"],
}
_FAULT_LOGS = {
    "payments": (
        "error",
        "connection pool exhausted: waited 5000 ms for a connection to payments-db",
        0.0,
    ),
    "checkout": ("warning", "upstream payments timed out after 2000 ms (order {id})", 30.0),
}


@dataclass(frozen=True, slots=True)
class ScenarioShape:
    """Lengths of the scenario's phases, in steps of ``STEP_S`` seconds."""

    normal_steps: int = 1080  # 3 h
    fault_steps: int = 90  # 15 min
    after_steps: int = 270  # 45 min

    @property
    def total_steps(self) -> int:
        return self.normal_steps + self.fault_steps + self.after_steps


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message of the scenario: topic kind, key and value, at an event time."""

    at: float
    topic: str
    key: bytes
    value: bytes


def fault_window(start: float, shape: ScenarioShape = ScenarioShape()) -> tuple[float, float]:
    """Event times at which the fault starts and ends."""
    onset = start + shape.normal_steps * STEP_S
    return onset, onset + shape.fault_steps * STEP_S


def generate(
    start: float, shape: ScenarioShape = ScenarioShape(), seed: int = 7
) -> Iterator[Message]:
    """The scenario's messages in time order: per step, one metrics message per service
    (a JSON array of its five samples) and its log lines."""
    rng = np.random.default_rng(seed)
    onset, end = fault_window(start, shape)
    counter = 1000
    for step in range(shape.total_steps):
        ts = start + step * STEP_S
        daily = math.sin(2 * math.pi * step / 360.0)  # an hourly wave of load
        for service in SERVICES:
            samples = []
            for name, base in zip(_METRICS, _BASE[service], strict=True):
                noise = 0.06 if name != "error_ratio" else 0.25
                value = base * (1 + 0.08 * daily) * (1 + noise * rng.standard_normal())
                effect = _FAULT.get((service, name))
                if effect is not None and onset + effect[1] <= ts < end:
                    value *= effect[0] * (1 + 0.1 * rng.standard_normal())
                samples.append(
                    {
                        "timestamp": ts,
                        "service": service,
                        "metric": name,
                        "value": round(max(value, 0.0), 6),
                        "host": f"{service}-0",
                        "labels": {"env": "demo"},
                    }
                )
            yield Message(ts, "metrics", service.encode(), orjson.dumps(samples))
            lines = []
            for template in _NORMAL_LOGS[service]:
                counter += 1
                ms = int(rng.integers(3, 90))
                lines.append(("info", template.format(id=counter, ms=ms)))
            fault = _FAULT_LOGS.get(service)
            if fault is not None and onset + fault[2] <= ts < end:
                for _ in range(int(rng.integers(4, 9))):
                    counter += 1
                    lines.append((fault[0], fault[1].format(id=counter)))
            for i, (level, message) in enumerate(lines):
                yield Message(
                    ts + i * 0.01,
                    "logs",
                    service.encode(),
                    orjson.dumps(
                        {
                            "timestamp": ts + i * 0.01,
                            "service": service,
                            "level": level,
                            "message": message,
                            "host": f"{service}-0",
                        }
                    ),
                )


def write_sample(
    folder: Path, *, end: float, shape: ScenarioShape = ScenarioShape()
) -> dict[str, tuple[Path, int]]:
    """Write the scenario, ending at ``end``, as ``metrics.jsonl`` and ``logs.jsonl`` in
    ``folder`` (one message per line, as ``aiops send`` reads them).

    Returns each kind's file and number of messages.
    """
    folder.mkdir(parents=True, exist_ok=True)
    start = end - shape.total_steps * STEP_S
    paths = {kind: folder / f"{kind}.jsonl" for kind in ("metrics", "logs")}
    counts = dict.fromkeys(paths, 0)
    with paths["metrics"].open("wb") as metrics, paths["logs"].open("wb") as logs:
        files = {"metrics": metrics, "logs": logs}
        for message in generate(start, shape):
            files[message.topic].write(message.value + b"\n")
            counts[message.topic] += 1
    return {kind: (paths[kind], counts[kind]) for kind in paths}


def config_dir() -> Path:
    """Directory of the scenario's topology and remediation files (package data)."""
    return Path(str(resources.files("streams") / "scenarios"))
