"""One settings object, read once at start-up from a YAML file and ``AIOPS_*`` variables.

Precedence: defaults < YAML file (``--config`` or ``AIOPS_CONFIG``) < environment.
Environment variables name a key by its path with ``__`` between levels, e.g.
``AIOPS_TOPICS__PARTITIONS=8``; a few common ones have short forms (see ``ENV_ALIASES``).
A bad value stops start-up with a :class:`~streams.exceptions.ConfigError` naming the file
(or variable), the key and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from detectors.forecast import ForecastConfig
from detectors.logs import LogDetectionConfig
from detectors.metric import MetricDetectionConfig
from ingest.alerts import AlertIngestConfig
from ingest.logs import LogIngestConfig
from ingest.metrics import MetricIngestConfig
from notify.config import SlackConfig
from notify.pagerduty import PagerDutyConfig
from notify.webhook import WebhookConfig
from rca.config import RcaConfig
from streams.exceptions import ConfigError

ENV_PREFIX = "AIOPS_"
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "AIOPS_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "AIOPS_SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "AIOPS_SLACK_WEBHOOK_URL": ("slack", "webhook_url"),
    "AIOPS_SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "AIOPS_LOG_LEVEL": ("worker", "log_level"),
}
_NOT_KEYS = {"AIOPS_CONFIG"}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """How clients reach Kafka. Security settings pass through to aiokafka."""

    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "aiops-stream"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @field_validator("bootstrap")
    @classmethod
    def _hosts(cls, value: str) -> str:
        for hostport in value.split(","):
            host, sep, port = hostport.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value


class TopicSettings(_Section):
    """Topic names and how they are created when missing."""

    metrics: str = "telemetry.metrics"
    logs: str = "telemetry.logs"
    alerts: str = "telemetry.alerts"
    anomalies: str = "aiops.anomalies"
    incidents: str = "aiops.incidents"
    actions: str = "aiops.actions"
    deadletter: str = "aiops.deadletter"
    control: str = "aiops.control"
    series: str = "aiops.series"
    """Recent points of each series with a recent anomaly (compacted), for consoles' charts."""
    partitions: int = Field(default=4, ge=1, le=1024)
    correlation_partitions: int = Field(default=1, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=10)

    def all_names(self) -> list[str]:
        return [
            self.metrics,
            self.logs,
            self.alerts,
            self.anomalies,
            self.incidents,
            self.actions,
            self.deadletter,
            self.control,
            self.series,
        ]


class WorkerSettings(_Section):
    """The Faust worker process."""

    app_id: str = "aiops-stream"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    datadir: str = "~/.local/state/aiops-stream"
    max_message_bytes: int = Field(default=1_048_576, ge=1024)
    max_dead_letters_per_message: int = Field(default=100, ge=1)
    """Dead-letter records one input message may produce; the rejected elements past it
    share one ``too_many_errors`` record (see ``streams.deadletter.element_letters``)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    commit_interval_s: float = Field(default=1.0, gt=0)
    session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=5000)
    api_token: SecretStr | None = None
    """Bearer token the web port's API (``/api/...``) requires; none: the API is open."""
    max_request_bytes: int = Field(default=16 * 1_048_576, ge=1024)
    """Largest body the web port takes (an Alertmanager group of thousands of alerts)."""
    series_interval_s: float = Field(default=10.0, ge=0.5)
    """How often (wall time) the recent points of series with a recent anomaly are published
    to the series topic, each only when it has new points."""


