"""A real Apache Kafka broker on 127.0.0.1, fetched from Maven Central and run on Java.

``aiops kafka up`` resolves ``org.apache.kafka:kafka_2.13`` and its runtime dependencies with
Maven (cached per version outside the checkout), formats KRaft storage once, starts one
combined broker+controller (or, with ``--brokers 3``, three of them forming one controller
quorum) and waits until a client can fetch metadata from each. ``aiops kafka down`` stops
it cleanly. Nothing here is needed when ``AIOPS_KAFKA_BOOTSTRAP`` points at a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from streams.config import LocalKafkaSettings
from streams.exceptions import LocalKafkaError

_READY_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What ``aiops kafka status`` reports."""

    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise LocalKafkaError(f"cannot tell the Java version from `{java} -version`")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


SCRAM_MECHANISM = "SCRAM-SHA-512"


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def broker_answers(
    bootstrap: str, timeout: float = 3.0, scram: tuple[str, str] | None = None
) -> bool:
    """True when a client can fetch cluster metadata from ``bootstrap`` (with ``scram``:
    as that SCRAM-SHA-512 user over SASL_PLAINTEXT)."""
    auth: dict[str, Any] = {}
    if scram is not None:
        auth = {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_plain_username": scram[0],
            "sasl_plain_password": scram[1],
        }
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **auth
    )
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # connection refused is the expected answer while starting
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.describe_cluster(), timeout)
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)


