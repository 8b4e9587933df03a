"""InfluxDB line protocol, as Telegraf's Kafka output writes it by default.

One message holds one or more lines (``use_batch_format = true`` puts a whole batch in
one message)::

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


def _split(text: str, separator: str, *, quotes: bool) -> list[str]:
    """Split at unescaped separators (outside double quotes when ``quotes``)."""
    parts: list[str] = []
    start = 0
    i = 0
    n = len(text)
    in_quotes = False
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if quotes and char == '"':
            in_quotes = not in_quotes
        elif char == separator and not in_quotes:
            parts.append(text[start:i])
            start = i + 1
        i += 1
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
    if "\\" not in line and '"' not in line:
        sections = line.split(" ")
        key_parts = sections[0].split(",")
        field_parts = sections[1].split(",") if len(sections) > 1 else []
    else:
        sections = _split(line, " ", quotes=True)
        key_parts = _split(sections[0], ",", quotes=False)
        field_parts = _split(sections[1], ",", quotes=True) if len(sections) > 1 else []
    if len(sections) < 2 or not sections[1]:
        raise DecodeError(Reason.MISSING_FIELD, "the line has no fields")
    if len(sections) > 3:
        raise DecodeError(Reason.INVALID_VALUE, "unescaped space: more than 3 sections")
    measurement = _unescape(key_parts[0])
    if not measurement:
        raise DecodeError(Reason.MISSING_FIELD, "the line has no measurement")
    tags = {}
    for part in key_parts[1:]:
        key, value = _pair(part, "tag")
        tags[key] = _unescape(value)
    fields = [_pair(part, "field") for part in field_parts]
    return measurement, tags, fields, sections[2] if len(sections) == 3 else None


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
