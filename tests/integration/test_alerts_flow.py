"""Alerts of other tools through the real broker and worker: a real Prometheus rule through a
real Alertmanager, Alertmanager's webhook, the HTTP receiver's token and refusals, the
``telemetry.alerts`` topic, and PagerDuty paged from the incidents."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.deadletter import parse_headers
from tests.kafka_harness import (
    BrokerHandle,
    WorkerProcess,
    consume_all,
    free_port,
    produce,
    unique_prefix,
    wait_until,
)
from tests.pagerduty_server import ROUTING_KEY, FakePagerDuty

pytestmark = pytest.mark.kafka

TOKEN = "alerts-token-for-tests"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
PROMETHEUS = shutil.which("prometheus")


def alerts_worker(kafka: BrokerHandle, tmp_path: Path, name: str) -> WorkerProcess:
    return WorkerProcess(
        kafka.bootstrap,
        unique_prefix(name),
        tmp_path,
        extra_env={
            "AIOPS_WORKER__API_TOKEN": TOKEN,
            # the alerts below come seconds apart: a short quiet period lets them resolve
            "AIOPS_INCIDENTS__ENGINE__CORRELATION__QUIET_PERIOD_S": "5",
        },
    )


def post(url: str, body: bytes, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), orjson.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return int(err.code), orjson.loads(err.read() or b"{}")


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def incidents(worker: WorkerProcess, until: Any) -> list[dict[str, Any]]:
    records = asyncio.run(
        consume_all(
            worker.bootstrap, worker.topics["incidents"], idle_s=60, timeout_s=120, until=until
        )
    )
    return [orjson.loads(r.value) for r in records]


def resolved_with(signal: str) -> Any:
    def check(records: list[Any]) -> bool:
        snaps = [orjson.loads(r.value) for r in records]
        return any(
            s["state"] == "resolved" and any(a["signal"] == signal for a in s["anomalies"])
            for s in snaps
        )

    return check


def test_the_receiver_needs_its_token_and_refuses_a_bad_body(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    worker = alerts_worker(kafka, tmp_path, "alerts-http").start()
    try:
        url = f"http://127.0.0.1:{worker.web_port}/api/alerts/alertmanager"
        body = orjson.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {}}]})
        assert post(url, body, token=None)[0] == 401
        assert post(url, body, token="wrong")[0] == 401
        status, answer = post(url, b"{not json")
        assert status == 400 and answer["error"].startswith("invalid_json")
        status, answer = post(url, body)  # delivered; its one alert has no name
        assert status == 400 and answer["accepted"] == 0
        assert "alertname" in answer["rejected"][0]["error"]
        letters = asyncio.run(
            consume_all(kafka.bootstrap, worker.topics["deadletter"], expect=2, timeout_s=60)
        )
        origins = sorted(parse_headers(r.headers)["topic"] for r in letters)
        assert origins == ["/api/alerts/alertmanager", worker.topics["alerts"]]
        # 10,000 alerts in one body (about 2.6 MB): accepted whole, on Kafka in parts that
        # fit its message limit; resolved alerts that were never seen open nothing
        many = [
            {
                "status": "resolved",
                "labels": {"alertname": "Gone", "instance": f"h-{i}"},
                "startsAt": "2026-12-03T10:00:00Z",
                "endsAt": "2026-12-03T10:05:00Z",
            }
            for i in range(10_000)
        ]
        status, answer = post(url, orjson.dumps({"version": "4", "alerts": many}))
        assert (status, answer) == (200, {"accepted": 10_000})
        parts = asyncio.run(
            consume_all(kafka.bootstrap, worker.topics["alerts"], idle_s=5, timeout_s=60)
        )
        assert len(parts) > 2  # the bad body above, and the big one cut in parts
        assert all(len(p.value) <= 1_048_576 for p in parts)
        assert sum(len(orjson.loads(p.value)["alerts"]) for p in parts) == 10_001
        assert wait_until(
            lambda: (
                worker.metric("aiops_events_accepted_total", topic=worker.topics["alerts"])
                >= 10_000
            ),
            timeout=60,
        )
    finally:
        worker.stop()


def test_a_plain_alert_on_the_topic_opens_and_resolves_an_incident_and_pages(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    with FakePagerDuty.threaded() as pagerduty:
        worker = alerts_worker(kafka, tmp_path, "alerts-topic")
        worker.extra_env.update(
            {"AIOPS_PAGERDUTY__ROUTING_KEY": ROUTING_KEY, "AIOPS_PAGERDUTY__URL": pagerduty.url}
        )
        worker.start()
        try:
            plain_alert_flow(kafka, worker)
            incident_id = incidents(worker, resolved_with("alert:QueueBacklog"))[0]["id"]
            assert wait_until(lambda: len(pagerduty.actions()) >= 2, timeout=60)
            assert pagerduty.actions() == [("trigger", incident_id), ("resolve", incident_id)]
            assert pagerduty.events[0]["payload"]["source"] == "billing"
        finally:
            worker.stop()


def plain_alert_flow(kafka: BrokerHandle, worker: WorkerProcess) -> None:
    """A plain JSON alert fires on the topic, then resolves: one incident, opened and
    resolved."""
    now = time.time()
    firing = {
        "name": "QueueBacklog",
        "status": "firing",
        "service": "billing",
        "severity": "warning",
        "summary": "backlog over 10k",
        "started_at": now,
    }
    resolved = {**firing, "status": "resolved", "ended_at": now + 10}
    asyncio.run(produce(kafka.bootstrap, worker.topics["alerts"], [orjson.dumps(firing)]))
    time.sleep(10)
    asyncio.run(produce(kafka.bootstrap, worker.topics["alerts"], [orjson.dumps(resolved)]))
    snaps = incidents(worker, resolved_with("alert:QueueBacklog"))
    assert {s["id"] for s in snaps} == {snaps[0]["id"]}, [s["title"] for s in snaps]
    assert snaps[0]["state"] == "opened" and snaps[0]["services"] == ["billing"]
    assert snaps[-1]["state"] == "resolved"
    assert "QueueBacklog" in snaps[0]["root_causes"][0]["explanation"]


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {timeout}s")


@contextmanager
def alertmanager(tmp_path: Path, worker: WorkerProcess) -> Iterator[int]:
    """A real Alertmanager whose one receiver is the worker's webhook; yields its port."""
    assert ALERTMANAGER is not None
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: aiops
  group_by: [alertname, job]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: aiops
    webhook_configs:
      - url: http://127.0.0.1:{worker.web_port}/api/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""
    )
    log = (tmp_path / "alertmanager.log").open("wb")
    manager = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready")
        yield port
    finally:
        manager.terminate()
        manager.wait(timeout=10)


