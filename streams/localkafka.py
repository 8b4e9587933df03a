"""A real Apache Kafka broker on 127.0.0.1, fetched from Maven Central and run on Java.

``aiops kafka up`` resolves ``org.apache.kafka:kafka_2.13`` and its runtime dependencies with
Maven (cached per version outside the checkout), formats KRaft storage once, starts one
combined broker+controller and waits until a client can fetch metadata. ``aiops kafka down``
stops it cleanly. Nothing here is needed when ``AIOPS_KAFKA_BOOTSTRAP`` points at a broker.
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


async def broker_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when a client can fetch cluster metadata from ``bootstrap``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
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


class LocalKafka:
    """One local KRaft broker+controller managed by the project.

    Parameters
    ----------
    settings
        Version, home directory (jar cache, data, logs), ports and heap size.
    say
        Callback for progress lines shown to the user.
    """

    def __init__(self, settings: LocalKafkaSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say
        home = Path(settings.home).expanduser()
        self.home = home
        self.jars_dir = home / f"kafka-{settings.version}" / "libs"
        self.data_dir = home / "kafka-data"
        self.config_file = home / "server.properties"
        self.log_file = home / "kafka.log"
        self.pid_file = home / "kafka.pid"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.settings.port}"

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
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{s.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{s.port},CONTROLLER://127.0.0.1:{s.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "message.max.bytes": str(s.max_message_bytes),
            "log.retention.hours": "24",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

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
        """Format KRaft storage once (the data directory keeps the cluster id)."""
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        uuid = subprocess.run(
            self._java_cmd(java, "kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=False,
        )
        cluster_id = uuid.stdout.strip().splitlines()[-1] if uuid.stdout.strip() else ""
        if uuid.returncode != 0 or not cluster_id:
            raise LocalKafkaError(f"kafka StorageTool random-uuid failed: {uuid.stderr[-2000:]}")
        fmt = subprocess.run(
            self._java_cmd(
                java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config_file),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise LocalKafkaError(f"formatting KRaft storage failed: {fmt.stderr[-2000:]}")

    # -- life cycle --------------------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of the running broker started by us, if any."""
        try:
            pid = int(self.pid_file.read_text().strip())
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
        pid = self.pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            data_dir=self.data_dir,
            log_file=self.log_file,
        )

    def up(self) -> str:
        """Start the broker (if not running) and return its bootstrap address once ready."""
        if asyncio.run(broker_answers(self.bootstrap)):
            self.say(f"Kafka is already answering on {self.bootstrap}")
            return self.bootstrap
        java = self.check_java()
        self.resolve_jars()
        self.write_config()
        self.format_storage(java)
        self.say(
            f"starting Kafka {self.settings.version} on {self.bootstrap} (log: {self.log_file})"
        )
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self._java_cmd(java, "kafka.Kafka", str(self.config_file)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalKafkaError(
                    f"Kafka exited with code {proc.returncode} during start-up; "
                    f"last lines of {self.log_file}:\n{self._log_tail()}"
                )
            if asyncio.run(broker_answers(self.bootstrap, timeout=2.0)):
                self.say(f"Kafka is ready on {self.bootstrap} (pid {proc.pid})")
                return self.bootstrap
            time.sleep(0.5)
        raise LocalKafkaError(
            f"Kafka did not answer on {self.bootstrap} within {_READY_TIMEOUT_S:.0f}s; "
            f"last lines of {self.log_file}:\n{self._log_tail()}"
        )

    def down(self) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after a grace period)."""
        pid = self.pid()
        if pid is None:
            self.say("no local Kafka broker is running")
            self.pid_file.unlink(missing_ok=True)
            return False
        self.say(f"stopping Kafka (pid {pid}) ...")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            self.say("Kafka did not stop in time; killing it")
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self.say("Kafka stopped")
        return True

    def reset(self) -> None:
        """Stop the broker and delete its data (topics, offsets); the jar cache stays."""
        self.down()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
