"""SASL/SCRAM against a local broker that requires it: the worker connects with the
documented settings, and a wrong password stops start-up with a message that says so."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from benchmarks.chaos import free_port_block
from streams.config import LocalKafkaSettings
from streams.localkafka import SCRAM_MECHANISM, LocalKafka
from streams.worker import subprocess_env
from tests.kafka_harness import WorkerProcess, free_port, unique_prefix, wait_until

pytestmark = pytest.mark.kafka

USER, PASSWORD = "aiops-worker", "correct horse battery staple"


@pytest.fixture
def scram_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    home = tmp_path / "kafka"
    home.mkdir()
    jars = LocalKafka(LocalKafkaSettings(), say=lambda _line: None).jars_dir.parent
    if jars.is_dir():
        (home / jars.name).symlink_to(jars)  # the jars fetched once, shared
    base = free_port_block(2)
    settings = LocalKafkaSettings(
        home=str(home),
        port=base,
        controller_port=base + 1,
        heap="256m",
        scram_username=USER,
        scram_password=SecretStr(PASSWORD),
    )
    kafka = LocalKafka(settings, say=lambda _line: None)
    kafka.up()
    try:
        yield kafka
    finally:
        kafka.reset()


def sasl_env(password: str) -> dict[str, str]:
    return {
        "AIOPS_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "AIOPS_KAFKA__SASL_MECHANISM": SCRAM_MECHANISM,
        "AIOPS_KAFKA__SASL_USERNAME": USER,
        "AIOPS_KAFKA__SASL_PASSWORD": password,
    }


def test_the_worker_connects_with_scram(scram_broker: LocalKafka, tmp_path: Path) -> None:
    worker = WorkerProcess(
        scram_broker.bootstrap, unique_prefix("scram"), tmp_path, extra_env=sasl_env(PASSWORD)
    ).start()
    try:

        async def send() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=scram_broker.bootstrap,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=SCRAM_MECHANISM,
                sasl_plain_username=USER,
                sasl_plain_password=PASSWORD,
            )
            await producer.start()
            try:
                event = {"timestamp": 1.7e9, "service": "api", "metric": "cpu", "value": 1.0}
                await producer.send_and_wait(worker.topics["metrics"], orjson.dumps(event))
            finally:
                await producer.stop()

        asyncio.run(send())
        topic = worker.topics["metrics"]
        assert wait_until(
            lambda: worker.metric("aiops_events_accepted_total", topic=topic) == 1, timeout=60
        ), worker.log_text()[-3000:]
    finally:
        worker.stop()


def test_a_wrong_password_stops_start_up_with_a_clear_message(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    wrong = "not the password"
    env = subprocess_env(
        bootstrap=scram_broker.bootstrap,
        app_id=unique_prefix("scram-wrong"),
        web_port=free_port(),
        datadir=tmp_path / "data",
        overrides=sasl_env(wrong),
    )
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"refused the credentials of kafka.sasl_username '{USER}'" in said, said
    assert "SaslAuthenticationFailed" in said and "kafka.sasl_password" in said, said
    assert wrong not in said and PASSWORD not in said, "no password in the output"
