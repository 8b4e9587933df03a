"""Limits on what names a series or a log stream, checked on every decoded event.

A series is known by its service, metric, host and labels: they become keys of detector
state, topic keys, Slack text and chart titles. A name of 10,000 characters or one that
holds a NUL, a newline or a right-to-left mark is never what a producer meant, and it
would be carried into every one of those places; such an event is rejected with
``invalid_value`` and a detail naming the field and the limit (see
``docs/telemetry-contract.md``, "Limits").

"Control characters" here are what :meth:`str.isprintable` refuses apart from the space:
C0 and C1 controls, and format and separator characters such as U+200F (right-to-left
mark), U+2028 (line separator) and U+00A0 (no-break space). Letters, digits, punctuation
and symbols of any script are accepted.
"""

from __future__ import annotations

from typing import TypeVar

import orjson

from detectors.events import AlertEvent, Labels, LogEvent, MetricEvent
from ingest.contract import Decoded, EventError
from ingest.exceptions import DecodeError, Reason

MAX_NAME = 256
"""Characters of a service, metric or host name, and of a label name."""
MAX_LABEL_VALUE = 1024
"""Characters of a label value."""
MAX_LABELS = 64
"""Labels of one series (log attributes of one record)."""

E = TypeVar("E", MetricEvent, LogEvent, AlertEvent)


def _problem(field: str, text: str, limit: int) -> str | None:
    if len(text) > limit:
        return f"'{field}' is {len(text)} characters long, the limit is {limit}"
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        return f"'{field}' holds the control character U+{ord(bad):04X} at {text.index(bad)}"
    return None


def _labels_problem(field: str, labels: Labels, *, values: bool) -> str | None:
    if len(labels) > MAX_LABELS:
        return f"'{field}' has {len(labels)} entries, the limit is {MAX_LABELS}"
    for name, value in labels:
        problem = _problem(f"{field} name", name, MAX_NAME)
        if problem is None and values:
            problem = _problem(f"{field}.{name[:64]}", value, MAX_LABEL_VALUE)
        if problem is not None:
            return problem
    return None


def metric_identity_problem(event: MetricEvent) -> str | None:
    """What is wrong with the names of a metric event's series, or None.

    >>> metric_identity_problem(MetricEvent(0.0, "checkout", "cpu", 1.0, "web-1"))
    >>> metric_identity_problem(MetricEvent(0.0, "check\\nout", "cpu", 1.0))
    "'service' holds the control character U+000A at 5"
    >>> metric_identity_problem(MetricEvent(0.0, "api", "m" * 300, 1.0))
    "'metric' is 300 characters long, the limit is 256"
    """
    problem = _problem("service", event.service, MAX_NAME) or _problem(
        "metric", event.metric, MAX_NAME
    )
    if problem is None and event.host is not None:
        problem = _problem("host", event.host, MAX_NAME)
    if problem is None and event.labels:
        problem = _labels_problem("labels", event.labels, values=True)
    return problem


def log_identity_problem(event: LogEvent) -> str | None:
    """What is wrong with the names of a log event's stream, or None.

    The message itself is free text (multi-line stack traces are normal), and so are
    attribute values; attribute names and their number are limited like labels.
    """
    problem = _problem("service", event.service, MAX_NAME)
    if problem is None and event.host is not None:
        problem = _problem("host", event.host, MAX_NAME)
    if problem is None and event.attributes:
        problem = _labels_problem("attributes", event.attributes, values=False)
    return problem


def alert_identity_problem(event: AlertEvent) -> str | None:
    """What is wrong with the service or the name of an alert from another tool, or None.

    They name the incident's signal and are shown in Slack and the console; the labels and
    the summary are free text.

    >>> alert_identity_problem(AlertEvent("HighLatency", "check\u200fout", "firing",
    ...                                   "warning", 0.0, None, {}, "", "f", "json"))
    "'service' holds the control character U+200F at 5"
    """
    return _problem("service", event.service, MAX_NAME) or _problem("name", event.name, MAX_NAME)


def _problem_of(event: MetricEvent | LogEvent | AlertEvent) -> str | None:
    if isinstance(event, MetricEvent):
        return metric_identity_problem(event)
    if isinstance(event, LogEvent):
        return log_identity_problem(event)
    return alert_identity_problem(event)


def _as_json(event: MetricEvent | LogEvent | AlertEvent) -> bytes:
    """The rejected event, as the dead letter carries it (every field, as decoded)."""
    fields = {
        name: getattr(event, name) for name in event.__dataclass_fields__ if name != "series_key"
    }
    for name in ("labels", "attributes"):
        if name in fields:
            fields[name] = dict(fields[name])
    return orjson.dumps(fields, option=orjson.OPT_SERIALIZE_NUMPY)


def screen(decoded: Decoded[E], payload: bytes) -> Decoded[E]:
    """Move the events whose names break a limit from ``events`` to ``errors``.

    When the message (``payload``) decoded into this one event, the error is the whole
    message's: no index, the original bytes. Otherwise its index is the event's position
    among the events the message decoded into, and its bytes are the event as decoded
    (JSON of its fields), since one element of a format such as OTLP holds many events.
    """
    events = decoded.events
    kept: list[E] = []
    for index, event in enumerate(events):
        if isinstance(event, MetricEvent):
            # the common case in three operations: the series key holds every name and
            # value, joined by printable separators
            key = event.series_key
            if len(key) <= MAX_NAME and len(event.labels) <= MAX_LABELS and key.isprintable():
                kept.append(event)
                continue
        problem = _problem_of(event)
        if problem is None:
            kept.append(event)
            continue
        whole = len(events) == 1 and not decoded.errors
        decoded.errors.append(
            EventError(
                None if whole else index,
                DecodeError(Reason.INVALID_VALUE, problem),
                payload if whole else _as_json(event),
            )
        )
    if len(kept) != len(events):
        decoded.events = kept
    return decoded