@pytest.mark.skipif(ALERTMANAGER is None, reason="Alertmanager is not installed")
def test_a_real_alertmanager_pages_the_worker(kafka: BrokerHandle, tmp_path: Path) -> None:
    worker = alerts_worker(kafka, tmp_path, "alerts-am").start()
    try:
        with alertmanager(tmp_path, worker) as port:
            api = f"http://127.0.0.1:{port}/api/v2/alerts"
            started = time.time()
            alert = {
                "labels": {"alertname": "HighErrorRate", "job": "checkout", "severity": "critical"},
                "annotations": {"summary": "5% of checkout requests fail"},
                "startsAt": iso(started),
                "generatorURL": "http://prometheus:9090/graph",
            }
            assert post(api, orjson.dumps([alert]), token=None)[0] == 200
            time.sleep(8)
            ended = {**alert, "endsAt": iso(time.time())}
            assert post(api, orjson.dumps([ended]), token=None)[0] == 200
            snaps = incidents(worker, resolved_with("alert:HighErrorRate"))
        log_tail = (tmp_path / "alertmanager.log").read_text()[-2000:]
        assert snaps, log_tail + worker.log_text()[-2000:]
        assert {s["id"] for s in snaps} == {snaps[0]["id"]}
        first, last = snaps[0], snaps[-1]
        assert first["services"] == ["checkout"] and first["severity"] == "critical"
        assert abs(first["opened_at"] - started) < 2
        assert "alert HighErrorRate firing (critical, alertmanager)" in first["timeline"][0]["text"]
        assert last["state"] == "resolved"
    finally:
        worker.stop()


class Exporter:
    """A tiny Prometheus exporter: ``checkout_error_ratio``, 0.01 until :attr:`failing`."""

    def __init__(self) -> None:
        self.failing = False
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ratio = 0.2 if exporter.failing else 0.01
                body = f"# TYPE checkout_error_ratio gauge\ncheckout_error_ratio {ratio}\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.skipif(
    ALERTMANAGER is None or PROMETHEUS is None, reason="Prometheus or Alertmanager missing"
)
def test_a_prometheus_rule_fires_through_alertmanager_into_an_incident(
    kafka: BrokerHandle, tmp_path: Path
) -> None:
    worker = alerts_worker(kafka, tmp_path, "alerts-prom").start()
    exporter = Exporter()
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        with alertmanager(tmp_path, worker) as am_port:
            (tmp_path / "rules.yml").write_text(
                """
groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: checkout_error_ratio > 0.05
        labels: {severity: page}
        annotations: {summary: "checkout fails {{ $value }} of its requests"}
"""
            )
            prom_port = free_port()
            (tmp_path / "prometheus.yml").write_text(
                f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{tmp_path / "rules.yml"}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
scrape_configs:
  - job_name: checkout
    static_configs: [{{targets: ["127.0.0.1:{exporter.port}"]}}]
"""
            )
            assert PROMETHEUS is not None
            prometheus = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=(tmp_path / "prometheus.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            wait_ready(f"http://127.0.0.1:{prom_port}/-/ready")
            time.sleep(3)  # a few healthy scrapes first
            exporter.failing = True
            opened = incidents(worker, lambda rs: len(rs) > 0)
            assert opened, (tmp_path / "prometheus.log").read_text()[-2000:]
            time.sleep(6)
            exporter.failing = False  # the rule stops firing: Prometheus resolves the alert
            snaps = incidents(worker, resolved_with("alert:HighErrorRate"))
        first = snaps[0]
        assert first["services"] == ["checkout"] and first["severity"] == "critical"
        assert "checkout fails 0.2 of its requests" in first["timeline"][0]["text"]
        assert snaps[-1]["state"] == "resolved"
        assert {s["id"] for s in snaps} == {first["id"]}
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=10)
        exporter.close()
        worker.stop()
