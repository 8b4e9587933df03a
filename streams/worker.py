"""``aiops worker``: create the topics, then run the Faust app until stopped."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import faust
from aiokafka.errors import KafkaError

from detectors.metric import warm_up
from rca.remediation import load_remediation_rules
from rca.silences import load_silences
from rca.topology import load_topology
from streams.app import create_app
from streams.config import Settings, WorkerSettings
from streams.exceptions import EnvironmentProblem
from streams.topics import ensure_topics

# A worker holds millions of long-lived objects (a detector per series); with Python's
# default first-generation threshold (700 allocations) the collector runs so often, and its
# full passes walk so much, that at 100,000 series a quarter of the CPU went to it, with
# pauses of 0.7 s. The pipeline creates few reference cycles, so collecting rarely is safe.
GC_THRESHOLDS = (100_000, 50, 100)

TOPIC_ROLES = (
    "metrics",
    "logs",
    "alerts",
    "anomalies",
    "incidents",
    "actions",
    "deadletter",
    "control",
    "series",
)


def subprocess_env(
    *,
    bootstrap: str,
    app_id: str,
    web_port: int,
    datadir: Path,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of an ``aiops worker`` subprocess of its own, as tests and benchmarks
    start them: this process's environment without its ``AIOPS_*`` settings, the worker's
    topics named ``<app_id>.<role>``, warnings only, then ``overrides``.

    >>> env = subprocess_env(
    ...     bootstrap="127.0.0.1:9092", app_id="t-1", web_port=6066, datadir=Path("/tmp/t-1"),
    ...     overrides={"AIOPS_WORKER__LOG_LEVEL": "info"},
    ... )
    >>> env["AIOPS_TOPICS__METRICS"], env["AIOPS_WORKER__LOG_LEVEL"]
    ('t-1.metrics', 'info')
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "AIOPS_KAFKA_BOOTSTRAP": bootstrap,
            "AIOPS_WORKER__APP_ID": app_id,
            "AIOPS_WORKER__WEB_PORT": str(web_port),
            "AIOPS_WORKER__DATADIR": str(datadir),
            "AIOPS_WORKER__LOG_LEVEL": "warning",
        }
    )
    for role in TOPIC_ROLES:
        env[f"AIOPS_TOPICS__{role.upper()}"] = f"{app_id}.{role}"
    env.update(overrides or {})
    return env


def prepare_datadir(worker: WorkerSettings) -> Path:
    """Create the worker's state folder with its parents, and check that it can write there.

    Raises :class:`EnvironmentProblem` naming the folder and the setting that moves it.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> prepare_datadir(WorkerSettings(datadir=str(root / "a" / "b"))).is_dir()
    True
    """
    path = Path(worker.datadir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-check-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot write the worker's state folder {path} ({exc.strerror}); "
            "set worker.datadir (AIOPS_WORKER__DATADIR) to a folder this user can write"
        ) from None
    return path


def check_web_port(worker: WorkerSettings) -> None:
    """Fail early, in one line, when the web port is taken (Faust would show a traceback)."""
    with socket.socket(socket.AF_INET6 if ":" in worker.web_host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server does
        try:
            sock.bind((worker.web_host, worker.web_port))
        except OSError as exc:
            hint = (
                "another process (a second worker?) listens there"
                if exc.errno == errno.EADDRINUSE
                else exc.strerror
            )
            raise EnvironmentProblem(
                f"the web port {worker.web_host}:{worker.web_port} cannot be used ({hint}); "
                "set worker.web_port (AIOPS_WORKER__WEB_PORT) or worker.web_host"
            ) from None


def check_rule_files(settings: Settings) -> None:
    """Read the topology, remediation and silence files before anything connects, so that a
    bad one stops start-up at once (``rca.exceptions.ConfigError`` names file and rule)."""
    inc = settings.incidents
    if inc.topology_file:
        load_topology(inc.topology_file)
    if inc.remediation_file:
        load_remediation_rules(inc.remediation_file)
    if inc.silences_file:
        load_silences(inc.silences_file)


async def create_topics(settings: Settings) -> list[str]:
    """:func:`ensure_topics`, with an unreachable broker said in one line (the client's own
    connection errors are kept out of the log meanwhile: the line says it all)."""
    client_log = logging.getLogger("aiokafka")
    level, propagate = client_log.level, client_log.propagate
    said = _Collect()
    client_log.addHandler(said)  # the client says why it could not connect only in its log
    client_log.setLevel(logging.ERROR)
    client_log.propagate = False
    try:
        return await ensure_topics(settings)
    except KafkaError as exc:
        kafka = settings.kafka
        refused = next((m for m in said.messages if "Authentication" in m), None)
        if refused is not None:
            raise EnvironmentProblem(
                f"the Kafka broker at {kafka.bootstrap} refused the credentials of "
                f"kafka.sasl_username {kafka.sasl_username!r} ({kafka.sasl_mechanism}): "
                f"{refused.split(': ', 1)[-1]}; check kafka.sasl_username and "
                "kafka.sasl_password (AIOPS_KAFKA__SASL_PASSWORD)"
            ) from None
        raise EnvironmentProblem(
            f"no Kafka broker answers at {kafka.bootstrap} ({type(exc).__name__}); "
            "start the local one with `aiops kafka up`, or set kafka.bootstrap "
            "(AIOPS_KAFKA_BOOTSTRAP) to your brokers"
        ) from None
    finally:
        client_log.removeHandler(said)
        client_log.setLevel(level)
        client_log.propagate = propagate


class _Collect(logging.Handler):
    """Keeps the messages of the records it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_worker(settings: Settings) -> int:
    """Run one worker process; several share the work through Kafka's consumer group."""
    level = settings.worker.log_level.upper()
    logging.basicConfig(level=level, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    prepare_datadir(settings.worker)
    check_web_port(settings.worker)
    check_rule_files(settings)
    created = asyncio.run(create_topics(settings))
    log = logging.getLogger(__name__)
    if created:
        log.info("created topics: %s", ", ".join(created))
    from streams.doctor import topic_warnings  # the doctor imports this module

    for warning in asyncio.run(topic_warnings(settings)):
        log.warning("%s", warning)
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    warm_up()  # compiled detector code loads now, not on the first batch
    gc.collect()
    gc.freeze()  # start-up objects (modules, settings, the app) are never collected
    gc.set_threshold(*GC_THRESHOLDS)
    worker = faust.Worker(app, loglevel=level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG (to spin on every record) when
    # the level is WARNING or above: every debug line of the Kafka clients would then be
    # formatted, several per message.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
