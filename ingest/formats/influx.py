"""InfluxDB line protocol, as Telegraf's Kafka output writes it by default.

Telegraf's Kafka output sends one metric (one line) per message; a message may also
hold many lines, as kcat or a file relay sends them::

    measurement[,tag=value...] field=value[,field=value...] [timestamp]

Escaping follows the InfluxDB reference: backslash escapes commas and spaces in
measurements, commas, equals signs and spaces in tag keys, tag values and field keys,
and double quotes and backslashes in string field values. Field values are floats,
integers (``1i``), unsigned integers (``1u``), booleans (``t``/``true``/…, taken as 1/0)
or strings (skipped: they are not metric samples). Lines starting with ``#`` are
comments.
"""

from __future__ import annotations

import math
import re
import time

from detectors.events import MetricEvent
from ingest.contract import Decoded, parse_timestamp
from ingest.exceptions import DecodeError, Reason
from ingest.formats.common import add_error, counter_rate, fail
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import InfluxMapping, matches_any, split_labels

FORMAT = "influx"

_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_UNESCAPE = re.compile(r"\\([,= \"\\])")
_PRECISION = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


_SPECIALS = {
    (separator, quotes): re.compile(
        "[" + re.escape("\\" + ('"' if quotes else "") + separator) + "]"
    )
    for separator in " ,="
    for quotes in (True, False)
}


def _split(text: str, separator: str, *, quotes: bool) -> list[str]:
    """Split at unescaped separators (outside double quotes when ``quotes``).

    Jumps from one special character to the next, so a line costs its few separators,
    escapes and quotes rather than one step per character.
    """
    special = _SPECIALS[(separator, quotes)]
    parts: list[str] = []
    start = pos = 0
    in_quotes = False
    while (found := special.search(text, pos)) is not None:
        i = found.start()
        char = text[i]
        if char == "\\":
            pos = i + 2
            continue
        if char == '"':
            in_quotes = not in_quotes
        elif not in_quotes:
            parts.append(text[start:i])
            start = i + 1
        pos = i + 1
    if in_quotes:
        raise DecodeError(Reason.INVALID_VALUE, "unterminated string field value")
    parts.append(text[start:])
    return parts


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text) if "\\" in text else text


def _pair(text: str, what: str) -> tuple[str, str]:
    pieces = _split(text, "=", quotes=False) if "\\" in text else text.split("=")
    if len(pieces) < 2 or not pieces[0]:
        raise DecodeError(Reason.INVALID_VALUE, f"{what} {text[:64]!r} is not key=value")
    # '=' inside a quoted string value: rejoin everything after the first separator
    return _unescape(pieces[0]), "=".join(pieces[1:])


def _field_value(raw: str, key: str) -> float | None:
    """The numeric value of a field, None for a string field (not a sample)."""
    if not raw:
        raise DecodeError(Reason.INVALID_VALUE, f"field '{key}' has no value")
    if raw[0] == '"':
        return None
    last = raw[-1]
    try:
        if last == "i" or last == "u":
            return float(int(raw[:-1]))
        value = float(raw)
    except ValueError:
        if raw in _TRUE:
            return 1.0
        if raw in _FALSE:
            return 0.0
        raise DecodeError(
            Reason.INVALID_VALUE, f"field '{key}' has an invalid value {raw[:64]!r}"
        ) from None
    if not math.isfinite(value):
        raise DecodeError(Reason.INVALID_VALUE, f"field '{key}' must be finite, got {raw!r}")
    return value


def _timestamp(raw: str | None, precision: str, missing_now: bool) -> float:
    if raw is None:
        if missing_now:
            return time.time()
        raise DecodeError(Reason.MISSING_FIELD, "the line has no timestamp")
    try:
        number = int(raw)
    except ValueError:
        raise DecodeError(Reason.INVALID_VALUE, f"invalid timestamp {raw[:32]!r}") from None
    if precision == "auto":
        return parse_timestamp(number)
    return parse_timestamp(number * _PRECISION[precision])


def parse_line(line: str) -> tuple[str, dict[str, str], list[tuple[str, str]], str | None]:
    """``(measurement, tags, raw fields, raw timestamp)`` of one line.

    >>> parse_line('cpu,host=a\\\\ b usage_idle=99.5,cpu="cpu0" 1700000000000000000')
    ('cpu', {'host': 'a b'}, [('usage_idle', '99.5'), ('cpu', '"cpu0"')], '1700000000000000000')
    """
    if "\\" not in line:
        return _parse_unescaped(line)
    return _parse_escaped(line)


