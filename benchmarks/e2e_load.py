"""Generated telemetry for the end-to-end benchmark, in the native JSON contract.

Series ``s`` belongs to service ``svc-{s % services}`` and is metric ``m{s // services}``;
records are keyed by service (as the contract recommends), so a service's series stay on one
partition. Values are Gaussian noise around a per-series level: no anomalies unless injected.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

START_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
STEP_S = 10.0

LOG_TEMPLATES = (
    ("info", "GET /api/v1/orders/{n} 200 {ms}ms"),
    ("info", "user {n} logged in from 10.0.{a}.{b}"),
    ("info", "cache hit ratio {pct}% for shard {a}"),
    ("debug", "published {n} records to partition {a}"),
    ("info", "request {hex} completed in {ms} ms"),
    ("warning", "slow query on table orders took {ms} ms"),
    ("info", "scheduled job cleanup-{a} finished, {n} rows removed"),
    ("error", "connection reset by peer 10.0.{a}.{b}:5432"),
)


@dataclass(frozen=True, slots=True)
class SeriesLayout:
    """How many series, spread over how many services.

    >>> layout = SeriesLayout(series=1000, services=100)
    >>> layout.name(1234 % 1000)
    ('svc-034', 'm2')
    """

    series: int
    services: int = 100

    def name(self, s: int) -> tuple[str, str]:
        """``(service, metric)`` of series ``s``."""
        return f"svc-{s % self.services:03d}", f"m{s // self.services}"

    def level(self, s: int) -> float:
        """The normal level of series ``s`` (deterministic, so runs are comparable)."""
        return 50.0 + (s * 7919) % 1000


def metric_events(layout: SeriesLayout, events: int, seed: int = 7) -> Iterator[dict[str, object]]:
    """``events`` metric events, round robin over the series, one step apart per round."""
    rng = random.Random(seed)
    gauss = rng.gauss
    names = [layout.name(s) for s in range(layout.series)]
    levels = [layout.level(s) for s in range(layout.series)]
    for i in range(events):
        s = i % layout.series
        service, metric = names[s]
        yield {
            "timestamp": START_TS + STEP_S * (i // layout.series),
            "service": service,
            "metric": metric,
            "value": round(levels[s] + gauss(0.0, 0.02 * levels[s]), 3),
        }


def log_events(services: int, events: int, seed: int = 11) -> Iterator[dict[str, object]]:
    """``events`` log events from ``services`` services, drawn from a few templates."""
    rng = random.Random(seed)
    for i in range(events):
        level, template = LOG_TEMPLATES[rng.randrange(len(LOG_TEMPLATES) - 1)]
        message = template.format(
            n=rng.randrange(100_000),
            ms=rng.randrange(1, 900),
            a=rng.randrange(256),
            b=rng.randrange(256),
            pct=rng.randrange(100),
            hex=f"{rng.getrandbits(48):012x}",
        )
        yield {
            "timestamp": START_TS + i * 0.001,
            "service": f"svc-{i % services:03d}",
            "level": level,
            "message": message,
        }


def encode(events: Iterator[dict[str, object]], batch: int) -> list[tuple[bytes, bytes]]:
    """Kafka records ``(key, value)``: one event per message (``batch=1``) or JSON arrays
    of up to ``batch`` consecutive events of the same service, keyed by that service."""
    if batch <= 1:
        return [(str(e["service"]).encode(), orjson.dumps(e)) for e in events]
    pending: dict[str, list[dict[str, object]]] = {}
    out: list[tuple[bytes, bytes]] = []
    for event in events:
        service = str(event["service"])
        group = pending.setdefault(service, [])
        group.append(event)
        if len(group) >= batch:
            out.append((service.encode(), orjson.dumps(group)))
            pending[service] = []
    out.extend((s.encode(), orjson.dumps(g)) for s, g in pending.items() if g)
    return out
