"""Raw log lines: RFC 5424 and RFC 3164 syslog, and plain text.

What log shippers put on Kafka when they do not send JSON:

* RFC 5424: ``<165>1 2026-11-26T18:00:00.123Z web-1 nginx 4242 ID47 [meta service="shop"]
  GET /cart 500`` (rsyslog's ``RSYSLOG_SyslogProtocol23Format``, syslog-ng's ``syslog()``
  template);
* RFC 3164: ``<34>Nov 26 18:00:00 web-1 sshd[811]: Failed password for root`` (with or
  without the priority, with or without the host);
* the ISO-dated form of rsyslog's omkafka default (``RSYSLOG_FileFormat``) and of
  syslog-ng's kafka destination (``$ISODATE $HOST $MSGHDR$MSG``):
  ``2026-11-26T18:00:00.123+00:00 web-1 sshd[811]: Failed password for root``; rsyslog
  writes the tag of a message it received as RFC 5424 without the colon
  (``2026-11-26T18:00:00.123+00:00 web-1 checkout order settled``);
* anything else is a plain line; a leading ISO date, if any, is taken as its time.

:func:`parse_line` splits one line into a :class:`SyslogRecord`; the level comes from the
syslog severity, or from a level word at the start of the message (``ERROR``,
``[warn]``, ``level=info``), which wins because applications log every line at the same
syslog severity more often than not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from detectors.events import Labels
from ingest.contract import normalise_level

SEVERITY_LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
"""Normalised level of each syslog severity (0..7)."""

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}

_OCTET_COUNT = re.compile(r"^\d{1,9} (?=<\d{1,3}>)")
_RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<ver>[1-9]\d?) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) "
    r"(?P<proc>\S+) (?P<msgid>\S+) (?P<rest>.*)$",
    re.DOTALL,
)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=]+)(?P<params>(?:\s+[^\s\]=]+="(?:[^"\\]|\\.)*")*)\s*\]')
_SD_PARAM = re.compile(r'([^\s\]=]+)="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r'\\([\\"\]])')
_RFC3164 = re.compile(
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<mon>[A-Z][a-z]{2}) (?P<day>[ \d]\d) "
    r"(?P<time>\d\d:\d\d:\d\d)(?:\.\d+)? (?P<rest>.*)$",
    re.DOTALL,
)
_ISO_SYSLOG = re.compile(
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
    r"(?P<zone>Z|[+-]\d\d:\d\d)?) (?P<rest>.*)$",
    re.DOTALL,
)
_TAG = re.compile(
    r"^(?P<app>[^\s:\[\]]{1,48})(?:\[(?P<proc>[^\]\s]{1,32})\])?: ?(?P<msg>.*)$", re.DOTALL
)
# rsyslog writes the tag of a message received as RFC 5424 as "APP-NAME" or
# "APP-NAME[PROCID]", without a colon, and one blank before the message.
_BARE_TAG = re.compile(
    r"^(?P<app>[^\s:\[\]]{1,48})(?:\[(?P<proc>[^\]\s]{1,32})\])?(?: (?P<msg>.*))?$", re.DOTALL
)
_HOST_NAME = re.compile(r"^[A-Za-z0-9:][A-Za-z0-9._:%-]{0,254}$")
_PLAIN_TS = re.compile(
    r"^\[?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?"
    r"(?:\s?(?:Z|UTC|[+-]\d\d:?\d\d))?)\]?\s+"
)
_LEVEL_NAMES = (
    "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|SEVERE|ALERT|EMERG|"
    "EMERGENCY|PANIC"
)
# Within the first six words (after a date, a thread, a logger name): upper-case level
# words may stand bare; other spellings only as "[warn]" or "Error:".
_LEVEL_WORD = re.compile(
    rf"^(?:\S+\s+){{0,5}}?(?:[\[(<]?(?P<up>{_LEVEL_NAMES})[\])>:]?"
    rf"|[\[(<](?P<br>(?i:{_LEVEL_NAMES}))[\])>]:?|(?P<co>(?i:{_LEVEL_NAMES})):)(?=\s|$)"
)
_LEVEL_TOKEN = re.compile(rf"^[\[(<]?(?i:{_LEVEL_NAMES})[\])>:]?$")
_LEVEL_KV = re.compile(r"\b(?:level|lvl|severity|loglevel)=\"?(?P<lvl>[A-Za-z]+)", re.IGNORECASE)


class LineFormat(StrEnum):
    """How a raw line was framed."""

    RFC5424 = "rfc5424"
    RFC3164 = "rfc3164"
    ISO_SYSLOG = "iso_syslog"
    CONFIGURED = "configured"  # a header format of the configuration (ingest.line_format)
    LEARNED = "learned"  # a header layout learnt from the stream's lines (ingest.header)
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class SyslogRecord:
    """One raw line, split into its parts.

    Parameters
    ----------
    format
        The framing recognised.
    message
        The message body (no header), what template mining sees.
    timestamp
        Epoch seconds from the header, None when the line has none.
    host, app_name, proc_id, msg_id
        Header fields, None when absent or nil (``-``).
    facility, severity
        From the priority, None without one.
    level
        Normalised level: from a level word of the message, else from the severity.
    structured_data
        RFC 5424 structured data, flattened to sorted ``("sd-id.param", value)`` pairs.
    """

    format: LineFormat
    message: str
    timestamp: float | None = None
    host: str | None = None
    app_name: str | None = None
    proc_id: str | None = None
    msg_id: str | None = None
    facility: int | None = None
    severity: int | None = None
    level: str | None = None
    structured_data: Labels = field(default=())


def _nil(value: str | None) -> str | None:
    return None if value in (None, "", "-") else value


def level_from_text(message: str) -> str | None:
    """A level named near the start of a message, normalised; None when there is none.

    >>> level_from_text("2026-11-26 18:00:00 ERROR [main] db down")
    'error'
    >>> level_from_text("[warn] disk at 91%")
    'warning'
    >>> level_from_text('ts=1 level=info msg="ok"')
    'info'
    >>> level_from_text("Error: cannot open /var/db") and level_from_text("ERR: x")
    'error'
    >>> level_from_text("user error rate is fine") is None
    True
    """
    m = _LEVEL_WORD.match(message)
    if m is not None:
        return normalise_level(m.group("up") or m.group("br") or m.group("co"))
    kv = _LEVEL_KV.search(message, 0, 512)
    return normalise_level(kv.group("lvl")) if kv else None


def _pri(raw: str | None) -> tuple[int | None, int | None]:
    if raw is None:
        return None, None
    pri = int(raw)
    if pri > 191:
        return None, None
    return pri >> 3, pri & 7


def _parse_iso(text: str, default_tz: tzinfo) -> float | None:
    try:
        dt = datetime.fromisoformat(text.replace(",", ".").replace(" UTC", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_tz)
    return dt.timestamp()


def _bsd_time(mon: str, day: str, clock: str, received_at: float, tz: tzinfo) -> float | None:
    """An RFC 3164 date has no year: take the one that puts it closest before receipt."""
    month = _MONTHS.get(mon)
    if month is None:
        return None
    hour, minute, second = (int(x) for x in clock.split(":"))
    received = datetime.fromtimestamp(received_at, tz)
    for year in (received.year, received.year - 1):
        try:
            dt = datetime(year, month, int(day), hour, minute, second, tzinfo=tz)
        except ValueError:
            continue
        if dt <= received + timedelta(days=1):
            return dt.timestamp()
    return None


def _structured_data(rest: str) -> tuple[Labels, str]:
    """Split RFC 5424 ``STRUCTURED-DATA [SP MSG]`` into flattened params and the message."""
    if rest.startswith("-"):
        return (), rest[2:] if rest.startswith("- ") else rest[1:]
    pairs: list[tuple[str, str]] = []
    pos = 0
    while True:
        m = _SD_ELEMENT.match(rest, pos)
        if m is None:
            break
        sd_id = m.group("id")
        for name, value in _SD_PARAM.findall(m.group("params")):
            pairs.append((f"{sd_id}.{name}", _SD_UNESCAPE.sub(r"\1", value)))
        pos = m.end()
    if pos == 0:  # not structured data after all: keep everything as the message
        return (), rest
    msg = rest[pos:]
    return tuple(sorted(pairs)), msg[1:] if msg.startswith(" ") else msg


def _split_tag(
    rest: str, *, may_have_host: bool, bare_tag: bool
) -> tuple[str | None, str | None, str | None, str]:
    """``HOST TAG[PID]: MSG`` (host optional) into host, app, pid and message.

    With ``bare_tag``, a line that has a host may also give its tag without the colon
    (``HOST APP[PID] MSG``), as rsyslog's templates write the tag of an RFC 5424 message;
    not when the host is no host name (``host=web-1``, ``[main]``) or when the host or
    the tag is a level word (``2026-11-26T18:00:00Z INFO server started``).
    """
    host: str | None = None
    if may_have_host:
        first, _, after = rest.partition(" ")
        # "sshd[811]: ..." or "sshd: ..." right after the date means there is no host.
        if first and not first.endswith(":") and "[" not in first:
            host, rest = first, after
    m = _TAG.match(rest)
    if m is not None:
        return host, m.group("app"), m.group("proc"), m.group("msg")
    if bare_tag and host is not None and _HOST_NAME.match(host) and not _LEVEL_TOKEN.match(host):
        m = _BARE_TAG.match(rest)
        if m is not None and not _LEVEL_TOKEN.match(m.group("app")):
            return host, m.group("app"), m.group("proc"), m.group("msg") or ""
    return host, None, None, rest


def _strip_bom(msg: str) -> str:
    return msg[1:] if msg.startswith("\ufeff") else msg


def parse_line(line: str, *, received_at: float, default_tz: tzinfo = UTC) -> SyslogRecord:
    """Recognise the framing of one raw line and split it.

    Parameters
    ----------
    line
        One line, without its newline.
    received_at
        Epoch seconds of receipt: the year of RFC 3164 dates is inferred from it.
    default_tz
        Zone of the dates that carry none (RFC 3164, most plain lines).

    Examples
    --------
    >>> r = parse_line('<165>1 2026-11-26T18:00:00.5Z web-1 nginx 42 - [m@1 svc="shop"] '
    ...                'GET /cart 500', received_at=0)
    >>> r.format.value, r.host, r.app_name, r.level, r.message, r.structured_data
    ('rfc5424', 'web-1', 'nginx', 'notice', 'GET /cart 500', (('m@1.svc', 'shop'),))
    >>> r = parse_line("<38>Nov 26 18:00:00 web-1 sshd[811]: Accepted key for bob",
    ...                received_at=1795716000.0)
    >>> r.format.value, r.host, r.app_name, r.proc_id, r.level, r.message
    ('rfc3164', 'web-1', 'sshd', '811', 'info', 'Accepted key for bob')
    >>> parse_line("2026-11-26 18:00:01,250 ERROR db down", received_at=0).level
    'error'
    """
    if line[:1].isdigit():
        line = _OCTET_COUNT.sub("", line, count=1)
    if line.startswith("<"):
        m = _RFC5424.match(line)
        if m is not None:
            facility, severity = _pri(m.group("pri"))
            ts_raw = _nil(m.group("ts"))
            sd, msg = _structured_data(m.group("rest"))
            msg = _strip_bom(msg)
            # rsyslog keeps the blank after an RFC 3164 tag's colon in the message and
            # writes it after the structured data ("- -  text"): one blank is framing.
            if msg.startswith(" "):
                msg = msg[1:]
            return SyslogRecord(
                format=LineFormat.RFC5424,
                message=msg,
                timestamp=_parse_iso(ts_raw, default_tz) if ts_raw else None,
                host=_nil(m.group("host")),
                app_name=_nil(m.group("app")),
                proc_id=_nil(m.group("proc")),
                msg_id=_nil(m.group("msgid")),
                facility=facility,
                severity=severity,
                level=_level(msg, severity),
                structured_data=sd,
            )
    m = _ISO_SYSLOG.match(line)
    if m is not None:
        ts = _parse_iso(m.group("ts"), default_tz)
        if ts is not None:
            facility, severity = _pri(m.group("pri"))
            # A tag without a colon only after a full RFC 3339 date (with its zone), as
            # rsyslog and syslog-ng write it: many plain lines start with a bare ISO date.
            host, app, proc, msg = _split_tag(
                m.group("rest"), may_have_host=True, bare_tag=m.group("zone") is not None
            )
            if app is not None:
                return SyslogRecord(
                    format=LineFormat.ISO_SYSLOG,
                    message=msg,
                    timestamp=ts,
                    host=host,
                    app_name=app,
                    proc_id=proc,
                    facility=facility,
                    severity=severity,
                    level=_level(msg, severity),
                )
    m = _RFC3164.match(line)
    if m is not None:
        facility, severity = _pri(m.group("pri"))
        host, app, proc, msg = _split_tag(m.group("rest"), may_have_host=True, bare_tag=True)
        return SyslogRecord(
            format=LineFormat.RFC3164,
            message=msg,
            timestamp=_bsd_time(
                m.group("mon"), m.group("day"), m.group("time"), received_at, default_tz
            ),
            host=host,
            app_name=app,
            proc_id=proc,
            facility=facility,
            severity=severity,
            level=_level(msg, severity),
        )
    ts = None
    msg = line
    m = _PLAIN_TS.match(line)
    if m is not None:
        ts = _parse_iso(m.group("ts"), default_tz)
        if ts is not None:
            msg = line[m.end() :]
    return SyslogRecord(
        format=LineFormat.PLAIN,
        message=msg,
        timestamp=ts,
        level=level_from_text(msg),
    )


def _level(message: str, severity: int | None) -> str | None:
    from_text = level_from_text(message)
    if from_text is not None:
        return from_text
    return None if severity is None else SEVERITY_LEVELS[severity]