class ConsoleSettings(_Section):
    """The incident console (``aiops console``): web UI and HTTP API over the topics."""

    host: str = "127.0.0.1"
    """Address to bind; the console listens on this machine only unless told otherwise."""
    port: int = Field(default=6067, ge=1, le=65535)
    tokens: dict[str, SecretStr] = Field(default_factory=dict, repr=False)
    """Bearer tokens by name (``{ci-bot: "..."}``); the name is who the timeline says acted."""
    users: dict[str, SecretStr] = Field(default_factory=dict, repr=False)
    """Passwords by user name, for the sign-in page and basic auth."""
    read_without_login: bool = False
    """Let anyone who reaches the port read incidents (changes still need credentials)."""
    open_access: bool = False
    """No credentials at all, every request acts as ``anonymous`` (a local demo only)."""
    session_hours: float = Field(default=12.0, gt=0, le=720)
    max_versions: int = Field(default=200, ge=1, le=100_000)
    """Snapshot versions kept per incident for its history page."""
    max_incidents: int = Field(default=100_000, ge=100)

    @field_validator("tokens", "users", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """An empty variable (``AIOPS_CONSOLE__USERS=``, as Compose passes an unset one)
        means none."""
        return {} if value is None or value == "" else value


class LocalKafkaSettings(_Section):
    """The broker that ``aiops kafka up`` fetches from Maven Central and runs."""

    version: str = Field(default="4.4.0", pattern=r"^4\.\d+\.\d+$")
    home: str = "~/.cache/aiops-stream"
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
    heap: str = Field(default="512m", pattern=r"^\d+[mMgG]$")
    max_message_bytes: int = Field(default=8 * 1_048_576, ge=1024)
    brokers: int = Field(default=1, ge=1, le=5)
    """Brokers of the local cluster (``aiops kafka up --brokers 3``); node ``i`` (from 0)
    listens on ``port + 2i`` and ``controller_port + 2i``. With three or more, topics are
    replicated three times with ``min.insync.replicas`` 2."""
    scram_username: str | None = None
    scram_password: SecretStr | None = None
    """With both set, the brokers listen with SASL_PLAINTEXT and SCRAM-SHA-512 only, and
    this user is created when the storage is formatted (a fresh home: ``aiops kafka reset``
    first); the worker then needs ``kafka.security_protocol: SASL_PLAINTEXT``,
    ``kafka.sasl_mechanism: SCRAM-SHA-512`` and the same user and password."""


class IngestSettings(_Section):
    """How input messages are decoded (formats, service/host/name mapping)."""

    metrics: MetricIngestConfig = MetricIngestConfig()
    logs: LogIngestConfig = LogIngestConfig()
    alerts: AlertIngestConfig = AlertIngestConfig()


class DetectionSettings(_Section):
    """Online detectors: per metric series, per log stream, and forecasts."""

    metrics: MetricDetectionConfig = MetricDetectionConfig()
    logs: LogDetectionConfig = LogDetectionConfig()
    forecast: ForecastConfig = ForecastConfig()
    checkpoint_interval_s: float = Field(default=60.0, gt=0)


class IncidentSettings(_Section):
    """Correlation, root cause, remediation and silences; rule files are YAML.

    The engine is ticked every ``tick_interval_s`` of wall time; its clock moves in
    event-time steps of at most ``step_s``, so a backlog is worked through as if live.
    """

    engine: RcaConfig = RcaConfig()
    topology_file: str | None = None
    remediation_file: str | None = None
    silences_file: str | None = None
    tick_interval_s: float = Field(default=1.0, gt=0)
    step_s: float = Field(default=10.0, gt=0)


class Settings(_Section):
    """Every setting of aiops-stream; see ``docs/configuration.md``."""

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    worker: WorkerSettings = WorkerSettings()
    console: ConsoleSettings = ConsoleSettings()
    local_kafka: LocalKafkaSettings = LocalKafkaSettings()
    ingest: IngestSettings = IngestSettings()
    detection: DetectionSettings = DetectionSettings()
    incidents: IncidentSettings = IncidentSettings()
    slack: SlackConfig = SlackConfig()
    pagerduty: PagerDutyConfig = PagerDutyConfig()
    webhook: WebhookConfig = WebhookConfig()


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[tuple[str, ...], Any]]:
    out: dict[str, tuple[tuple[str, ...], Any]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_KEYS:
            continue
        if name in ENV_ALIASES:
            path = ENV_ALIASES[name]
        elif "__" in name:
            path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        else:
            continue  # AIOPS_* names that are not settings (e.g. test switches)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, dict | list) or value is None:
            value = raw if value is None else value
        out[name] = (path, value)
    return out


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _describe(err: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for item in err.errors():
        loc = tuple(str(p) for p in item["loc"])
        key = ".".join(loc)
        where = next((origin[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in origin), None)
        problem = item["msg"]
        if item["type"] == "extra_forbidden":
            problem = "unknown key"
        got = item.get("input")
        shown = "" if item["type"] == "extra_forbidden" else f" (got {got!r})"
        lines.append(f"  {where + ': ' if where else ''}key '{key}': {problem}{shown}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once: YAML file (optional), then ``AIOPS_*`` overrides.

    >>> load_settings(env={"AIOPS_TOPICS__PARTITIONS": "8"}).topics.partitions
    8
    """
    env = env if env is not None else {}
    if path is None and env.get("AIOPS_CONFIG"):
        path = env["AIOPS_CONFIG"]
    data: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    if path is not None:
        file = Path(path)
        try:
            loaded = yaml.safe_load(file.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {file}: the top level must be a mapping of sections")
        data = loaded
        for key, section in loaded.items():
            origin[(str(key),)] = str(file)
            if isinstance(section, dict):
                for sub in section:
                    origin[(str(key), str(sub))] = str(file)
    for name, (key_path, value) in _env_overrides(env).items():
        _set_path(data, key_path, value)
        origin[key_path] = f"environment variable {name}"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n" + _describe(exc, origin)) from None