@dataclass(frozen=True, slots=True)
class Node:
    """One broker+controller of the local cluster: its ports and files."""

    node_id: int
    port: int
    controller_port: int
    data_dir: Path
    config_file: Path
    log_file: Path
    pid_file: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class LocalKafka:
    """A local KRaft cluster managed by the project: one combined broker+controller by
    default, or ``settings.brokers`` of them (each a voter of the controller quorum).

    Parameters
    ----------
    settings
        Version, home directory (jar cache, data, logs), ports, heap size and brokers.
    say
        Callback for progress lines shown to the user.
    """

    def __init__(self, settings: LocalKafkaSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say
        home = Path(settings.home).expanduser()
        self.home = home
        self.jars_dir = home / f"kafka-{settings.version}" / "libs"
        if settings.brokers == 1:
            self.nodes = [
                Node(
                    1,
                    settings.port,
                    settings.controller_port,
                    home / "kafka-data",
                    home / "server.properties",
                    home / "kafka.log",
                    home / "kafka.pid",
                )
            ]
        else:
            base = home / f"cluster-{settings.brokers}"
            self.nodes = [
                Node(
                    i + 1,
                    settings.port + 2 * i,
                    settings.controller_port + 2 * i,
                    base / f"node-{i + 1}" / "data",
                    base / f"node-{i + 1}" / "server.properties",
                    base / f"node-{i + 1}" / "kafka.log",
                    base / f"node-{i + 1}" / "kafka.pid",
                )
                for i in range(settings.brokers)
            ]
        first = self.nodes[0]
        self.data_dir = first.data_dir
        self.config_file = first.config_file
        self.log_file = first.log_file
        self.pid_file = first.pid_file

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    def serves(self, bootstrap: str) -> bool:
        """True when every address of ``bootstrap`` is one of this cluster's brokers."""
        mine = {node.address for node in self.nodes} | {
            f"localhost:{node.port}" for node in self.nodes
        }
        return all(part.strip() in mine for part in bootstrap.split(",") if part.strip())

    @property
    def replication(self) -> tuple[int, int]:
        """Replication factor and ``min.insync.replicas`` of the cluster's topics."""
        brokers = len(self.nodes)
        return min(3, brokers), (2 if brokers >= 3 else 1)

    # -- prerequisites -------------------------------------------------------------------

    def check_java(self) -> str:
        """Path of a Java 17+ runtime, or a clear error saying what is missing."""
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise LocalKafkaError(
                "Java 17 or newer is needed to run the local Kafka broker, and no `java` was "
                "found (install a JDK, e.g. `apt-get install openjdk-17-jre-headless`, or set "
                "AIOPS_KAFKA_BOOTSTRAP to use a broker you already run)"
            )
        major = _java_major(java)
        if major < 17:
            raise LocalKafkaError(f"Kafka 4 needs Java 17 or newer; `{java}` is Java {major}")
        return java

    def resolve_jars(self) -> Path:
        """Download the broker and its runtime dependencies once per version."""
        marker = self.jars_dir / ".complete"
        if marker.exists():
            return self.jars_dir
        mvn = shutil.which("mvn")
        if not mvn:
            raise LocalKafkaError(
                "Maven (`mvn`) is needed once to download Kafka "
                f"{self.settings.version} from Maven Central, and it was not found "
                "(install it, e.g. `apt-get install maven`, or set AIOPS_KAFKA_BOOTSTRAP)"
            )
        self.say(f"downloading Apache Kafka {self.settings.version} from Maven Central ...")
        self.jars_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=self.jars_dir.parent))
        pom = resources.files("streams") / "kafka" / "pom.xml"
        with resources.as_file(pom) as pom_path:
            proc = subprocess.run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "-f",
                    str(pom_path),
                    f"-Dkafka.version={self.settings.version}",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise LocalKafkaError(f"Maven could not resolve Kafka {self.settings.version}:\n{tail}")
        if self.jars_dir.exists():
            shutil.rmtree(self.jars_dir)
        staging.rename(self.jars_dir)
        marker.write_text(self.settings.version)
        self.say(f"cached {len(list(self.jars_dir.glob('*.jar')))} jars in {self.jars_dir}")
        return self.jars_dir

    # -- configuration and storage -----------------------------------------------------------

    def write_config(self) -> None:
        s = self.settings
        factor, min_isr = self.replication
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        listener = "SASL_PLAINTEXT" if self.scram else "PLAINTEXT"
        for node in self.nodes:
            props = {
                "process.roles": "broker,controller",
                "node.id": str(node.node_id),
                "controller.quorum.voters": voters,
                "listeners": (
                    f"{listener}://127.0.0.1:{node.port},"
                    f"CONTROLLER://127.0.0.1:{node.controller_port}"
                ),
                "advertised.listeners": f"{listener}://127.0.0.1:{node.port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": listener,
                "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{listener}:{listener}",
                "log.dirs": str(node.data_dir),
                "num.partitions": "4",
                "default.replication.factor": str(factor),
                "min.insync.replicas": str(min_isr),
                "offsets.topic.replication.factor": str(factor),
                "offsets.topic.num.partitions": "8",
                "transaction.state.log.replication.factor": str(factor),
                "transaction.state.log.min.isr": str(min_isr),
                "transaction.state.log.num.partitions": "8",
                "share.coordinator.state.topic.replication.factor": str(factor),
                "share.coordinator.state.topic.min.isr": str(min_isr),
                "group.initial.rebalance.delay.ms": "0",
                "auto.create.topics.enable": "true",
                "message.max.bytes": str(s.max_message_bytes),
                "replica.fetch.max.bytes": str(s.max_message_bytes),
                "log.retention.hours": "24",
                "log.segment.bytes": str(64 * 1024 * 1024),
            }
            if self.scram:
                user, password = (_jaas_quote(v) for v in self.scram)
                props["sasl.enabled.mechanisms"] = SCRAM_MECHANISM
                props["sasl.mechanism.inter.broker.protocol"] = SCRAM_MECHANISM
                props[
                    f"listener.name.sasl_plaintext.{SCRAM_MECHANISM.lower()}.sasl.jaas.config"
                ] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{user}" password="{password}";'
                )
            node.config_file.parent.mkdir(parents=True, exist_ok=True)
            node.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _java_cmd(self, java: str, main: str, *args: str) -> list[str]:
        log_config = resources.files("streams") / "kafka" / "log4j2.properties"
        return [
            java,
            f"-Xmx{self.settings.heap}",
            f"-Xms{self.settings.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log_config}",
            "-cp",
            f"{self.jars_dir}/*",
            main,
            *args,
        ]

    def format_storage(self, java: str) -> None:
        """Format KRaft storage once, every node with the same cluster id (the data
        directories keep it)."""
        unformatted = [n for n in self.nodes if not (n.data_dir / "meta.properties").exists()]
        if not unformatted:
            return
        formatted = [n for n in self.nodes if n not in unformatted]
        cluster_id = _cluster_id(formatted[0].data_dir) if formatted else self._new_cluster_id(java)
        for node in unformatted:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            fmt = subprocess.run(
                self._java_cmd(
                    java,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(node.config_file),
                    *self._scram_format_args(),
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise LocalKafkaError(f"formatting KRaft storage failed: {fmt.stderr[-2000:]}")

    @property
    def scram(self) -> tuple[str, str] | None:
        """The SCRAM user and password the brokers require, if configured."""
        s = self.settings
        if s.scram_username and s.scram_password:
            return s.scram_username, s.scram_password.get_secret_value()
        return None

    def _scram_format_args(self) -> list[str]:
        if not self.scram:
            return []
        user, password = self.scram
        return ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]"]

    def _new_cluster_id(self, java: str) -> str:
        uuid = subprocess.run(
            self._java_cmd(java, "kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=False,
        )
        cluster_id = uuid.stdout.strip().splitlines()[-1] if uuid.stdout.strip() else ""
        if uuid.returncode != 0 or not cluster_id:
            raise LocalKafkaError(f"kafka StorageTool random-uuid failed: {uuid.stderr[-2000:]}")
        return cluster_id

    # -- life cycle --------------------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of the (first) running broker started by us, if any."""
        return self.node_pid(self.nodes[0])

    def node_pid(self, node: Node) -> int | None:
        """Pid of a node's running broker started by us, if any."""
        try:
            pid = int(node.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        try:  # a stopped child not yet reaped by its parent still answers kill(0)
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return None
        except (OSError, IndexError):
            pass
        return pid

    def status(self) -> BrokerStatus:
        pids = [self.node_pid(node) for node in self.nodes]
        return BrokerStatus(
            running=all(p is not None for p in pids),
            pid=pids[0],
            bootstrap=self.bootstrap,
            data_dir=self.data_dir,
            log_file=self.log_file,
        )

    def up(self) -> str:
        """Start the brokers that are not running and return the bootstrap address once
        every one answers."""
        if all(self.node_pid(n) is not None for n in self.nodes) or (
            len(self.nodes) == 1 and asyncio.run(broker_answers(self.bootstrap, scram=self.scram))
        ):
            self.say(f"Kafka is already answering on {self.bootstrap}")
            return self.bootstrap
        java = self.check_java()
        self.resolve_jars()
        self.write_config()
        self.format_storage(java)
        what = "Kafka" if len(self.nodes) == 1 else f"a {len(self.nodes)}-broker Kafka cluster"
        self.say(
            f"starting {what} {self.settings.version} on {self.bootstrap} (log: {self.log_file})"
        )
        procs = {}
        for node in self.nodes:
            if self.node_pid(node) is None:
                procs[node.node_id] = self.start_node(node, java)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        waiting = list(self.nodes)
        while time.monotonic() < deadline:
            for node_id, proc in procs.items():
                if proc.poll() is not None:
                    node = self.nodes[node_id - 1]
                    raise LocalKafkaError(
                        f"Kafka exited with code {proc.returncode} during start-up; "
                        f"last lines of {node.log_file}:\n{self._log_tail(node)}"
                    )
            waiting = [
                n for n in waiting if not asyncio.run(broker_answers(n.address, 2.0, self.scram))
            ]
            if not waiting:
                pids = ", ".join(str(self.node_pid(n)) for n in self.nodes)
                self.say(f"Kafka is ready on {self.bootstrap} (pid {pids})")
                return self.bootstrap
            time.sleep(0.5)
        raise LocalKafkaError(
            f"Kafka did not answer on {waiting[0].address} within {_READY_TIMEOUT_S:.0f}s; "
            f"last lines of {waiting[0].log_file}:\n{self._log_tail(waiting[0])}"
        )

    def start_node(self, node: Node, java: str | None = None) -> subprocess.Popen[bytes]:
        """Start one node's broker (its storage formatted, its config written)."""
        java = java or self.check_java()
        with node.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self._java_cmd(java, "kafka.Kafka", str(node.config_file)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        node.pid_file.write_text(str(proc.pid))
        return proc

    def down(self) -> bool:
        """Stop the brokers cleanly (SIGTERM, then SIGKILL after a grace period)."""
        running: list[tuple[Node, int]] = []
        for node in self.nodes:
            pid = self.node_pid(node)
            if pid is not None:
                running.append((node, pid))
        if not running:
            self.say("no local Kafka broker is running")
            for node in self.nodes:
                node.pid_file.unlink(missing_ok=True)
            return False
        self.say(f"stopping Kafka (pid {', '.join(str(pid) for _, pid in running)}) ...")
        for _, pid in running:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline and any(self.node_pid(n) for n, _ in running):
            time.sleep(0.2)
        for node, pid in running:
            if self.node_pid(node) is not None:
                self.say("Kafka did not stop in time; killing it")
                os.kill(pid, signal.SIGKILL)
        for node in self.nodes:
            node.pid_file.unlink(missing_ok=True)
        self.say("Kafka stopped")
        return True

    def reset(self) -> None:
        """Stop the brokers and delete their data (topics, offsets); the jar cache stays."""
        self.down()
        for node in self.nodes:
            shutil.rmtree(node.data_dir, ignore_errors=True)

    def _log_tail(self, node: Node | None = None, lines: int = 25) -> str:
        log_file = (node or self.nodes[0]).log_file
        try:
            return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _cluster_id(data_dir: Path) -> str:
    """The cluster id a formatted data directory keeps."""
    for line in (data_dir / "meta.properties").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    raise LocalKafkaError(f"{data_dir / 'meta.properties'} names no cluster.id")
