"""Decoding one Kafka message of ``telemetry.metrics`` in any supported format.

Supported: our JSON contract (``json``, see :mod:`ingest.contract`), OTLP/JSON
(``otlp``), OTLP protobuf (``otlp_proto``), InfluxDB line protocol (``influx``),
collectd's JSON (``collectd``), prometheus-kafka-adapter's JSON (``prometheus``) and
Graphite plaintext (``graphite``). With ``format="auto"`` each message is recognised by
its first byte and, for JSON, by the keys of its (only) parse, for protobuf by its
control bytes; give the format explicitly for a topic that carries a single one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from detectors.events import MetricEvent
from ingest.contract import (
    Decoded,
    decode_metrics,
    decode_objects,
    load_json,
    metric_from_obj,
    without_bom,
)
from ingest.exceptions import DecodeError, Reason
from ingest.formats.collectd import decode_collectd, looks_like_collectd
from ingest.formats.common import fail
from ingest.formats.cumulative import CumulativeState
from ingest.formats.graphite import decode_graphite
from ingest.formats.influx import decode_influx
from ingest.formats.mapping import MetricMapping
from ingest.formats.otlp_metrics import decode_otlp_metrics, looks_like_otlp_metrics
from ingest.formats.otlp_proto import looks_like_otlp_proto, parse_request
from ingest.formats.prometheus import decode_prometheus, looks_like_prometheus
from ingest.identity import screen

MetricFormat = Literal[
    "auto", "json", "otlp", "otlp_proto", "influx", "collectd", "prometheus", "graphite"
]

_WHITESPACE = b" \t\r\n"
_JSON_START = frozenset(b"{[")
_DETECT_BYTES = 4096
_BINARY = (
    "a binary message is none of the supported formats "
    "(an OTLP protobuf request starts with byte 0x0a)"
)


class MetricIngestConfig(BaseModel, frozen=True, extra="forbid"):
    """How messages of a metrics topic are decoded.

    Parameters
    ----------
    format
        The format of every message of the topic, or ``auto`` to recognise each one.
    mapping
        Per-format rules naming the service, the host and the metric.
    rate_suffix
        Appended to the name of a counter turned into a per-second rate.
    quantiles
        Quantiles reported for histograms (``<name>_p50`` …).
    missing_timestamp
        What to do with a line-protocol or Graphite line without a timestamp: reject it
        (to the dead-letter topic) or stamp it with the time of decoding.
    counter_series
        How many cumulative series :meth:`new_state` remembers (about 0.5 KB each).

    >>> MetricIngestConfig(format="influx").mapping.influx.host
    ('host',)
    """

    format: MetricFormat = "auto"
    mapping: MetricMapping = MetricMapping()
    rate_suffix: str = "_rate"
    quantiles: tuple[float, ...] = (0.5, 0.9, 0.99)
    missing_timestamp: Literal["reject", "now"] = "reject"
    counter_series: int = Field(default=100_000, ge=1)

    @field_validator("quantiles")
    @classmethod
    def _check_quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < q <= 1.0 for q in value):
            raise ValueError("quantiles must lie in (0, 1]")
        return value

    def new_state(self) -> CumulativeState:
        """An empty store for the previous points of counters, sized by ``counter_series``.

        Keep one per worker and pass it to every :func:`decode_metric_message` call.
        """
        return CumulativeState(max_series=self.counter_series)


def _decode_json_value(
    parsed: Any, config: MetricIngestConfig, state: CumulativeState | None
) -> Decoded[MetricEvent]:
    """Dispatch one parsed JSON value by its shape."""
    probe = parsed
    if isinstance(parsed, list):
        if not parsed:
            raise DecodeError(Reason.EMPTY, "message is an empty array")
        probe = parsed[0]
    if isinstance(probe, dict):
        # the contract first: it is the hot path and needs a single lookup
        if "metric" in probe or "service" in probe:
            return decode_objects(parsed, metric_from_obj)
        mapping = config.mapping
        if looks_like_otlp_metrics(probe):
            if probe is not parsed:
                raise DecodeError(
                    Reason.UNKNOWN_FORMAT,
                    "otlp: an array of requests (the Collector writes one request per message)",
                )
            return decode_otlp_metrics(
                parsed,
                mapping=mapping.otlp,
                state=state,
                rate_suffix=config.rate_suffix,
                quantiles=config.quantiles,
            )
        if looks_like_collectd(probe):
            return decode_collectd(
                parsed, mapping=mapping.collectd, state=state, rate_suffix=config.rate_suffix
            )
        if looks_like_prometheus(probe):
            return decode_prometheus(
                parsed, mapping=mapping.prometheus, state=state, rate_suffix=config.rate_suffix
            )
        for other in ("resourceLogs", "resourceSpans", "resourceProfiles"):
            if other in probe:
                raise DecodeError(
                    Reason.UNKNOWN_FORMAT,
                    f"otlp: an OTLP request with '{other}' on a metrics topic",
                )
        keys = ", ".join(sorted(str(k) for k in probe)[:8])
        raise DecodeError(
            Reason.UNKNOWN_FORMAT,
            "a JSON object with keys [" + keys + "] is none of: the JSON contract "
            "(service/metric/value), OTLP (resourceMetrics), collectd (values/dsnames), "
            "prometheus-kafka-adapter (name/labels/value)",
        )
    raise DecodeError(
        Reason.UNKNOWN_FORMAT, f"a JSON {type(probe).__name__} is not a metric message"
    )


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_text_format(head: bytes) -> Literal["influx", "graphite"]:
    """Tell line protocol from Graphite plaintext by the first line that is not a comment.

    Line protocol always has ``field=value``; a Graphite line has no ``=`` unless it is
    a tagged series, whose first ``;`` comes before its first ``=``.

    >>> detect_text_format(b"cpu,host=a usage=1 1700000000000000000")
    'influx'
    >>> detect_text_format(b"servers.a.cpu 1.5 1700000000"), detect_text_format(b"a;b=c 1 2")
    ('graphite', 'graphite')
    """
    if b"\x00" in head:
        raise DecodeError(Reason.UNKNOWN_FORMAT, _BINARY)
    lines = head.split(b"\n")
    for number, raw_line in enumerate(lines):
        line = raw_line.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            truncated = number == len(lines) - 1 and len(head) >= _DETECT_BYTES
            if not truncated:
                raise DecodeError(Reason.UNKNOWN_FORMAT, _BINARY) from None
        equals = line.find(b"=")
        if equals == -1:
            parts = line.split()
            if len(parts) in (2, 3) and _is_number(parts[1]):
                return "graphite"
            break
        semicolon = line.find(b";")
        if semicolon != -1 and semicolon < equals:
            return "graphite"
        return "influx"
    raise DecodeError(
        Reason.UNKNOWN_FORMAT,
        "the text is neither InfluxDB line protocol (measurement field=value ts) nor "
        f"Graphite plaintext (path value ts): {head[:80]!r}",
    )


def decode_metric_message(
    payload: bytes,
    *,
    config: MetricIngestConfig,
    max_bytes: int,
    state: CumulativeState | None = None,
) -> Decoded[MetricEvent]:
    """Decode one Kafka message of ``telemetry.metrics``.

    Raises :class:`~ingest.exceptions.DecodeError` when the message as a whole is
    unusable (``Reason.UNKNOWN_FORMAT`` when it is in no supported format); bad elements
    of a usable message are returned in ``errors``, each with its index and a detail that
    names the format it was taken for. Events whose names break the limits of
    :mod:`ingest.identity` are among the errors too.

    Parameters
    ----------
    payload
        The Kafka message value.
    config
        Format and mapping rules of the topic.
    max_bytes
        Larger messages are rejected before parsing.
    state
        The previous points of cumulative series, kept by the caller across messages:
        counters become rates only with it (without it, they are reported as errors).

    >>> config = MetricIngestConfig()
    >>> decode_metric_message(b"cpu,host=h1 usage_idle=97.5 1700000000000000000",
    ...                       config=config, max_bytes=1 << 20).events[0].metric
    'cpu_usage_idle'
    >>> decode_metric_message(b'{"timestamp": 1700000000, "service": "api", '
    ...                       b'"metric": "latency_ms", "value": 12.5}',
    ...                       config=config, max_bytes=1 << 20).events[0].value
    12.5
    >>> decode_metric_message(b'{"timestamp": 1700000000, "service": "a\\\\u0000pi", '
    ...                       b'"metric": "latency_ms", "value": 12.5}',
    ...                       config=config, max_bytes=1 << 20).errors[0].error.detail
    "'service' holds the control character U+0000 at 1"
    """
    body = without_bom(payload)
    decoded = _decode_metric_message(body, config=config, max_bytes=max_bytes, state=state)
    return screen(decoded, payload)


def _decode_metric_message(
    payload: bytes,
    *,
    config: MetricIngestConfig,
    max_bytes: int,
    state: CumulativeState | None = None,
) -> Decoded[MetricEvent]:
    fmt = config.format
    if fmt == "json":
        return decode_metrics(payload, max_bytes=max_bytes)
    if len(payload) > max_bytes:
        raise DecodeError(
            Reason.OVERSIZED, f"message is {len(payload)} bytes, the limit is {max_bytes}"
        )
    mapping = config.mapping
    if fmt == "auto" and looks_like_otlp_proto(payload):
        fmt = "otlp_proto"
    if fmt == "otlp_proto":
        return decode_otlp_metrics(
            parse_request(payload, "metrics"),
            mapping=mapping.otlp,
            state=state,
            rate_suffix=config.rate_suffix,
            quantiles=config.quantiles,
            fmt="otlp_proto",
        )
    if fmt == "auto":
        lead = payload[0] if payload else 32
        if lead in _WHITESPACE:
            stripped = payload.lstrip(_WHITESPACE)
            if not stripped:
                raise DecodeError(Reason.EMPTY, "message is empty")
            lead = stripped[0]
        if lead in _JSON_START:
            parsed = load_json(payload, max_bytes)
            if type(parsed) is dict and ("metric" in parsed or "service" in parsed):
                return decode_objects(parsed, metric_from_obj)  # the contract, unchanged
            return _decode_json_value(parsed, config, state)
        fmt = detect_text_format(payload[:_DETECT_BYTES])
    if fmt == "influx":
        return decode_influx(
            payload,
            mapping=mapping.influx,
            state=state,
            rate_suffix=config.rate_suffix,
            missing_timestamp_now=config.missing_timestamp == "now",
        )
    if fmt == "graphite":
        return decode_graphite(
            payload,
            mapping=mapping.graphite,
            state=state,
            rate_suffix=config.rate_suffix,
            missing_timestamp_now=config.missing_timestamp == "now",
        )
    if fmt == "otlp" and looks_like_otlp_proto(payload):
        raise fail(
            fmt,
            "",
            Reason.UNKNOWN_FORMAT,
            "OTLP protobuf on a topic of format otlp (OTLP/JSON): set format otlp_proto or auto",
        )
    try:
        parsed = load_json(payload, max_bytes)
    except DecodeError as exc:
        raise fail(fmt, "", exc.reason, exc.detail) from None
    if fmt == "otlp":
        return decode_otlp_metrics(
            parsed,
            mapping=mapping.otlp,
            state=state,
            rate_suffix=config.rate_suffix,
            quantiles=config.quantiles,
        )
    if fmt == "collectd":
        return decode_collectd(
            parsed, mapping=mapping.collectd, state=state, rate_suffix=config.rate_suffix
        )
    return decode_prometheus(
        parsed, mapping=mapping.prometheus, state=state, rate_suffix=config.rate_suffix
    )
