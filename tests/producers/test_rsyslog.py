"""rsyslog with omkafka: syslog lines sent with ``logger`` reach the logs topic and the worker.

A private rsyslogd (``-n -f CONF -i PIDFILE``, work directory in tmp) listens with imtcp
on a free port and writes every message twice into ``<prefix>.logs``: with the RFC 5424
template of ``deploy/producers/rsyslog-omkafka.conf`` and with omkafka's default template
(no ``template=``, which rsyslog 8 resolves to ``RSYSLOG_FileFormat``). ``logger`` sends
lines both as RFC 5424 (its default for a server) and as RFC 3164 (what local programs
send), each with a different severity.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.logs import LogIngestConfig, decode_log_message
from tests.kafka_harness import BrokerHandle, WorkerProcess, free_port, unique_prefix, wait_until
from tests.producers.conftest import (
    Daemon,
    create_topics,
    deadlettered,
    port_open,
    raw_records,
    render,
    require_binary,
    require_file,
    wait_for_accepted,
)

pytestmark = [pytest.mark.kafka, pytest.mark.producers]

MAX_BYTES = 64 * 1024
OMKAFKA = "/usr/lib/*/rsyslog/omkafka.so"


@dataclass(frozen=True)
class Sent:
    """One line given to ``logger``."""

    framing: str  # how logger framed it: "rfc5424" or "rfc3164"
    app: str
    priority: str
    level: str  # the level its severity stands for
    text: str


def _lines(marker: str) -> list[Sent]:
    severities = [("local0.err", "error"), ("user.warning", "warning"), ("daemon.info", "info")]
    lines = []
    for framing in ("rfc5424", "rfc3164"):
        for i, (priority, level) in enumerate(severities):
            text = f"order {marker}-{framing}-{i} settled in {40 + i} ms"
            lines.append(Sent(framing, f"checkout{i}", priority, level, text))
    return lines


def _logger_host(framing: str) -> str:
    # util-linux logger writes the full host name in RFC 5424 and the short one in RFC 3164.
    name = socket.gethostname()
    return name if framing == "rfc5424" else name.split(".")[0]


@dataclass(frozen=True)
class RsyslogRun:
    topic: str
    prefix: str
    sent: list[Sent]
    records: list[bytes]

    def record(self, sent: Sent, *, rfc5424_template: bool) -> bytes:
        found = [
            r
            for r in self.records
            if sent.text.encode() in r and r.startswith(b"<") == rfc5424_template
        ]
        assert len(found) == 1, f"{sent.text!r}: {len(found)} records, want 1: {self.records}"
        return found[0]


def _config(tmp: Path, port: int, bootstrap: str, topic: str) -> str:
    shipped = render("rsyslog-omkafka.conf", AIOPS_KAFKA_BROKER=bootstrap, AIOPS_LOGS_TOPIC=topic)
    # The private instance: its own work directory, one TCP input whose ruleset sends each
    # message with the shipped action and with an omkafka action left at its defaults.
    # rsyslog's own messages (start, stop) go to the default ruleset, which has no action.
    return f"""
global(workDirectory="{tmp}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="test_input")
{shipped}
ruleset(name="test_input") {{
    call aiops_kafka
    action(type="omkafka" name="default_template" broker=["{bootstrap}"] topic="{topic}")
}}
"""


@pytest.fixture(scope="module")
def rsyslog_run(kafka: BrokerHandle, tmp_path_factory: pytest.TempPathFactory) -> RsyslogRun:
    rsyslogd = require_binary("rsyslogd", "rsyslog")
    require_file(OMKAFKA, "rsyslog-kafka")
    logger = require_binary("logger", "bsdutils")
    tmp = tmp_path_factory.mktemp("rsyslog")
    prefix = unique_prefix("rsyslog")
    topic = f"{prefix}.logs"
    port = free_port()
    create_topics(kafka.bootstrap, topic)
    conf = tmp / "rsyslog.conf"
    conf.write_text(_config(tmp, port, kafka.bootstrap, topic))
    check = subprocess.run([rsyslogd, "-N1", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, f"rsyslogd rejects the configuration:\n{check.stderr}"
    daemon = Daemon(
        [rsyslogd, "-n", "-f", str(conf), "-i", str(tmp / "rsyslogd.pid")], tmp / "rsyslogd.log"
    ).start()
    try:
        assert wait_until(lambda: port_open(port) or not daemon.alive(), timeout=15)
        assert daemon.alive(), f"rsyslogd exited:\n{daemon.output()}"
        sent = _lines(prefix)
        for line in sent:
            argv = [logger, "--tcp", "-n", "127.0.0.1", "-P", str(port)]
            argv += ["-t", line.app, "-p", line.priority, f"--{line.framing}", line.text]
            subprocess.run(argv, check=True, timeout=10)
        records = raw_records(kafka.bootstrap, topic, expect=2 * len(sent), timeout_s=20)
    finally:
        daemon.stop()
    assert records, f"nothing reached {topic}; rsyslogd said:\n{daemon.output()}"
    return RsyslogRun(topic, prefix, sent, records)


def test_every_line_reaches_the_topic_once_per_template(rsyslog_run: RsyslogRun) -> None:
    assert len(rsyslog_run.records) == 2 * len(rsyslog_run.sent)
    for sent in rsyslog_run.sent:
        rsyslog_run.record(sent, rfc5424_template=True)
        rsyslog_run.record(sent, rfc5424_template=False)


def _decode(record: bytes) -> tuple[str, str | None, str | None, str, str]:
    decoded = decode_log_message(record, config=LogIngestConfig(), max_bytes=MAX_BYTES)
    assert decoded.errors == []
    assert len(decoded.events) == 1, decoded.events
    event = decoded.events[0]
    return event.service, event.host, event.level, event.message, dict(event.attributes)["format"]


@pytest.mark.parametrize("framing", ["rfc5424", "rfc3164"])
def test_rfc5424_template_gives_service_host_level_and_text(
    rsyslog_run: RsyslogRun, framing: str
) -> None:
    for sent in (s for s in rsyslog_run.sent if s.framing == framing):
        service, host, level, message, fmt = _decode(
            rsyslog_run.record(sent, rfc5424_template=True)
        )
        assert fmt == "rfc5424"
        assert (service, host, level) == (sent.app, _logger_host(framing), sent.level)
        assert message == sent.text


@pytest.mark.parametrize("framing", ["rfc5424", "rfc3164"])
def test_default_template_gives_service_host_and_text(
    rsyslog_run: RsyslogRun, framing: str
) -> None:
    for sent in (s for s in rsyslog_run.sent if s.framing == framing):
        service, host, level, message, fmt = _decode(
            rsyslog_run.record(sent, rfc5424_template=False)
        )
        assert fmt == "iso_syslog"
        assert (service, host, message) == (sent.app, _logger_host(framing), sent.text)
        # RSYSLOG_FileFormat carries no priority: the level can only come from the text.
        assert level is None


def test_worker_accepts_every_record(
    rsyslog_run: RsyslogRun, kafka: BrokerHandle, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        kafka.bootstrap,
        rsyslog_run.prefix,
        tmp_path,
        extra_env={"AIOPS_WORKER__MAX_MESSAGE_BYTES": str(MAX_BYTES)},
    ).start()
    try:
        expected = len(rsyslog_run.records)
        accepted = wait_for_accepted(worker, rsyslog_run.topic, expected, timeout=40)
        assert accepted == expected
        assert deadlettered(worker, rsyslog_run.topic) == {}
    finally:
        worker.stop()
