"""Produce-to-anomaly and produce-to-incident latency at a steady, paced input rate.

A paced producer sends metric events stamped with the wall clock (event time = produce
time, as a live collector would). Once every series is past its warm-up, single-point spikes
are injected on one series at a time, and a sustained fault (several metrics of a few
services shifted far off their level) starts. A consumer of the worker's anomalies and
incidents topics, in the same process, notes when each record arrives.

Two latencies per spike: from producing the spike, and from producing the point that lets
the detector decide (the onset record is published once ``classify_points`` points of the
episode are seen, to tell a spike from a level shift). Per fault: from producing its first
shifted point to the first incident snapshot naming its service (this includes the
engine's ``confirm_s`` wait, on purpose: it is what a user sees).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.e2e_load import SeriesLayout

TICK_S = 0.01


@dataclass(frozen=True, slots=True)
class LatencyPlan:
    """What the paced run sends.

    Parameters
    ----------
    rate
        Events per second.
    layout
        The series (every series gets ``rate / series`` points per second).
    batch
        Events per Kafka message (1: one event per message); the events of one service
        are batched, and a partial batch is sent after ``flush_s``.
    warmup_s
        Seconds of normal data before the first spike.
    spikes
        Single-point spikes, one every ``spike_every_s``.
    fault_services
        Services whose first ``fault_metrics`` metrics shift at ``fault_at_s`` and stay.
    duration_s
        Seconds of sending in all.
    """

    rate: int
    layout: SeriesLayout
    batch: int
    warmup_s: float
    spikes: int
    spike_every_s: float
    fault_services: tuple[int, ...]
    fault_metrics: int
    fault_at_s: float
    duration_s: float
    flush_s: float = 0.05
    shift_sd: float = 40.0

    def fault_series(self) -> set[int]:
        services = self.layout.services
        return {
            svc + services * m
            for svc in self.fault_services
            for m in range(self.fault_metrics)
            if svc + services * m < self.layout.series
        }


@dataclass
class LatencyRecord:
    """What the paced run saw; latencies in seconds."""

    sent: int = 0
    send_s: float = 0.0
    spike_onset: list[float] = field(default_factory=list)
    spike_decision: list[float] = field(default_factory=list)
    decision_to_published: list[float] = field(default_factory=list)
    spikes_sent: int = 0
    incident: list[float] = field(default_factory=list)
    faults_sent: int = 0
    anomalies: int = 0
    incidents: int = 0
    accepted: int = 0
    planned: int = 0


class _Sender:
    """Paces events and remembers when the interesting ones were produced."""

    def __init__(self, plan: LatencyPlan, producer: AIOKafkaProducer, topic: str) -> None:
        self.plan = plan
        self.producer = producer
        self.topic = topic
        layout = plan.layout
        self.names = [layout.name(s) for s in range(layout.series)]
        self.levels = [layout.level(s) for s in range(layout.series)]
        self.faulty = plan.fault_series()
        self.sent = 0
        # series -> times its points were handed to the producer, from the spike on
        self.spike_points: dict[int, list[float]] = {}
        self.spike_ts: dict[int, float] = {}
        self.fault_start: dict[str, float] = {}
        self.pending: dict[str, list[tuple[int, dict[str, object]]]] = {}
        self.flushed_at = time.monotonic()

    def value(self, s: int, elapsed: float, now: float) -> float:
        level = self.levels[s]
        noise = ((self.sent * 2654435761) % 1000 / 1000.0 - 0.5) * 0.04 * level
        if s in self.faulty and elapsed >= self.plan.fault_at_s:
            service = self.names[s][0]
            self.fault_start.setdefault(service, now)
            return level + self.plan.shift_sd * 0.02 * level + noise
        if s in self.spike_ts and self.spike_ts[s] == now:
            return level + self.plan.shift_sd * 0.02 * level
        return level + noise

    async def send_due(self, elapsed: float) -> None:
        plan = self.plan
        due = int(elapsed * plan.rate)
        now = time.time()
        spike_index = int((elapsed - plan.warmup_s) // plan.spike_every_s)
        while self.sent < due:
            s = self.sent % plan.layout.series
            if (
                0 <= spike_index < plan.spikes
                and len(self.spike_ts) <= spike_index
                and s not in self.faulty
                and s not in self.spike_ts
            ):
                self.spike_ts[s] = now
                self.spike_points[s] = []
            service, metric = self.names[s]
            event = {
                "timestamp": now,
                "service": service,
                "metric": metric,
                "value": round(self.value(s, elapsed, now), 3),
            }
            self.sent += 1
            await self._emit(service, s, event)
        if time.monotonic() - self.flushed_at >= plan.flush_s:
            await self._flush_all()

    async def _send(self, service: str, group: list[tuple[int, dict[str, object]]]) -> None:
        value = orjson.dumps(group[0][1] if self.plan.batch <= 1 else [e for _, e in group])
        await self.producer.send(self.topic, value, key=service.encode())
        sent_at = time.time()
        for s, _ in group:
            if s in self.spike_points:
                self.spike_points[s].append(sent_at)

    async def _emit(self, service: str, s: int, event: dict[str, object]) -> None:
        group = self.pending.setdefault(service, [])
        group.append((s, event))
        if len(group) >= self.plan.batch:
            await self._send(service, group)
            self.pending[service] = []

    async def _flush_all(self) -> None:
        # A collector also flushes on an interval: a partial batch waits at most flush_s.
        self.flushed_at = time.monotonic()
        for service, group in self.pending.items():
            if group:
                await self._send(service, group)
                self.pending[service] = []


async def _collect(
    bootstrap: str, topics: list[str], stop: asyncio.Event
) -> list[tuple[float, float, dict[str, object]]]:
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: list[tuple[float, float, dict[str, object]]] = []
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            arrived = time.time()
            for records in batches.values():
                seen.extend(
                    (arrived, r.timestamp / 1000.0, orjson.loads(r.value or b"{}")) for r in records
                )
    finally:
        await consumer.stop()
    return seen


async def run_latency(
    *,
    bootstrap: str,
    metrics_topic: str,
    anomalies_topic: str,
    incidents_topic: str,
    plan: LatencyPlan,
    classify_points: int,
    drain_s: float = 15.0,
) -> LatencyRecord:
    """Send the plan at its pace, then wait ``drain_s`` for late records; measure."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    await producer.start()
    stop = asyncio.Event()
    collector = asyncio.create_task(_collect(bootstrap, [anomalies_topic, incidents_topic], stop))
    await asyncio.sleep(2.0)  # the consumer is assigned before anything is sent
    sender = _Sender(plan, producer, metrics_topic)
    start = time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < plan.duration_s:
            await sender.send_due(elapsed)
            await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - start - elapsed)))
        await producer.flush()
        send_s = time.monotonic() - start
    finally:
        await producer.stop()
    await asyncio.sleep(drain_s)
    stop.set()
    seen = await collector
    return _measure(sender, seen, classify_points, send_s)


