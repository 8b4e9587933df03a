"""A worker on a machine that is not ready says what is wrong in one line, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.config import WorkerSettings, load_settings
from streams.doctor import Status, check_folders, check_rule_files, check_slack, check_web_port
from streams.exceptions import EnvironmentProblem
from streams.worker import check_web_port as worker_port_check
from streams.worker import prepare_datadir
from tests.kafka_harness import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_state_folder_is_created_with_its_parents_in_a_fresh_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    default = load_settings(env={}).worker.datadir
    assert default.startswith("~/.local/state/")  # parents a fresh home does not have
    path = Path(default.replace("~", str(home), 1))
    made = prepare_datadir(WorkerSettings(datadir=str(path)))
    assert made == path and path.is_dir()
    assert not any(path.iterdir())  # the write check leaves nothing behind


def test_a_folder_that_cannot_be_made_names_it_and_the_setting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(EnvironmentProblem) as info:
        prepare_datadir(WorkerSettings(datadir=str(blocker / "state")))
    message = str(info.value)
    assert str(blocker / "state") in message
    assert "worker.datadir (AIOPS_WORKER__DATADIR)" in message


def test_a_taken_web_port_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EnvironmentProblem, match=rf"127\.0\.0\.1:{port} cannot be used"):
            worker_port_check(WorkerSettings(web_port=port))
        [finding] = check_web_port(load_settings(env={"AIOPS_WORKER__WEB_PORT": str(port)}))
        assert finding.status is Status.FAIL and "AIOPS_WORKER__WEB_PORT" in finding.fix


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"AIOPS_KAFKA_BOOTSTRAP": "127.0.0.1:{dead}"},
            "no Kafka broker answers at 127.0.0.1:{dead}",
        ),
        ({"AIOPS_WORKER__DATADIR": "{tmp}/file/state"}, "cannot write the worker's state folder"),
        ({"AIOPS_INCIDENTS__TOPOLOGY_FILE": "{tmp}/missing.yaml"}, "missing.yaml: cannot read"),
        ({"AIOPS_TOPICS__PARTITIONS": "zero"}, "AIOPS_TOPICS__PARTITIONS"),
    ],
)
def test_aiops_worker_stops_with_one_clear_line(tmp_path, env, said):
    (tmp_path / "file").write_text("")
    values = {"dead": str(free_port()), "tmp": str(tmp_path)}
    env = {k: v.format(**values) for k, v in env.items()}
    env.setdefault("AIOPS_KAFKA_BOOTSTRAP", f"127.0.0.1:{values['dead']}")
    env.setdefault("AIOPS_WORKER__DATADIR", str(tmp_path / "state"))
    env["AIOPS_WORKER__WEB_PORT"] = str(free_port())
    env["HOME"] = str(tmp_path)
    result = run_cli(["worker"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert said.format(**values) in " ".join(result.stderr.split())
    assert result.stderr.startswith("error:")


def test_doctor_reports_folders_rule_files_and_slack_without_sending(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "topology.yaml").write_text("services: [")
    settings = load_settings(
        env={
            "AIOPS_WORKER__DATADIR": str(tmp_path / "file" / "state"),
            "AIOPS_INCIDENTS__TOPOLOGY_FILE": str(tmp_path / "topology.yaml"),
            "AIOPS_SLACK_BOT_TOKEN": "xoxp-a-user-token",
        }
    )
    [folder] = check_folders(settings)
    assert folder.status is Status.FAIL and "AIOPS_WORKER__DATADIR" in folder.fix
    [rules] = check_rule_files(settings)
    assert rules.status is Status.FAIL and "not valid YAML" in rules.detail
    slack = {f.check: f for f in check_slack(settings)}
    assert slack["slack.bot_token"].status is Status.FAIL
    assert slack["slack.signing_secret"].status is Status.WARN


def test_doctor_on_a_machine_without_a_broker_exits_1_and_says_how_to_start_one(tmp_path):
    dead = free_port()
    env = {
        "HOME": str(tmp_path),
        "AIOPS_KAFKA_BOOTSTRAP": f"127.0.0.1:{dead}",
        "AIOPS_WORKER__WEB_PORT": str(free_port()),
    }
    result = run_cli(["doctor"], env, tmp_path)
    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert f"fail broker: no Kafka broker answers at 127.0.0.1:{dead}" in out
    assert "aiops kafka up" in out
    assert "ok state folder" in out and "1 problem found" in out


@pytest.mark.parametrize("args", [["send", "metrics", "{tmp}/events.jsonl"], ["topics"]])
def test_the_tools_say_an_unreachable_broker_in_one_line(tmp_path, args):
    (tmp_path / "events.jsonl").write_text('{"service": "a"}\n')
    dead = free_port()
    env = {"HOME": str(tmp_path), "AIOPS_KAFKA_BOOTSTRAP": f"127.0.0.1:{dead}"}
    result = run_cli([a.format(tmp=tmp_path) for a in args], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"Kafka at 127.0.0.1:{dead}" in result.stderr and "aiops kafka up" in result.stderr


def test_a_missing_input_file_is_named(tmp_path):
    result = run_cli(["send", "metrics", str(tmp_path / "nope.jsonl")], {}, tmp_path)
    assert result.returncode == 2
    assert f"cannot read {tmp_path / 'nope.jsonl'}: No such file" in " ".join(result.stderr.split())


@pytest.mark.kafka
def test_doctor_finds_an_incidents_topic_without_compaction(kafka, tmp_path):
    import asyncio
    import uuid

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from tests.kafka_harness import PREFIXES

    prefix = f"doctor-{uuid.uuid4().hex[:8]}"
    PREFIXES.add(prefix)
    incidents = f"{prefix}.incidents"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(incidents, 1, 1)])  # cleanup.policy=delete
        finally:
            await admin.close()

    asyncio.run(create())
    env = {
        "HOME": str(tmp_path),
        "AIOPS_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "AIOPS_WORKER__APP_ID": prefix,
        "AIOPS_WORKER__WEB_PORT": str(free_port()),
        "AIOPS_TOPICS__INCIDENTS": incidents,
    }
    result = run_cli(["doctor"], env, tmp_path)
    out = " ".join(result.stdout.split())
    assert result.returncode == 1, out
    assert f"fail compaction: {incidents} has cleanup.policy=delete" in out
    assert "--add-config cleanup.policy=[compact,delete]" in out
    assert "warn topics: not created yet" in out  # the others: the worker creates them


@pytest.mark.kafka
def test_the_worker_warns_at_start_up_of_an_incidents_topic_without_compaction(kafka, tmp_path):
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from tests.kafka_harness import WorkerProcess, unique_prefix

    prefix = unique_prefix("warn")
    incidents = f"{prefix}.incidents"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(incidents, 1, 1)])  # cleanup.policy=delete
        finally:
            await admin.close()

    asyncio.run(create())
    worker = WorkerProcess(kafka.bootstrap, prefix, tmp_path).start()
    try:
        said = " ".join(worker.log_text().split())
        assert f"WARNING streams.worker: compaction: {incidents} has cleanup.policy=delete" in said
        assert "--add-config cleanup.policy=[compact,delete]" in said
        assert "replication:" not in said  # one replica is fine on 127.0.0.1
    finally:
        worker.stop()
