"""Alerts in: how fast a worker takes alerts over HTTP and from Kafka, and how soon an
alert is in an incident.

Run against the local broker (started if none answers)::

    python -m benchmarks.alerts --alerts 5000 --rate 1000

It starts one ``aiops worker`` with topics of its own and measures, in this order:

1. **Latency**: for ``--seconds`` seconds, alerts POSTed at ``--rate`` per second, each of a
   new alert name on one of 200 fresh services; from the POST of a service's first alert to
   the first incident snapshot naming that service on the incidents topic: p50, p99, max.
2. **HTTP**: ``--alerts`` Alertmanager webhook bodies (one firing alert each, 200 services)
   POSTed to ``/api/alerts/alertmanager`` by ``--clients`` threads as fast as they are
   answered; each answer comes once the body is on Kafka. Alerts accepted per second.
3. **Kafka**: as many plain JSON alerts produced to the worker's alerts topic; alerts per
   second from the first produce until the worker counted them all as accepted.

Without a topology every one of these services is related to the others by time, so the
whole run is one alert storm: one incident, listing its first ``max_signals`` signals.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer

from benchmarks.e2e_kafka import (
    delete_topics_with_prefix,
    ensure_broker,
    free_port,
    produce_all,
)
from streams.worker import subprocess_env

SERVICES = 200


def alert_body(service: str, name: str) -> bytes:
    """One Alertmanager webhook body with one firing alert."""
    return orjson.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "aiops",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": name, "job": service, "severity": "warning"},
                    "annotations": {"summary": f"{name} on {service}"},
                    "startsAt": time.time(),
                }
            ],
        }
    )


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def accepted(port: int, topic: str) -> float:
    """The worker's ``aiops_events_accepted_total`` of ``topic``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("aiops_events_accepted_total{") and f'topic="{topic}"' in line:
                return float(line.rpartition(" ")[2])
    return 0.0


def start_worker(bootstrap: str, prefix: str, port: int, datadir: Path) -> Any:
    env = subprocess_env(bootstrap=bootstrap, app_id=prefix, web_port=port, datadir=datadir)
    log = (datadir.parent / "worker.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the worker did not start")


def http_rate(url: str, count: int, clients: int, tag: str) -> float:
    bodies = [alert_body(f"{tag}-{i % SERVICES}", f"Http{i}") for i in range(count)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(lambda b: post(url, b), bodies))
    elapsed = time.perf_counter() - start
    if any(s != 200 for s in statuses):
        raise RuntimeError(f"{sum(s != 200 for s in statuses)} POSTs were refused")
    return count / elapsed


def kafka_rate(bootstrap: str, topic: str, port: int, count: int, already: float) -> float:
    values: list[tuple[bytes | None, bytes]] = [
        (None, orjson.dumps({"name": f"Kafka{i}", "status": "firing", "service": f"k-{i % 200}"}))
        for i in range(count)
    ]
    start = time.perf_counter()
    asyncio.run(produce_all(bootstrap, topic, values))
    deadline = time.monotonic() + 300
    while accepted(port, topic) < already + count and time.monotonic() < deadline:
        time.sleep(0.05)
    return count / (time.perf_counter() - start)


async def first_snapshots(
    bootstrap: str, topic: str, wanted: set[str], seen: dict[str, float], stop: threading.Event
) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest")
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batch.values():
                for record in records:
                    for service in orjson.loads(record.value).get("services", []):
                        if service in wanted and service not in seen:
                            seen[service] = now
    finally:
        await consumer.stop()


def latency(
    url: str, bootstrap: str, topic: str, rate: int, seconds: float, clients: int
) -> list[float]:
    tag = f"lat{uuid.uuid4().hex[:6]}"
    services = [f"{tag}-{i}" for i in range(SERVICES)]
    seen: dict[str, float] = {}
    stop = threading.Event()
    reader = threading.Thread(
        target=lambda: asyncio.run(first_snapshots(bootstrap, topic, set(services), seen, stop))
    )
    reader.start()
    time.sleep(3)  # the reader has joined the topic
    sent_at: dict[str, float] = {}
    total = int(rate * seconds)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for i in range(total):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            service = services[i % SERVICES]
            sent_at.setdefault(service, time.time())
            pool.submit(post, url, alert_body(service, f"Lat{i}"))
    deadline = time.monotonic() + 60
    while len(seen) < len(services) and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    reader.join()
    return [seen[s] - sent_at[s] for s in services if s in seen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    local = ensure_broker(args.bootstrap)
    prefix = f"bench-alerts-{uuid.uuid4().hex[:8]}"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_worker(args.bootstrap, prefix, port, Path(tmp) / "data")
        try:
            url = f"http://127.0.0.1:{port}/api/alerts/alertmanager"
            topic = f"{prefix}.alerts"
            post(url, alert_body("warm-up", "WarmUp"))
            # latency first, while no incident is open: later alerts of every service join
            # the one incident of the storm, past its max_signals
            delays = latency(
                url, args.bootstrap, f"{prefix}.incidents", args.rate, args.seconds, args.clients
            )
            if delays:
                p50, p99 = np.percentile(delays, [50, 99])
                print(
                    f"POST -> incident snapshot at {args.rate} alerts/s: p50 {p50 * 1e3:.0f} ms, "
                    f"p99 {p99 * 1e3:.0f} ms, max {max(delays) * 1e3:.0f} ms "
                    f"({len(delays)}/{SERVICES} services)"
                )
            else:
                print("no incident snapshot arrived")
            rate = http_rate(url, args.alerts, args.clients, "h")
            print(f"HTTP: {args.alerts} alerts, {rate:,.0f} alerts/s ({args.clients} clients)")
            time.sleep(2)
            rate = kafka_rate(args.bootstrap, topic, port, args.alerts, accepted(port, topic))
            print(f"Kafka: {args.alerts} alerts, {rate:,.0f} alerts/s")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            asyncio.run(delete_topics_with_prefix(args.bootstrap, prefix))
            if local is not None:
                local.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