def _parse_escaped(line: str) -> tuple[str, dict[str, str], list[tuple[str, str]], str | None]:
    """:func:`parse_line` for a line with backslash escapes.

    The key (measurement and tags) ends at the first unescaped space; quotes there are
    literal characters. Only the fields section knows quoted string values.
    """
    key_text = _split(line, " ", quotes=False)[0]
    tag_parts = _split(key_text, ",", quotes=False)
    measurement = _unescape(tag_parts[0])
    if not measurement:
        raise DecodeError(Reason.MISSING_FIELD, "the line has no measurement")
    tags = {}
    for part in tag_parts[1:]:
        key, value = _pair(part, "tag")
        tags[key] = _unescape(value)
    fields_text, timestamp = _sections(line[len(key_text) + 1 :])
    fields = [_pair(part, "field") for part in _split(fields_text, ",", quotes=True)]
    return measurement, tags, fields, timestamp


def _sections(rest: str) -> tuple[str, str | None]:
    """The fields and the optional timestamp after the key."""
    sections = _split(rest, " ", quotes=True) if '"' in rest else rest.split(" ")
    if not sections[0]:
        raise DecodeError(Reason.MISSING_FIELD, "the line has no fields")
    if len(sections) > 2:
        raise DecodeError(Reason.INVALID_VALUE, "unescaped space: more than 3 sections")
    return sections[0], sections[1] if len(sections) == 2 else None


def _parse_unescaped(
    line: str,
) -> tuple[str, dict[str, str], list[tuple[str, str]], str | None]:
    """:func:`parse_line` for the common line without a backslash: plain string splits.

    Without escapes the first space ends the key, and quotes can only open string field
    values, so only a fields section with quotes needs the quote-aware split.
    """
    space = line.find(" ")
    key_text = line if space == -1 else line[:space]
    key_parts = key_text.split(",")
    measurement = key_parts[0]
    if not measurement:
        raise DecodeError(Reason.MISSING_FIELD, "the line has no measurement")
    tags = {}
    for part in key_parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise DecodeError(Reason.INVALID_VALUE, f"tag {part[:64]!r} is not key=value")
        tags[key] = value
    fields_text, timestamp = _sections(line[len(key_text) + 1 :])
    field_parts = (
        _split(fields_text, ",", quotes=True) if '"' in fields_text else fields_text.split(",")
    )
    fields = []
    for part in field_parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise DecodeError(Reason.INVALID_VALUE, f"field {part[:64]!r} is not key=value")
        fields.append((key, value))
    return measurement, tags, fields, timestamp


def decode_influx(
    payload: bytes,
    *,
    mapping: InfluxMapping,
    state: CumulativeState | None,
    rate_suffix: str,
    missing_timestamp_now: bool = False,
) -> Decoded[MetricEvent]:
    """Decode a message of line-protocol lines; each bad line is reported on its own.

    ``index`` of an error is the 0-based line number; its detail says ``line N`` counting
    from 1, as an editor does.

    >>> d = decode_influx(b"cpu,host=h1,service=api usage_idle=97.5 1700000000000000000\\n",
    ...                   mapping=InfluxMapping(), state=None, rate_suffix="_rate")
    >>> e = d.events[0]
    >>> e.service, e.metric, e.value, e.host, e.timestamp
    ('api', 'cpu_usage_idle', 97.5, 'h1', 1700000000.0)
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(FORMAT, "", Reason.INVALID_VALUE, f"not UTF-8 text: {exc}") from None
    out: Decoded[MetricEvent] = Decoded()
    template = mapping.metric
    value_field = mapping.value_field
    counters = mapping.counters
    lines = 0
    for index, raw_line in enumerate(text.split("\n")):
        line = raw_line.strip()
        if not line or line[0] == "#":
            continue
        lines += 1
        try:
            measurement, tags, fields, raw_ts = parse_line(line)
            timestamp = _timestamp(raw_ts, mapping.precision, missing_timestamp_now)
            service, host, labels = split_labels(tags, mapping)
            for key, raw_value in fields:
                value = _field_value(raw_value, key)
                if value is None:
                    continue
                if key == value_field:
                    metric = measurement
                else:
                    metric = template.format(measurement=measurement, field=key)
                if counters and matches_any(metric, counters):
                    rate = counter_rate(
                        state,
                        fmt=FORMAT,
                        service=service,
                        metric=metric,
                        host=host,
                        labels=labels,
                        timestamp=timestamp,
                        value=value,
                    )
                    if rate is None:
                        continue
                    metric, value = metric + rate_suffix, rate
                out.events.append(MetricEvent(timestamp, service, metric, value, host, labels))
        except DecodeError as exc:
            add_error(
                out,
                index,
                fail(FORMAT, f"line {index + 1}", exc.reason, exc.detail),
                line.encode(),
            )
    if not lines:
        raise fail(FORMAT, "", Reason.EMPTY, "the message has no line")
    return out
