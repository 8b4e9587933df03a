"""Structured log records: OTLP/JSON ``ExportLogsServiceRequest``, Fluent Bit and Vector.

:func:`decode_structured_logs` recognises a parsed JSON message as one of them and
returns None for anything else (the JSON contract, raw lines), so a log decoder can try
it first at the cost of a few key lookups:

* OTLP: an object with ``resourceLogs`` (the Collector's Kafka exporter, ``otlp_json``;
  its ``otlp_proto`` takes the same shape in :mod:`ingest.formats.otlp_proto`);
* Vector: records with ``source_type`` (every Vector source sets it);
* Fluent Bit: records with ``@timestamp`` (the Kafka output's ``timestamp_key``), or
  ``kubernetes`` metadata (the ``kubernetes`` filter) and no contract ``service`` key.

Kubernetes metadata names the service: the ``app.kubernetes.io/name`` or ``app`` pod
label, else the container name (configurable, see :class:`AgentLogMapping`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from detectors.events import LogEvent
from ingest.contract import Decoded, EventError, normalise_level, parse_timestamp
from ingest.exceptions import DecodeError, Reason
from ingest.formats.common import dumps, fail
from ingest.formats.mapping import OtlpMapping, take_first
from ingest.formats.otlp import any_value, array, as_text, attributes, child, first_array, nanos

Path = tuple[str, ...]

# syslog severities, as journald's PRIORITY and numeric level fields give them
_SYSLOG_LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
# numeric levels of the pino and bunyan JSON loggers
_PINO_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "critical"}
# OTLP SeverityNumber ranges, 1-4 TRACE … 21-24 FATAL
_OTLP_LEVELS = ("trace", "debug", "info", "warning", "error", "critical")


class AgentLogMapping(BaseModel, frozen=True, extra="forbid"):
    """Where a log agent's JSON record keeps each part of a log event.

    Every field is a list of paths (a path is a list of nested keys, so that label
    names with dots or slashes stay whole), tried in order; the first present wins.

    Parameters
    ----------
    service
        Paths naming the service.
    host
        Paths naming the host.
    message
        Paths of the log line; a non-string value is kept as JSON.
    timestamp
        Paths of the event time (epoch seconds/ms/µs/ns or RFC 3339).
    level
        Paths of the level (names, syslog severities 0-7, or pino/bunyan's 10-60).
    attributes
        Attribute name -> path, copied when present.
    default_service
        Used when no path names the service.
    """

    service: tuple[Path, ...]
    host: tuple[Path, ...]
    message: tuple[Path, ...]
    timestamp: tuple[Path, ...]
    level: tuple[Path, ...] = (("level",), ("severity",), ("log_level",), ("lvl",))
    attributes: dict[str, Path] = Field(default_factory=dict)
    default_service: str = Field(default="unknown", min_length=1)


_K8S_ATTRIBUTES_FLUENTBIT = {
    "k8s.namespace": ("kubernetes", "namespace_name"),
    "k8s.pod": ("kubernetes", "pod_name"),
    "k8s.container": ("kubernetes", "container_name"),
    "stream": ("stream",),
}
_K8S_ATTRIBUTES_VECTOR = {
    "k8s.namespace": ("kubernetes", "pod_namespace"),
    "k8s.pod": ("kubernetes", "pod_name"),
    "k8s.container": ("kubernetes", "container_name"),
    "stream": ("stream",),
    "source_type": ("source_type",),
}


def fluentbit_mapping() -> AgentLogMapping:
    """Defaults for Fluent Bit records (``tail`` + ``kubernetes`` filter, ``systemd``,
    ``syslog`` inputs)."""
    return AgentLogMapping(
        service=(
            ("kubernetes", "labels", "app.kubernetes.io/name"),
            ("kubernetes", "labels", "app"),
            ("kubernetes", "labels", "k8s-app"),
            ("kubernetes", "container_name"),
            ("service",),
            ("SYSLOG_IDENTIFIER",),
            ("ident",),
        ),
        host=(("kubernetes", "host"), ("host",), ("hostname",), ("_HOSTNAME",)),
        message=(("log",), ("message",), ("msg",), ("MESSAGE",)),
        timestamp=(("@timestamp",), ("date",), ("time",), ("timestamp",)),
        level=(("level",), ("severity",), ("log_level",), ("lvl",), ("PRIORITY",), ("pri",)),
        attributes=_K8S_ATTRIBUTES_FLUENTBIT,
    )


def vector_mapping() -> AgentLogMapping:
    """Defaults for Vector records (``kubernetes_logs``, ``docker_logs``, ``syslog``,
    ``file`` sources)."""
    return AgentLogMapping(
        service=(
            ("kubernetes", "pod_labels", "app.kubernetes.io/name"),
            ("kubernetes", "pod_labels", "app"),
            ("kubernetes", "pod_labels", "k8s-app"),
            ("kubernetes", "container_name"),
            ("service",),
            ("appname",),
            ("container_name",),
        ),
        host=(("kubernetes", "pod_node_name"), ("host",), ("hostname",)),
        message=(("message",), ("log",)),
        timestamp=(("timestamp",), ("@timestamp",)),
        level=(("level",), ("severity",), ("log_level",)),
        attributes=_K8S_ATTRIBUTES_VECTOR,
    )


class StructuredLogConfig(BaseModel, frozen=True, extra="forbid"):
    """Mapping rules of the structured log formats.

    >>> StructuredLogConfig().otlp.service
    ('service.name',)
    """

    otlp: OtlpMapping = OtlpMapping()
    fluentbit: AgentLogMapping = Field(default_factory=fluentbit_mapping)
    vector: AgentLogMapping = Field(default_factory=vector_mapping)


_DEFAULT_CONFIG = StructuredLogConfig()


def _lookup(record: dict[str, Any], path: Path) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
        if value is None:
            return None
    return value


def _first_text(record: dict[str, Any], paths: tuple[Path, ...]) -> str | None:
    for path in paths:
        text = as_text(_lookup(record, path))
        if text:
            return text
    return None


def _level(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw.isdigit():
        number = int(raw)
        if number < len(_SYSLOG_LEVELS):
            return _SYSLOG_LEVELS[number]
        return _PINO_LEVELS.get(number)
    return normalise_level(raw) or raw.strip().lower() or None


def _agent_record(record: Any, mapping: AgentLogMapping) -> LogEvent:
    if not isinstance(record, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "a record must be a JSON object")
    message: Any = None
    for path in mapping.message:
        message = _lookup(record, path)
        if message is not None:
            break
    if message is None:
        names = ", ".join(".".join(path) for path in mapping.message)
        raise DecodeError(Reason.MISSING_FIELD, f"the record has none of the fields {names}")
    if not isinstance(message, str):
        message = dumps(message).decode()
    raw_time: Any = None
    time_path: Path = ()
    for time_path in mapping.timestamp:
        raw_time = _lookup(record, time_path)
        if raw_time is not None:
            break
    if raw_time is None:
        names = ", ".join(".".join(path) for path in mapping.timestamp)
        raise DecodeError(Reason.MISSING_FIELD, f"the record has none of the fields {names}")
    timestamp = parse_timestamp(raw_time, ".".join(time_path))
    found = {}
    for name, path in mapping.attributes.items():
        text = as_text(_lookup(record, path))
        if text:
            found[name] = text
    return LogEvent(
        timestamp=timestamp,
        service=_first_text(record, mapping.service) or mapping.default_service,
        message=message.rstrip("\r\n"),
        level=_level(_first_text(record, mapping.level)),
        host=_first_text(record, mapping.host),
        attributes=tuple(sorted(found.items())),
    )


def _decode_agent(parsed: Any, mapping: AgentLogMapping, fmt: str) -> Decoded[LogEvent]:
    out: Decoded[LogEvent] = Decoded()
    records = parsed if isinstance(parsed, list) else [parsed]
    for index, record in enumerate(records):
        try:
            out.events.append(_agent_record(record, mapping))
        except DecodeError as exc:
            where = f"[{index}]" if isinstance(parsed, list) else "record"
            out.errors.append(
                EventError(index, fail(fmt, where, exc.reason, exc.detail), dumps(record))
            )
    return out


def _otlp_level(record: dict[str, Any]) -> str | None:
    text = record.get("severityText")
    if isinstance(text, str) and text:
        level = normalise_level(text)
        if level:
            return level
    number = record.get("severityNumber")
    if isinstance(number, str):  # the enum's name, e.g. SEVERITY_NUMBER_WARN
        return normalise_level(number.rsplit("_", 1)[-1].rstrip("01234"))
    if isinstance(number, int) and 1 <= number <= 24:
        return _OTLP_LEVELS[(number - 1) // 4]
    return text.lower() if isinstance(text, str) and text else None


def _otlp_record(record: Any, resource: dict[str, str], mapping: OtlpMapping) -> LogEvent:
    if not isinstance(record, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "a logRecord must be an object")
    timestamp = nanos(record, "timeUnixNano")
    if timestamp is None:
        timestamp = nanos(record, "observedTimeUnixNano")
    if timestamp is None:
        raise DecodeError(
            Reason.MISSING_FIELD, "the record has neither timeUnixNano nor observedTimeUnixNano"
        )
    body = any_value(record.get("body"))
    message = body if isinstance(body, str) else (as_text(body) or "")
    attrs = attributes(record.get("attributes"))
    _, service = take_first(resource, mapping.service)
    if service is None:
        key, service = take_first(attrs, mapping.service)
        attrs.pop(key or "", None)
    _, host = take_first(resource, mapping.host)
    for name in mapping.resource_labels:
        if name in resource:
            attrs.setdefault(name, resource[name])
    for field, name in (("traceId", "trace_id"), ("spanId", "span_id")):
        value = record.get(field)
        if isinstance(value, str) and value:
            attrs[name] = value
    return LogEvent(
        timestamp=timestamp,
        service=service or mapping.default_service,
        message=message,
        level=_otlp_level(record),
        host=host,
        attributes=tuple(sorted(attrs.items())),
    )


def decode_otlp_logs(
    parsed: dict[str, Any], mapping: OtlpMapping, *, fmt: str = "otlp"
) -> Decoded[LogEvent]:
    """Decode a parsed ``ExportLogsServiceRequest``; each bad record is reported alone.

    Error details start with ``fmt``, the name of the encoding the request came in.

    >>> d = decode_otlp_logs({"resourceLogs": [{"resource": {"attributes": [
    ...     {"key": "service.name", "value": {"stringValue": "cart"}}]},
    ...     "scopeLogs": [{"logRecords": [{"timeUnixNano": "1700000000000000000",
    ...     "severityNumber": 17, "body": {"stringValue": "payment declined"}}]}]}]},
    ...     OtlpMapping())
    >>> e = d.events[0]
    >>> e.service, e.level, e.message, e.timestamp
    ('cart', 'error', 'payment declined', 1700000000.0)
    """
    out: Decoded[LogEvent] = Decoded()
    ordinal = -1
    try:
        resources = array(parsed, "resourceLogs")
    except DecodeError as exc:
        raise fail(fmt, "", exc.reason, exc.detail) from None
    for r, resource_logs in enumerate(resources):
        try:
            if not isinstance(resource_logs, dict):
                raise DecodeError(Reason.WRONG_TYPE, "must be an object")
            resource = attributes(child(resource_logs, "resource").get("attributes"))
            scope_key, scopes = first_array(
                resource_logs, "scopeLogs", "instrumentationLibraryLogs"
            )
        except DecodeError as exc:
            ordinal += 1
            out.errors.append(
                EventError(
                    ordinal,
                    fail(fmt, f"resourceLogs[{r}]", exc.reason, exc.detail),
                    dumps(resource_logs),
                )
            )
            continue
        for s, scope_logs in enumerate(scopes):
            where_s = f"resourceLogs[{r}].{scope_key}[{s}]"
            try:
                if not isinstance(scope_logs, dict):
                    raise DecodeError(Reason.WRONG_TYPE, "must be an object")
                records = array(scope_logs, "logRecords")
            except DecodeError as exc:
                ordinal += 1
                out.errors.append(
                    EventError(
                        ordinal, fail(fmt, where_s, exc.reason, exc.detail), dumps(scope_logs)
                    )
                )
                continue
            for i, record in enumerate(records):
                ordinal += 1
                try:
                    out.events.append(_otlp_record(record, resource, mapping))
                except DecodeError as exc:
                    where = f"{where_s}.logRecords[{i}]"
                    out.errors.append(
                        EventError(
                            ordinal,
                            fail(fmt, where, exc.reason, exc.detail),
                            dumps(record),
                        )
                    )
    if ordinal < 0:
        raise fail(fmt, "", Reason.EMPTY, "the request has no log record")
    return out


def structured_log_format(parsed: Any) -> str | None:
    """``otlp``, ``vector``, ``fluentbit`` or None, by the shape of a parsed message.

    >>> structured_log_format({"source_type": "kubernetes_logs", "message": "hi"})
    'vector'
    >>> structured_log_format({"timestamp": 1, "service": "a", "message": "b"}) is None
    True
    """
    probe = parsed[0] if isinstance(parsed, list) and parsed else parsed
    if not isinstance(probe, dict):
        return None
    if "resourceLogs" in probe:
        return "otlp" if probe is parsed else None
    if "source_type" in probe:
        return "vector"
    # a contract event may carry extra keys: "kubernetes" alone does not outweigh "service"
    if "@timestamp" in probe or ("kubernetes" in probe and "service" not in probe):
        return "fluentbit"
    return None


def decode_structured_logs(
    parsed_json: Any, *, config: StructuredLogConfig | None = None
) -> Decoded[LogEvent] | None:
    """Log events of an OTLP, Vector or Fluent Bit message; None when it is none of them.

    Parameters
    ----------
    parsed_json
        The message, already parsed (one object, or an array of records).
    config
        Mapping rules; the defaults suit the producers' default configurations.

    Raises :class:`~ingest.exceptions.DecodeError` when the message is recognised but
    unusable as a whole (an OTLP request without any record).

    >>> d = decode_structured_logs({"@timestamp": 1700000000.5, "log": "GET /cart 500\\n",
    ...     "stream": "stdout", "kubernetes": {"pod_name": "cart-5d8f", "namespace_name":
    ...     "shop", "labels": {"app": "cart"}, "host": "node-1", "container_name": "cart"}})
    >>> e = d.events[0]
    >>> e.service, e.host, e.message, e.timestamp
    ('cart', 'node-1', 'GET /cart 500', 1700000000.5)
    """
    fmt = structured_log_format(parsed_json)
    if fmt is None:
        return None
    config = config or _DEFAULT_CONFIG
    if fmt == "otlp":
        return decode_otlp_logs(parsed_json, config.otlp)
    if fmt == "vector":
        return _decode_agent(parsed_json, config.vector, "vector")
    return _decode_agent(parsed_json, config.fluentbit, "fluentbit")
