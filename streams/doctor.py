"""``aiops doctor``: what stands between this machine and a running worker, and the fix.

Each check reads, it changes nothing (it creates no folder and no topic, and sends nothing
to Slack); a check that cannot apply says why it was skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from rca.exceptions import ConfigError as RuleFileError
from rca.remediation import load_remediation_rules
from rca.silences import load_silences
from rca.topology import load_topology
from streams.config import Settings
from streams.exceptions import EnvironmentProblem, LocalKafkaError
from streams.kafka_clients import client_options
from streams.localkafka import LocalKafka, broker_answers
from streams.topics import correlation_topic
from streams.worker import check_web_port as worker_port_check


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome: what was checked, what was seen, and how to fix it."""

    status: Status
    check: str
    detail: str
    fix: str = ""


def _writable_from(path: Path) -> tuple[Path, bool]:
    """The nearest existing folder of ``path`` (itself or an ancestor), and whether this
    user can create what is missing below it."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe, probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def check_python() -> Iterator[Finding]:
    yield Finding(Status.OK, "python", f"Python {'.'.join(map(str, sys.version_info[:3]))}")


def check_local_kafka(settings: Settings, local: LocalKafka) -> Iterator[Finding]:
    """Java and Maven matter only for the local broker, and Maven only until it is cached."""
    if settings.kafka.bootstrap != local.bootstrap:
        yield Finding(
            Status.SKIP, "java, maven", f"kafka.bootstrap is {settings.kafka.bootstrap}, not local"
        )
        return
    try:
        java = local.check_java()
        yield Finding(Status.OK, "java", java)
    except LocalKafkaError as exc:
        yield Finding(Status.FAIL, "java", str(exc), "install a JDK 17+ or set JAVA_HOME")
    cached = (local.jars_dir / ".complete").exists()
    mvn = shutil.which("mvn")
    if cached:
        yield Finding(
            Status.OK, "kafka jars", f"Kafka {local.settings.version} in {local.jars_dir}"
        )
    elif mvn:
        yield Finding(
            Status.OK, "maven", f"{mvn}; `aiops kafka up` downloads Kafka once into {local.home}"
        )
    else:
        yield Finding(
            Status.FAIL,
            "maven",
            f"Kafka {local.settings.version} is not cached and `mvn` is not installed",
            "install Maven (`apt-get install maven`), or set AIOPS_KAFKA_BOOTSTRAP",
        )
    yield folder_finding("local kafka folder", local.home, "local_kafka.home")


def folder_finding(check: str, path: Path, setting: str) -> Finding:
    """Whether this user can write ``path``, or create it (with its parents).

    >>> folder_finding("state folder", Path("/proc/1/x"), "worker.datadir").status
    <Status.FAIL: 'fail'>
    """
    path = path.expanduser()
    home, can_write = _writable_from(path)
    if not can_write:
        variable = "AIOPS_" + setting.upper().replace(".", "__")
        return Finding(
            Status.FAIL,
            check,
            f"{path} cannot be written ({home} is not a writable folder)",
            f"set {setting} ({variable}) to a folder this user can write",
        )
    if path.is_dir():
        return Finding(Status.OK, check, str(path))
    return Finding(Status.OK, check, f"{path} (created in {home} when needed)")


def check_folders(settings: Settings) -> Iterator[Finding]:
    yield folder_finding("state folder", Path(settings.worker.datadir), "worker.datadir")
    if settings.slack.render_dir:
        yield folder_finding(
            "slack render folder", Path(settings.slack.render_dir), "slack.render_dir"
        )


def check_rule_files(settings: Settings) -> Iterator[Finding]:
    inc = settings.incidents
    loaders: list[tuple[str, str | None, Callable[[str], object]]] = [
        ("incidents.topology_file", inc.topology_file, load_topology),
        ("incidents.remediation_file", inc.remediation_file, load_remediation_rules),
        ("incidents.silences_file", inc.silences_file, load_silences),
    ]
    for key, path, load in loaders:
        if not path:
            continue
        try:
            load(path)
        except RuleFileError as exc:
            yield Finding(Status.FAIL, key, str(exc), f"correct {path} or unset {key}")
        else:
            yield Finding(Status.OK, key, path)


def check_web_port(settings: Settings) -> Iterator[Finding]:
    host, port = settings.worker.web_host, settings.worker.web_port
    try:
        worker_port_check(settings.worker)
    except EnvironmentProblem as taken:
        problem = taken
    else:
        yield Finding(Status.OK, "web port", f"{host}:{port} is free")
        return
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as reply:
            body = reply.read(200).decode(errors="replace")
        yield Finding(Status.OK, "web port", f"a worker answers on {host}:{port}: {body}")
    except OSError:
        yield Finding(
            Status.FAIL,
            "web port",
            str(problem),
            "set worker.web_port (AIOPS_WORKER__WEB_PORT)",
        )


async def _topic_findings(settings: Settings) -> list[Finding]:
    t = settings.topics
    wanted = [*t.all_names(), correlation_topic(settings)]
    admin = AIOKafkaAdminClient(**client_options(settings.kafka), request_timeout_ms=10_000)
    await admin.start()
    try:
        # only topics that exist are described: a metadata request for a missing one makes
        # a broker with auto.create.topics.enable create it, with the wrong configuration
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([name for name in wanted if name in existing])
        present = {d["topic"]: d for d in described if d.get("error_code", 0) == 0}
        findings: list[Finding] = []
        missing = [name for name in wanted if name not in present]
        if missing:
            findings.append(
                Finding(
                    Status.WARN,
                    "topics",
                    f"not created yet: {', '.join(missing)}",
                    "`aiops worker` (or `aiops topics`) creates them",
                )
            )
        replication = {
            len(d["partitions"][0]["replicas"]) for d in present.values() if d["partitions"]
        }
        if present:
            findings.append(
                Finding(
                    Status.OK,
                    "topics",
                    f"{len(present)} of {len(wanted)} present, replication {sorted(replication)}",
                )
            )
        if replication == {1} and not settings.kafka.bootstrap.startswith("127.0.0.1:"):
            findings.append(
                Finding(
                    Status.WARN,
                    "replication",
                    "topics have one replica: losing a broker loses their data",
                    "for production set topics.replication_factor to 3 before the topics exist",
                )
            )
        if t.incidents in present:
            resource = ConfigResource(ConfigResourceType.TOPIC, t.incidents)
            reply = await admin.describe_configs([resource])
            policy = next(
                (
                    str(entry["config_value"])
                    for response in reply
                    for resource in response.to_object()["resources"]
                    for entry in resource["config_entries"]
                    if entry["config_names"] == "cleanup.policy"
                ),
                "",
            )
            if "compact" in policy:
                findings.append(Finding(Status.OK, "compaction", f"{t.incidents}: {policy}"))
            else:
                findings.append(
                    Finding(
                        Status.FAIL,
                        "compaction",
                        f"{t.incidents} has cleanup.policy={policy or '?'}: snapshots pile up "
                        "and a console or a restarted worker replays every version",
                        f"kafka-configs --alter --entity-type topics --entity-name {t.incidents} "
                        "--add-config cleanup.policy=[compact,delete]",
                    )
                )
        return findings
    finally:
        await admin.close()


async def topic_warnings(settings: Settings) -> list[str]:
    """What the worker says at start-up about its topics: one replica on a remote broker,
    ``aiops.incidents`` not compacted (``aiops doctor`` gives the same findings)."""
    return [
        f"{f.check}: {f.detail}" + (f"; {f.fix}" if f.fix else "")
        for f in await _topic_findings(settings)
        if f.status is not Status.OK and f.check != "topics"
    ]


def check_broker(settings: Settings) -> Iterator[Finding]:
    bootstrap = settings.kafka.bootstrap
    if not asyncio.run(broker_answers(bootstrap)):
        yield Finding(
            Status.FAIL,
            "broker",
            f"no Kafka broker answers at {bootstrap}",
            "start the local one with `aiops kafka up`, or set AIOPS_KAFKA_BOOTSTRAP",
        )
        return
    yield Finding(Status.OK, "broker", f"{bootstrap} answers")
    try:
        yield from asyncio.run(_topic_findings(settings))
    except KafkaError as exc:
        yield Finding(Status.FAIL, "topics", f"cannot describe the topics: {exc}")


def check_slack(settings: Settings) -> Iterator[Finding]:
    slack = settings.slack
    token = slack.bot_token.get_secret_value() if slack.bot_token else ""
    webhook = slack.webhook_url.get_secret_value() if slack.webhook_url else ""
    if not token and not webhook:
        where = slack.render_dir or "the terminal"
        yield Finding(Status.OK, "slack", f"no token nor webhook: messages are rendered to {where}")
        return
    if token and not token.startswith("xoxb-"):
        yield Finding(
            Status.FAIL,
            "slack.bot_token",
            "does not start with xoxb- (a bot token is needed, not a user or app token)",
            "copy the Bot User OAuth Token of the Slack app",
        )
    elif token:
        yield Finding(Status.OK, "slack.bot_token", f"set; default channel {slack.default_channel}")
    if webhook and not webhook.startswith(("https://", "http://")):
        yield Finding(Status.FAIL, "slack.webhook_url", "is not an http(s) URL")
    if token and not slack.signing_secret:
        yield Finding(
            Status.WARN,
            "slack.signing_secret",
            "unset: the buttons (acknowledge, approve, silence) are refused",
            "set AIOPS_SLACK_SIGNING_SECRET to the app's signing secret",
        )


def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in the order a new user meets the problems."""
    local = LocalKafka(settings.local_kafka, say=lambda _line: None)
    findings: list[Finding] = []
    for check in (
        check_python(),
        check_local_kafka(settings, local),
        check_folders(settings),
        check_rule_files(settings),
        check_web_port(settings),
        check_broker(settings),
        check_slack(settings),
    ):
        findings.extend(check)
    return findings
