"""Graphite plaintext protocol: ``<path> <value> <timestamp>`` lines.

Tagged series (Graphite 1.1) carry tags in the path: ``disk.used;host=h1;mount=/``.
Paths are split into service, host, metric and labels by the first matching
:class:`~ingest.formats.mapping.GraphiteTemplate`; without one the whole path is the
metric name. A timestamp of ``-1`` (carbon's "now") is a missing timestamp.
"""

from __future__ import annotations

import math
import time
from fnmatch import fnmatchcase

from detectors.events import MetricEvent
from ingest.contract import Decoded, parse_timestamp
from ingest.exceptions import DecodeError, Reason
from ingest.formats.common import add_error, counter_rate, fail
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import GraphiteMapping, GraphiteTemplate, matches_any, take_first

FORMAT = "graphite"


def _apply_template(
    nodes: list[str], template: GraphiteTemplate, tags: dict[str, str]
) -> tuple[str | None, str | None, str]:
    service = host = None
    metric: list[str] = []
    names = template.template.split(".")
    for i, name in enumerate(names):
        if name == "metric*":
            metric.extend(nodes[i:])
            break
        if i >= len(nodes):
            break
        node = nodes[i]
        if name == "metric":
            metric.append(node)
        elif name == "service":
            service = node
        elif name == "host":
            host = node
        elif name and name != "_":
            tags[name] = node
    else:
        metric.extend(nodes[len(names) :])
    return service, host, ".".join(metric)


def _split_path(
    path: str, mapping: GraphiteMapping
) -> tuple[str, str | None, str, tuple[tuple[str, str], ...]]:
    name, *tag_parts = path.split(";")
    tags: dict[str, str] = {}
    for part in tag_parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise DecodeError(Reason.INVALID_VALUE, f"tag {part[:64]!r} is not key=value")
        tags[key] = value
    service_key, service = take_first(tags, mapping.service)
    host_key, host = take_first(tags, mapping.host)
    tags.pop(service_key or "", None)
    tags.pop(host_key or "", None)
    metric = name
    for template in mapping.templates:
        if fnmatchcase(name, template.match):
            t_service, t_host, metric = _apply_template(name.split("."), template, tags)
            service = t_service or service
            host = t_host or host
            break
    if not metric:
        raise DecodeError(Reason.INVALID_VALUE, f"path {name[:64]!r} leaves no metric name")
    return service or mapping.default_service, host, metric, tuple(sorted(tags.items()))


def decode_graphite(
    payload: bytes,
    *,
    mapping: GraphiteMapping,
    state: CumulativeState | None,
    rate_suffix: str,
    missing_timestamp_now: bool = False,
) -> Decoded[MetricEvent]:
    """Decode a message of Graphite plaintext lines; each bad line is reported on its own.

    >>> from ingest.formats.mapping import GraphiteTemplate
    >>> m = GraphiteMapping(templates=(GraphiteTemplate(template="service.host.metric*"),))
    >>> e = decode_graphite(b"checkout.web-1.http.latency_p99 0.250 1700000000\\n",
    ...                     mapping=m, state=None, rate_suffix="_rate").events[0]
    >>> e.service, e.host, e.metric, e.value
    ('checkout', 'web-1', 'http.latency_p99', 0.25)
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(FORMAT, "", Reason.INVALID_VALUE, f"not UTF-8 text: {exc}") from None
    out: Decoded[MetricEvent] = Decoded()
    lines = 0
    for index, raw_line in enumerate(text.split("\n")):
        line = raw_line.strip()
        if not line:
            continue
        lines += 1
        try:
            parts = line.split()
            if len(parts) not in (2, 3):
                raise DecodeError(
                    Reason.INVALID_VALUE,
                    f"expected '<path> <value> <timestamp>', got {len(parts)} fields",
                )
            try:
                value = float(parts[1])
            except ValueError:
                raise DecodeError(
                    Reason.INVALID_VALUE, f"value {parts[1][:32]!r} is not a number"
                ) from None
            if math.isinf(value):
                raise DecodeError(Reason.INVALID_VALUE, "value must be finite")
            if len(parts) == 2 or parts[2] == "-1":
                if not missing_timestamp_now:
                    raise DecodeError(Reason.MISSING_FIELD, "the line has no timestamp")
                timestamp = time.time()
            else:
                try:
                    timestamp = parse_timestamp(float(parts[2]))
                except ValueError:
                    raise DecodeError(
                        Reason.INVALID_VALUE, f"timestamp {parts[2][:32]!r} is not a number"
                    ) from None
            service, host, metric, labels = _split_path(parts[0], mapping)
            if mapping.counters and matches_any(metric, mapping.counters):
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
                out, index, fail(FORMAT, f"line {index + 1}", exc.reason, exc.detail), line.encode()
            )
    if not lines:
        raise fail(FORMAT, "", Reason.EMPTY, "the message has no line")
    return out
