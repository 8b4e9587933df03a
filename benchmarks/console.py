"""The incident console with many incidents: how fast its pages answer, and how soon a new
snapshot reaches an open page.

Run against the local broker (started if none answers)::

    python -m benchmarks.console --incidents 10000

It writes ``--incidents`` incident snapshots (a fifth open; each as the engine made it: five
signals in three services, ranked root causes, a timeline) to an incidents topic of its own,
starts ``aiops console`` over it, and measures:

1. **Build**: seconds from the console's start until ``/health`` says it has read the topics.
2. **Pages**: ``--requests`` sequential requests each of the list page (``/``, open first, 50
   rows), the API's first page (``/api/incidents``) and one incident page, signed in with a
   bearer token: p50, p99, max; then the list page again while new snapshots of an open
   incident arrive, 20 a second.
3. **Live**: ``--updates`` new versions of an open incident, produced one at a time while a
   page of that incident is open; from the produce to the page showing the new title: in
   headless Chromium when Debian's chromium and chromium-driver are installed (the page's
   own script: server-sent event, then the fragment it fetches), else the server-sent event
   plus the same fragment fetched by this process. p50, max.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer

from benchmarks.e2e_kafka import delete_topics_with_prefix, ensure_broker, free_port, produce_all
from detectors.anomaly import Anomaly, Direction, SignalKind
from rca.engine import IncidentEngine
from rca.model import Incident, IncidentState
from rca.topology import Topology
from streams.worker import subprocess_env

TOKEN = "bench-token"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# read in one call: a live update replaces the element between two WebDriver calls
HEADING = "const h = document.querySelector('h1'); return h ? h.textContent : '';"


def template() -> Incident:
    """One incident as the engine makes it: five signals in three services."""
    topology = Topology.from_mapping({"web": ["api"], "api": ["db"], "db": []})
    engine = IncidentEngine(topology=topology)
    snapshot = None
    signals = [
        ("db", "cpu", 30.0),
        ("db", "latency_p99_ms", 12.0),
        ("api", "latency_p99_ms", 9.0),
        ("api", "error_ratio", 7.0),
        ("web", "latency_p99_ms", 6.0),
    ]
    for i, (service, signal, z) in enumerate(signals):
        anomaly = Anomaly(
            service,
            signal,
            SignalKind.METRIC,
            1_700_000_000.0 + 5 * i,
            99.0,
            0.99,
            Direction.SPIKE,
            "robust",
            details={"z": z},
        )
        out = engine.on_anomaly(anomaly)
        if out.incidents:
            snapshot = out.incidents[-1]
    assert snapshot is not None
    return snapshot


def snapshots(count: int, now: float) -> list[Incident]:
    """``count`` incidents a minute apart, ending now; every fifth is open."""
    base = template()
    out = []
    for i in range(count):
        opened = now - 60.0 * (count - i)
        is_open = i % 5 == 0
        out.append(
            dataclasses.replace(
                base,
                id=f"inc-bench-{i:06d}",
                version=1 if is_open else 2,
                state=IncidentState.OPENED if is_open else IncidentState.RESOLVED,
                title=f"db-{i % 97}: cpu anomaly (5 signals in 3 services)",
                services=(f"db-{i % 97}", f"api-{i % 31}", "web"),
                opened_at=opened,
                updated_at=opened + 30.0,
                resolved_at=None if is_open else opened + 600.0,
            )
        )
    return out


def record(incident: Incident) -> tuple[bytes, bytes]:
    return incident.id.encode(), orjson.dumps(incident.to_dict())


def start_console(bootstrap: str, prefix: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = subprocess_env(
        bootstrap=bootstrap,
        app_id=prefix,
        web_port=free_port(),
        datadir=tmp / "data",
        overrides={
            "AIOPS_CONSOLE__PORT": str(port),
            "AIOPS_CONSOLE__TOKENS": f"{{bench: {TOKEN}}}",
        },
    )
    log = (tmp / "console.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "console"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> float:
    began = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the console exited during start-up")
        try:
            if orjson.loads(get(url + "/health")).get("ready"):
                return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the console was not ready in {timeout:.0f}s")


def timed(url: str, requests: int) -> list[float]:
    get(url)  # warm: templates compiled, the order computed
    out = []
    for _ in range(requests):
        began = time.perf_counter()
        get(url)
        out.append(time.perf_counter() - began)
    return out


def summary(name: str, delays: list[float]) -> str:
    p50, p99 = np.percentile(delays, [50, 99])
    return (
        f"{name}: p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, max {max(delays) * 1e3:.1f} ms "
        f"({len(delays)} requests)"
    )


class Updater:
    """Produces new versions of one open incident, one at a time, on a loop of its own."""

    def __init__(self, bootstrap: str, topic: str, base: Incident) -> None:
        self.topic = topic
        self.base = base
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.producer = self._run(self._start(bootstrap))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _start(self, bootstrap: str) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
        await producer.start()
        return producer

    def send(self, version: int) -> tuple[str, float]:
        """Produce version ``version``; returns its title and when the broker had it."""
        title = f"{self.base.title} · update {version}"
        snap = dataclasses.replace(
            self.base,
            version=version,
            state=IncidentState.UPDATED,
            title=title,
            updated_at=time.time(),
        )
        key, value = record(snap)
        self._run(self.producer.send_and_wait(self.topic, value, key=key))
        return title, time.perf_counter()

    def close(self) -> None:
        self._run(self.producer.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


def busy(url: str, updater: Updater, args: argparse.Namespace) -> list[float]:
    """List page latency while new versions of an open incident arrive, 20 a second (each
    one invalidates the list's order)."""
    stop = threading.Event()
    version = 1_000

    def produce() -> None:
        nonlocal version
        while not stop.is_set():
            version += 1
            updater.send(version)
            time.sleep(0.05)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        return timed(url + "/", args.requests)
    finally:
        stop.set()
        thread.join(timeout=10)


def live_in_browser(url: str, updater: Updater, updates: int) -> list[float]:
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    delays = []
    try:
        driver.get(f"{url}/login")
        driver.find_element(By.NAME, "password").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form.login button").click()
        driver.get(f"{url}/incidents/{updater.base.id}")
        deadline = time.monotonic() + 10
        while "on" not in (driver.find_element(By.ID, "live").get_attribute("class") or ""):
            if time.monotonic() > deadline:
                raise RuntimeError("the page's live updates did not connect")
            time.sleep(0.05)
        for version in range(10_000, updates + 10_000):
            title, sent = updater.send(version)
            deadline = time.monotonic() + 10
            while title not in driver.execute_script(HEADING):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"update {version} did not reach the page in 10 s")
                time.sleep(0.01)
            delays.append(time.perf_counter() - sent)
            time.sleep(0.3)
    finally:
        driver.quit()
    return delays


