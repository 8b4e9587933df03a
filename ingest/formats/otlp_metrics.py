"""OTLP ``ExportMetricsServiceRequest``, as the OpenTelemetry Collector's Kafka exporter
writes it with ``encoding: otlp_json`` (and, once :mod:`ingest.formats.otlp_proto` has
given it the same shape, with ``otlp_proto``).

* gauges: each data point as it is;
* sums: monotonic ones become per-second rates (``<name><rate_suffix>``), cumulative
  ones against the previous point of the series, delta ones over their own interval;
  non-monotonic sums (up-down counters) are taken as gauges;
* histograms and exponential histograms: ``<name>_count`` and ``<name>_sum`` as
  per-second rates and the configured quantiles (``<name>_p50``, ``<name>_p99``…) over
  the interval (the difference of two cumulative points, or the delta point);
* summaries: the quantiles they carry, count and sum as rates.

The service comes from the resource attributes (``service.name`` by default), then the
data point attributes; data point attributes become labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detectors.events import Labels, MetricEvent
from ingest.contract import Decoded
from ingest.exceptions import DecodeError, Reason
from ingest.formats.common import add_error, counter_rate, dumps, fail
from ingest.formats.cumulative import CumulativeState, Increase
from ingest.formats.histogram import explicit_quantiles, exponential_quantiles, quantile_suffix
from ingest.formats.mapping import OtlpMapping, take_first
from ingest.formats.otlp import (
    FORMAT,
    array,
    attributes,
    child,
    double,
    first_array,
    integer,
    integers,
    nanos,
    objects,
    point_time,
)

_DELTA = 1
_CUMULATIVE = 2
_TEMPORALITY = {
    0: _CUMULATIVE,  # unspecified: treated as the safer of the two
    1: _DELTA,
    2: _CUMULATIVE,
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": _CUMULATIVE,
    "AGGREGATION_TEMPORALITY_DELTA": _DELTA,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": _CUMULATIVE,
}
_NO_RECORDED_VALUE = 1
_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def looks_like_otlp_metrics(obj: Any) -> bool:
    """Whether a parsed JSON object is an ``ExportMetricsServiceRequest``."""
    return isinstance(obj, dict) and "resourceMetrics" in obj


class _Context:
    """What every data point of one metric shares."""

    __slots__ = (
        "fmt",
        "mapping",
        "name",
        "quantiles",
        "rate_suffix",
        "resource",
        "resource_host",
        "resource_labels",
        "resource_service",
        "state",
    )

    def __init__(
        self,
        *,
        mapping: OtlpMapping,
        resource: dict[str, str],
        state: CumulativeState | None,
        rate_suffix: str,
        quantiles: tuple[float, ...],
        fmt: str,
    ) -> None:
        self.fmt = fmt
        self.mapping = mapping
        self.resource = resource
        self.state = state
        self.rate_suffix = rate_suffix
        self.quantiles = quantiles
        self.resource_service = take_first(resource, mapping.service)[1]
        self.resource_host = take_first(resource, mapping.host)[1]
        self.resource_labels = {k: resource[k] for k in mapping.resource_labels if k in resource}
        self.name = ""

    def identity(self, point: dict[str, Any]) -> tuple[str, str | None, Labels]:
        attrs = attributes(point.get("attributes"))
        service, host = self.resource_service, self.resource_host
        if service is None:
            key, service = take_first(attrs, self.mapping.service)
            attrs.pop(key or "", None)
        if host is None:
            key, host = take_first(attrs, self.mapping.host)
            attrs.pop(key or "", None)
        if self.resource_labels:
            attrs = {**self.resource_labels, **attrs}
        return service or self.mapping.default_service, host, tuple(sorted(attrs.items()))


def _temporality(data: dict[str, Any]) -> int:
    raw = data.get("aggregationTemporality", 0)
    try:
        return _TEMPORALITY[raw]
    except (KeyError, TypeError):
        raise DecodeError(Reason.INVALID_VALUE, f"unknown aggregationTemporality {raw!r}") from None


def _interval(point: dict[str, Any], timestamp: float) -> float | None:
    start = nanos(point, "startTimeUnixNano")
    if start is None or start >= timestamp:
        return None
    return timestamp - start


def _number(point: dict[str, Any]) -> float:
    if "asDouble" in point:
        return double(point["asDouble"], "asDouble")
    if "asInt" in point:
        return float(integer(point, "asInt"))
    raise DecodeError(Reason.MISSING_FIELD, "the data point has neither asDouble nor asInt")


def _gauge_points(ctx: _Context, data: dict[str, Any], out: list[MetricEvent]) -> None:
    for point in objects(data, "dataPoints"):
        if integer(point, "flags") & _NO_RECORDED_VALUE:
            continue
        timestamp = point_time(point)
        service, host, labels = ctx.identity(point)
        out.append(MetricEvent(timestamp, service, ctx.name, _number(point), host, labels))


def _sum_points(ctx: _Context, data: dict[str, Any], out: list[MetricEvent]) -> None:
    if not data.get("isMonotonic"):
        _gauge_points(ctx, data, out)
        return
    temporality = _temporality(data)
    metric = ctx.name + ctx.rate_suffix
    for point in objects(data, "dataPoints"):
        if integer(point, "flags") & _NO_RECORDED_VALUE:
            continue
        timestamp = point_time(point)
        service, host, labels = ctx.identity(point)
        value = _number(point)
        if temporality == _DELTA:
            interval = _interval(point, timestamp)
            if interval is None:
                raise DecodeError(
                    Reason.MISSING_FIELD, "a delta sum needs a startTimeUnixNano before its time"
                )
            rate: float | None = value / interval
        else:
            rate = counter_rate(
                ctx.state,
                fmt=ctx.fmt,
                service=service,
                metric=ctx.name,
                host=host,
                labels=labels,
                timestamp=timestamp,
                value=value,
                start=nanos(point, "startTimeUnixNano"),
            )
        if rate is not None:
            out.append(MetricEvent(timestamp, service, metric, rate, host, labels))


def _since_previous(
    ctx: _Context,
    key: tuple[Any, ...],
    point: dict[str, Any],
    timestamp: float,
    values: tuple[float, ...],
) -> Increase | None:
    if ctx.state is None:
        raise DecodeError(
            Reason.INVALID_VALUE,
            f"'{ctx.name}' is cumulative and no CumulativeState was given to difference it",
        )
    start = nanos(point, "startTimeUnixNano")
    return ctx.state.increase(key, timestamp, values, start=start)


def _emit_summary(
    ctx: _Context,
    identity: tuple[str, str | None, Labels],
    timestamp: float,
    seconds: float | None,
    count: float,
    total: float | None,
    quantiles: Sequence[tuple[float, float]],
    out: list[MetricEvent],
) -> None:
    service, host, labels = identity
    name, suffix = ctx.name, ctx.rate_suffix
    if seconds is not None:
        out.append(
            MetricEvent(timestamp, service, f"{name}_count{suffix}", count / seconds, host, labels)
        )
        if total is not None:
            out.append(
                MetricEvent(
                    timestamp, service, f"{name}_sum{suffix}", total / seconds, host, labels
                )
            )
    for q, value in quantiles:
        out.append(
            MetricEvent(timestamp, service, f"{name}_{quantile_suffix(q)}", value, host, labels)
        )


def _histogram_points(ctx: _Context, data: dict[str, Any], out: list[MetricEvent]) -> None:
    temporality = _temporality(data)
    for point in objects(data, "dataPoints"):
        if integer(point, "flags") & _NO_RECORDED_VALUE:
            continue
        timestamp = point_time(point)
        identity = ctx.identity(point)
        counts = integers(point, "bucketCounts")
        bounds = [double(b, "explicitBounds") for b in array(point, "explicitBounds")]
        if counts and len(counts) != len(bounds) + 1:
            raise DecodeError(
                Reason.INVALID_VALUE,
                f"{len(counts)} bucketCounts for {len(bounds)} explicitBounds (needs one more)",
            )
        count = float(integer(point, "count"))
        total = double(point["sum"], "sum") if "sum" in point else None
        minimum = double(point["min"], "min") if "min" in point else None
        maximum = double(point["max"], "max") if "max" in point else None
        if temporality == _CUMULATIVE:
            key = ("histogram", identity, ctx.name, tuple(bounds))
            increase = _since_previous(ctx, key, point, timestamp, (count, total or 0.0, *counts))
            if increase is None:
                continue
            seconds: float | None = increase.seconds
            count, total_delta, *counts = increase.deltas
            total = None if total is None else total_delta
            minimum = maximum = None  # they cover the whole cumulative run
        else:
            seconds = _interval(point, timestamp)
        quantiles: list[tuple[float, float]] = []
        if counts and count > 0:
            values = explicit_quantiles(
                ctx.quantiles, bounds, counts, minimum=minimum, maximum=maximum
            )
            quantiles = list(zip(ctx.quantiles, values, strict=True))
        _emit_summary(ctx, identity, timestamp, seconds, count, total, quantiles, out)


def _buckets(point: dict[str, Any], name: str) -> tuple[int, list[float]]:
    side = child(point, name)
    return integer(side, "offset"), integers(side, "bucketCounts")


def _exponential_points(ctx: _Context, data: dict[str, Any], out: list[MetricEvent]) -> None:
    temporality = _temporality(data)
    for point in objects(data, "dataPoints"):
        if integer(point, "flags") & _NO_RECORDED_VALUE:
            continue
        timestamp = point_time(point)
        identity = ctx.identity(point)
        scale = integer(point, "scale")
        zero = float(integer(point, "zeroCount"))
        pos_offset, pos = _buckets(point, "positive")
        neg_offset, neg = _buckets(point, "negative")
        count = float(integer(point, "count"))
        total = double(point["sum"], "sum") if "sum" in point else None
        if temporality == _CUMULATIVE:
            increase = _since_previous(
                ctx, ("exp", identity, ctx.name), point, timestamp, (count, total or 0.0)
            )
            # the bucket layout grows over a cumulative run: buckets are differenced only
            # between points of the same layout
            layout = ("exp-buckets", identity, ctx.name, scale, pos_offset, len(pos), neg_offset)
            buckets = _since_previous(ctx, layout, point, timestamp, (zero, *pos, *neg))
            if increase is None:
                continue
            seconds: float | None = increase.seconds
            count, total_delta = increase.deltas
            total = None if total is None else total_delta
            if buckets is None:
                pos = neg = []
                zero = 0.0
            else:
                zero = buckets.deltas[0]
                pos = list(buckets.deltas[1 : 1 + len(pos)])
                neg = list(buckets.deltas[1 + len(pos) :])
        else:
            seconds = _interval(point, timestamp)
        quantiles: list[tuple[float, float]] = []
        if count > 0 and (pos or neg or zero):
            values = exponential_quantiles(
                ctx.quantiles,
                scale=scale,
                zero_count=zero,
                positive_offset=pos_offset,
                positive_counts=pos,
                negative_offset=neg_offset,
                negative_counts=neg,
            )
            quantiles = list(zip(ctx.quantiles, values, strict=True))
        _emit_summary(ctx, identity, timestamp, seconds, count, total, quantiles, out)


def _summary_points(ctx: _Context, data: dict[str, Any], out: list[MetricEvent]) -> None:
    for point in objects(data, "dataPoints"):
        if integer(point, "flags") & _NO_RECORDED_VALUE:
            continue
        timestamp = point_time(point)
        identity = ctx.identity(point)
        quantiles = [
            (double(q.get("quantile", 0.0), "quantile"), double(q.get("value", 0.0), "value"))
            for q in objects(point, "quantileValues")
        ]
        count = float(integer(point, "count"))
        total = double(point.get("sum", 0.0), "sum")
        increase = _since_previous(
            ctx, ("summary", identity, ctx.name), point, timestamp, (count, total)
        )
        if increase is None:
            _emit_summary(ctx, identity, timestamp, None, 0.0, None, quantiles, out)
            continue
        d_count, d_total = increase.deltas
        _emit_summary(ctx, identity, timestamp, increase.seconds, d_count, d_total, quantiles, out)


_DECODERS = {
    "gauge": _gauge_points,
    "sum": _sum_points,
    "histogram": _histogram_points,
    "exponentialHistogram": _exponential_points,
    "summary": _summary_points,
}


def decode_otlp_metrics(
    parsed: Any,
    *,
    mapping: OtlpMapping,
    state: CumulativeState | None,
    rate_suffix: str,
    quantiles: tuple[float, ...],
    fmt: str = FORMAT,
) -> Decoded[MetricEvent]:
    """Decode a parsed ``ExportMetricsServiceRequest``.

    Each metric is decoded on its own: a bad one is reported with its position
    (``index`` counts the metrics of the message in order) and the others are kept.
    Error details start with ``fmt``, the name of the encoding the request came in.

    >>> request = {"resourceMetrics": [{"resource": {"attributes": [
    ...     {"key": "service.name", "value": {"stringValue": "checkout"}}]},
    ...     "scopeMetrics": [{"metrics": [{"name": "queue.depth", "gauge": {"dataPoints": [
    ...     {"asInt": "7", "timeUnixNano": "1700000000000000000"}]}}]}]}]}
    >>> e = decode_otlp_metrics(request, mapping=OtlpMapping(), state=None,
    ...                         rate_suffix="_rate", quantiles=(0.5,)).events[0]
    >>> e.service, e.metric, e.value, e.timestamp
    ('checkout', 'queue.depth', 7.0, 1700000000.0)
    """
    if not isinstance(parsed, dict):
        raise fail(fmt, "", Reason.NOT_AN_EVENT, "an ExportMetricsServiceRequest is an object")
    try:
        resources = array(parsed, "resourceMetrics")
    except DecodeError as exc:
        raise fail(fmt, "", exc.reason, exc.detail) from None
    out: Decoded[MetricEvent] = Decoded()
    ordinal = -1
    for r, resource_metrics in enumerate(resources):
        where_r = f"resourceMetrics[{r}]"
        try:
            if not isinstance(resource_metrics, dict):
                raise DecodeError(Reason.WRONG_TYPE, "must be an object")
            ctx = _Context(
                mapping=mapping,
                resource=attributes(child(resource_metrics, "resource").get("attributes")),
                state=state,
                rate_suffix=rate_suffix,
                quantiles=quantiles,
                fmt=fmt,
            )
            scope_key, scopes = first_array(
                resource_metrics, "scopeMetrics", "instrumentationLibraryMetrics"
            )
        except DecodeError as exc:
            ordinal += 1
            add_error(
                out, ordinal, fail(fmt, where_r, exc.reason, exc.detail), dumps(resource_metrics)
            )
            continue
        for s, scope_metrics in enumerate(scopes):
            where_s = f"{where_r}.{scope_key}[{s}]"
            try:
                if not isinstance(scope_metrics, dict):
                    raise DecodeError(Reason.WRONG_TYPE, "must be an object")
                metrics = array(scope_metrics, "metrics")
            except DecodeError as exc:
                ordinal += 1
                add_error(
                    out,
                    ordinal,
                    fail(fmt, where_s, exc.reason, exc.detail),
                    dumps(scope_metrics),
                )
                continue
            for m, metric in enumerate(metrics):
                ordinal += 1
                events: list[MetricEvent] = []
                name = metric.get("name") if isinstance(metric, dict) else None
                where = f"{where_s}.metrics[{m}]"
                try:
                    if not isinstance(name, str) or not name:
                        raise DecodeError(Reason.MISSING_FIELD, "has no name")
                    where += f" ({name})"
                    kind = next((k for k in _KINDS if k in metric), None)
                    if kind is None:
                        raise DecodeError(
                            Reason.MISSING_FIELD,
                            "has no data (none of gauge, sum, histogram, "
                            "exponentialHistogram, summary)",
                        )
                    data = metric[kind]
                    if not isinstance(data, dict):
                        raise DecodeError(Reason.WRONG_TYPE, f"'{kind}' must be an object")
                    ctx.name = name
                    _DECODERS[kind](ctx, data, events)
                except DecodeError as exc:
                    add_error(out, ordinal, fail(fmt, where, exc.reason, exc.detail), dumps(metric))
                    continue
                out.events.extend(events)
    if ordinal < 0:
        raise fail(fmt, "", Reason.EMPTY, "the request has no metric")
    return out