def _measure(
    sender: _Sender,
    seen: list[tuple[float, float, dict[str, object]]],
    classify_points: int,
    send_s: float,
) -> LatencyRecord:
    plan = sender.plan
    out = LatencyRecord(sent=sender.sent, send_s=send_s, planned=int(plan.rate * plan.duration_s))
    out.spikes_sent = len(sender.spike_ts)
    out.faults_sent = len(sender.fault_start)
    by_name = {sender.names[s]: s for s in sender.spike_ts}
    onset_seen: set[int] = set()
    incident_seen: set[str] = set()
    for arrived, created, record in seen:
        if "services" in record:  # an incident snapshot
            out.incidents += 1
            services = record.get("services")
            for service in services if isinstance(services, list) else []:
                start = sender.fault_start.get(str(service))
                if start is not None and service not in incident_seen:
                    incident_seen.add(str(service))
                    out.incident.append(arrived - start)
            continue
        out.anomalies += 1
        details = record.get("details") or {}
        if not isinstance(details, dict) or details.get("phase") != "onset":
            continue
        s = by_name.get((str(record.get("service")), str(record.get("signal"))))
        if s is None or s in onset_seen or record.get("timestamp") != sender.spike_ts[s]:
            continue
        onset_seen.add(s)
        points = sender.spike_points[s]
        out.spike_onset.append(arrived - points[0])
        if len(points) >= classify_points:
            out.spike_decision.append(arrived - points[classify_points - 1])
            out.decision_to_published.append(created - points[classify_points - 1])
    return out