def live_over_sse(url: str, updater: Updater, updates: int) -> list[float]:
    request = urllib.request.Request(
        url + "/api/events", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    stream = urllib.request.urlopen(request, timeout=30)
    delays = []
    try:
        for version in range(10_000, updates + 10_000):
            title, sent = updater.send(version)
            while True:
                line = stream.readline()
                if line.startswith(b"data:") and updater.base.id.encode() in line:
                    break
            fragment = get(f"{url}/fragments/incidents/{updater.base.id}")
            assert title.encode() in fragment, "the fragment lags the event"
            delays.append(time.perf_counter() - sent)
    finally:
        stream.close()
    return delays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args(argv)
    local = ensure_broker(args.bootstrap)
    prefix = f"bench-console-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.incidents"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    incidents = snapshots(args.incidents, time.time())
    count, took = asyncio.run(produce_all(args.bootstrap, topic, map(record, incidents)))
    size = sum(len(record(i)[1]) for i in incidents[:100]) / 100
    print(f"wrote {count} incident snapshots ({size / 1024:.1f} KB each) in {took:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_console(args.bootstrap, prefix, port, Path(tmp))
        updater = None
        try:
            built = wait_ready(url, proc)
            shown = orjson.loads(get(url + "/health"))["incidents"]
            print(f"build: ready in {built:.1f} s with {shown} incidents")
            print(summary("list page /", timed(url + "/", args.requests)))
            print(summary("API /api/incidents", timed(url + "/api/incidents", args.requests)))
            some = incidents[len(incidents) // 2].id
            print(summary("incident page", timed(f"{url}/incidents/{some}", args.requests)))
            updater = Updater(args.bootstrap, topic, incidents[-5])
            print(summary("list page / while 20 snapshots/s arrive", busy(url, updater, args)))
            browser = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
            if browser:
                delays = live_in_browser(url, updater, args.updates)
            else:
                delays = live_over_sse(url, updater, args.updates)
            how = "in headless Chromium" if browser else "event + fragment, no browser"
            p50 = float(np.percentile(delays, 50))
            print(
                f"live: produce -> page shows it ({how}): p50 {p50 * 1e3:.0f} ms, "
                f"max {max(delays) * 1e3:.0f} ms ({len(delays)} updates)"
            )
        finally:
            if updater is not None:
                updater.close()
            proc.terminate()
            proc.wait(timeout=30)
            asyncio.run(delete_topics_with_prefix(args.bootstrap, prefix))
            if local is not None:
                local.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
