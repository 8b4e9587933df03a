"""Decoding one Kafka message of ``telemetry.logs``: JSON records, OTLP protobuf or raw
text lines.

A binary message that starts as an OTLP export request does is an OTLP protobuf
``ExportLogsServiceRequest`` (:mod:`ingest.formats.otlp_proto`). A message is JSON when
its first non-blank byte is ``{`` or ``[`` and it parses: then it is an OTLP / Fluent Bit
/ Vector record (:mod:`ingest.formats.structured_logs`) or the JSON contract
(:mod:`ingest.contract`). Otherwise it is one or more raw lines, newline separated, each
RFC 5424, RFC 3164, ISO-dated syslog or plain (:mod:`ingest.syslog`); a line starting
with a blank continues the previous one (stack traces).

The service of a raw line is, in order: the first matching :class:`ServiceRule`; the
structured-data parameter named by ``service_param``; the syslog app-name; the host;
``default_service``. ``aliases`` then renames it.

Any other message that is not UTF-8 text, or holds control characters other than tab,
carriage return, newline and escape, is rejected as a whole: binary data never becomes
log lines.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, Field, field_validator

from detectors.events import LogEvent
from ingest.contract import (
    Decoded,
    EventError,
    decode_objects,
    log_from_obj,
    normalise_level,
    without_bom,
)
from ingest.exceptions import DecodeError, Reason
from ingest.formats.otlp_proto import looks_like_otlp_proto, parse_request
from ingest.formats.structured_logs import (
    StructuredLogConfig,
    decode_otlp_logs,
    decode_structured_logs,
)
from ingest.header import HeaderLearner
from ingest.identity import screen
from ingest.line_format import HOST_FIELDS, TIME_FIELDS, LineFormatRule
from ingest.syslog import LineFormat, SyslogRecord, parse_line

ServiceSource = Literal["param", "app_name", "host"]

# C0 controls other than \t \n \r and ESC (colour codes), plus DEL.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_JSON_START = frozenset(b"{[")
_WHITESPACE = b" \t\r\n"


class ServiceRule(BaseModel, frozen=True, extra="forbid"):
    """Names the service of the raw lines whose ``source`` matches ``pattern``.

    Parameters
    ----------
    source
        What the pattern is matched against: the syslog app-name, the host or the
        message body.
    pattern
        A regular expression, searched (not anchored).
    service
        The service; may refer to groups of the match (``\\1``, ``\\g<name>``).

    >>> rule = ServiceRule(source="host", pattern=r"^(\\w+)-\\d+$", service=r"\\1")
    >>> rule.apply("cart-7")
    'cart'
    """

    source: Literal["app_name", "host", "message"]
    pattern: str
    service: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    def apply(self, text: str | None) -> str | None:
        """The service this rule gives ``text``, or None when it does not match."""
        if text is None:
            return None
        m = re.search(self.pattern, text)
        return m.expand(self.service) if m else None


class LogIngestConfig(BaseModel, frozen=True, extra="forbid"):
    """How messages of a logs topic are decoded.

    Parameters
    ----------
    default_service
        Service of raw lines that nothing else names.
    rules
        Service rules for raw lines, first match wins.
    service_from
        Where else to take the service of a raw line, in order.
    service_param
        Name of the RFC 5424 structured-data parameter that names the service (in any
        SD element), e.g. ``service`` for ``[meta service="cart"]``.
    aliases
        Renames applied to the service found (``{"sshd": "auth"}``).
    timezone
        IANA zone of the dates that carry none (RFC 3164, most plain lines).
    max_line_chars
        Longer messages are cut to this length.
    structured
        Mapping rules of OTLP, Fluent Bit and Vector JSON records.
    line_formats
        Header formats of raw lines (:class:`~ingest.line_format.LineFormatRule`), tried in
        order before syslog framing; a line that matches none is decoded as before.
    learn_headers, header_sample_lines
        Learn the header layout of each stream's raw lines of no known framing from the
        lines themselves (:mod:`ingest.header`) and split it off; the layout may be learnt
        again within a stream's first ``header_sample_lines`` lines.
    """

    default_service: str = Field(default="unknown", min_length=1)
    rules: tuple[ServiceRule, ...] = ()
    service_from: tuple[ServiceSource, ...] = ("param", "app_name", "host")
    service_param: str = "service"
    aliases: dict[str, str] = Field(default_factory=dict)
    timezone: str = "UTC"
    max_line_chars: int = Field(default=16_384, ge=64)
    structured: StructuredLogConfig = StructuredLogConfig()
    line_formats: tuple[LineFormatRule, ...] = ()
    learn_headers: bool = True
    header_sample_lines: int = Field(default=50, ge=1)

    def header_learner(self) -> HeaderLearner | None:
        """A learner of these settings, or None when headers are not learnt."""
        if not self.learn_headers:
            return None
        return HeaderLearner(sample_lines=self.header_sample_lines)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def zone(self) -> tzinfo:
        """The :attr:`timezone` as a tzinfo."""
        return _zone(self.timezone)


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def decode_log_message(
    payload: bytes,
    *,
    config: LogIngestConfig,
    max_bytes: int,
    received_at: float | None = None,
    headers: HeaderLearner | None = None,
    stream: str = "",
) -> Decoded[LogEvent]:
    """Decode one Kafka message of ``telemetry.logs``.

    Parameters
    ----------
    payload
        The message value.
    config
        Service mapping and parsing rules.
    max_bytes
        Larger messages are rejected (:attr:`Reason.OVERSIZED`).
    received_at
        Epoch seconds of receipt (the Kafka record timestamp): the time of raw lines that
        carry none, and the reference for the year of RFC 3164 dates. Defaults to now.
    headers, stream
        With a learner, raw lines of no known framing are split by the header layout
        learnt for ``stream`` (see :mod:`ingest.header`); their ``format`` is ``learned``
        and a logger name goes to the ``logger`` attribute.

    Raises :class:`DecodeError` when the message as a whole is unusable; bad elements of
    an array, unusable lines and events whose names break the limits of
    :mod:`ingest.identity` are reported in :attr:`Decoded.errors`.

    Examples
    --------
    >>> cfg = LogIngestConfig(aliases={"sshd": "auth"})
    >>> d = decode_log_message(b"<38>Nov 26 18:00:00 bastion sshd[811]: Failed password "
    ...                        b"for root from 10.0.0.9 port 22 ssh2", config=cfg,
    ...                        max_bytes=65536, received_at=1795716000.0)
    >>> e = d.events[0]
    >>> e.service, e.host, e.level, e.message
    ('auth', 'bastion', 'info', 'Failed password for root from 10.0.0.9 port 22 ssh2')
    >>> decode_log_message(b"\\x00\\x01\\x02binary", config=cfg, max_bytes=100)
    Traceback (most recent call last):
    ...
    ingest.exceptions.DecodeError: unknown_format: not a text message: control byte 0x00 at offset 0
    """
    body = without_bom(payload)
    decoded = _decode_log_message(body, config, max_bytes, received_at, headers, stream)
    return screen(decoded, payload)


def _decode_log_message(
    payload: bytes,
    config: LogIngestConfig,
    max_bytes: int,
    received_at: float | None,
    headers: HeaderLearner | None,
    stream: str,
) -> Decoded[LogEvent]:
    if len(payload) > max_bytes:
        raise DecodeError(
            Reason.OVERSIZED, f"message is {len(payload)} bytes, the limit is {max_bytes}"
        )
    if looks_like_otlp_proto(payload):
        request = parse_request(payload, "logs")
        return decode_otlp_logs(request, config.structured.otlp, fmt="otlp_proto")
    stripped = payload.lstrip(_WHITESPACE)
    if not stripped:
        raise DecodeError(Reason.EMPTY, "message is empty")
    text = _as_text(payload)
    if stripped[0] in _JSON_START:
        decoded = _decode_json(stripped, config)
        if decoded is not None:
            return decoded
    now = time.time() if received_at is None else received_at
    return _decode_lines(text, config, now, headers, stream)


def _as_text(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            Reason.UNKNOWN_FORMAT,
            f"not a text message: invalid UTF-8 byte 0x{payload[exc.start]:02x} "
            f"at offset {exc.start}",
        ) from None
    bad = _BINARY.search(text)
    if bad is not None:
        raise DecodeError(
            Reason.UNKNOWN_FORMAT,
            f"not a text message: control byte 0x{ord(bad.group()):02x} at offset {bad.start()}",
        )
    return text


def _decode_json(payload: bytes, config: LogIngestConfig) -> Decoded[LogEvent] | None:
    """JSON records, or None when the message is not JSON and may be a raw line."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if payload[:1] == b"{":
            raise DecodeError(Reason.INVALID_JSON, f"not valid JSON: {exc}") from None
        return None  # "[INFO] ..." and the like: a raw line
    if not isinstance(parsed, dict | list):
        return None
    structured = decode_structured_logs(parsed, config=config.structured)
    if structured is not None:
        return structured
    return decode_objects(parsed, log_from_obj)


def _learned(rec: SyslogRecord, parts: tuple[str, str | None, str | None] | None) -> SyslogRecord:
    """A plain record split by its stream's learnt header, if the line fits it."""
    if parts is None:
        return rec
    message, level, tag = parts
    extra = rec.structured_data + ((("logger", tag),) if tag else ())
    return replace(
        rec,
        format=LineFormat.LEARNED,
        message=message,
        level=level or rec.level,
        structured_data=extra,
    )


def _decode_lines(
    text: str,
    config: LogIngestConfig,
    received_at: float,
    headers: HeaderLearner | None = None,
    stream: str = "",
) -> Decoded[LogEvent]:
    out: Decoded[LogEvent] = Decoded()
    zone = config.zone()
    records: list[tuple[int, SyslogRecord]] = []
    for index, raw in enumerate(text.split("\n")):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if line[0] in " \t" and records:
            first, prev = records[-1]
            records[-1] = (first, _continue(prev, line))
            continue
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        configured = _configured(line, config.line_formats, zone)
        if configured is not None:
            records.append((index, configured))
            continue
        try:
            rec = parse_line(line, received_at=received_at, default_tz=zone)
        except (ValueError, OverflowError) as exc:  # dates out of range and the like
            error = DecodeError(Reason.INVALID_VALUE, f"line {index + 1}: {exc}")
            out.errors.append(EventError(index, error, line.encode()))
            continue
        if rec.format is LineFormat.PLAIN and headers is not None:
            rec = _learned(rec, headers.split(stream, line))
        records.append((index, rec))
    if not records and not out.errors:
        raise DecodeError(Reason.EMPTY, "message has only blank lines")
    for index, rec in records:
        message = rec.message[: config.max_line_chars]
        if not message.strip():
            error = DecodeError(Reason.EMPTY, f"line {index + 1} has an empty message")
            out.errors.append(EventError(index, error, message.encode()))
            continue
        attributes = [("format", rec.format.value)]
        if rec.proc_id:
            attributes.append(("proc_id", rec.proc_id))
        if rec.msg_id:
            attributes.append(("msg_id", rec.msg_id))
        if rec.app_name:
            attributes.append(("app_name", rec.app_name))
        attributes.extend(rec.structured_data)
        out.events.append(
            LogEvent(
                timestamp=rec.timestamp if rec.timestamp is not None else received_at,
                service=_service(rec, config),
                message=message,
                level=rec.level,
                host=rec.host,
                attributes=tuple(sorted(attributes)),
            )
        )
    return out


def _configured(line: str, rules: tuple[LineFormatRule, ...], zone: tzinfo) -> SyslogRecord | None:
    """The record of the first configured format that ``line`` matches, or None."""
    for rule in rules:
        fields = rule.parse(line)
        if fields is None:
            continue
        host = next((fields[f] for f in HOST_FIELDS if fields.get(f)), None)
        extra = [
            (f"line.{name.lower()}", value)
            for name, value in fields.items()
            if value
            and name != "Content"
            and name != "Level"
            and name not in HOST_FIELDS
            and name not in TIME_FIELDS
        ]
        return SyslogRecord(
            format=LineFormat.CONFIGURED,
            message=fields["Content"],
            timestamp=rule.timestamp(fields, zone),
            host=host,
            app_name=rule.service,
            level=normalise_level(fields.get("Level")),
            structured_data=tuple(sorted(extra)),
        )
    return None


def _continue(rec: SyslogRecord, line: str) -> SyslogRecord:
    return replace(rec, message=f"{rec.message}\n{line}")


def _service(rec: SyslogRecord, config: LogIngestConfig) -> str:
    found: str | None = None
    for rule in config.rules:
        source = {"app_name": rec.app_name, "host": rec.host, "message": rec.message}
        found = rule.apply(source[rule.source])
        if found:
            break
    if not found:
        for where in config.service_from:
            if where == "param":
                found = _param(rec, config.service_param)
            elif where == "app_name":
                found = rec.app_name
            else:
                found = rec.host
            if found:
                break
    name = found or config.default_service
    return config.aliases.get(name, name)


def _param(rec: SyslogRecord, name: str) -> str | None:
    suffix = f".{name}"
    for key, value in rec.structured_data:
        if key.endswith(suffix) and value:
            return value
    return None
