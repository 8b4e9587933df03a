"""Mapping rules: which attribute, label, tag or field names the service, the host and
the metric, per format.

Every rule is a list of candidate names tried in order; the first one present wins and
is not repeated among the labels. When none is present the service falls back to
``default_service`` and the host stays unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class _SourceMapping(BaseModel, frozen=True, extra="forbid"):
    service: tuple[str, ...]
    host: tuple[str, ...]
    default_service: str = Field(default="unknown", min_length=1)


class OtlpMapping(_SourceMapping, frozen=True, extra="forbid"):
    """OTLP metrics and logs: names of resource (then data point) attributes.

    Parameters
    ----------
    service
        Attributes naming the service; ``service.name`` per the OpenTelemetry semantic
        conventions.
    host
        Attributes naming the host.
    default_service
        Used when no attribute names the service (the SDKs' own default).
    resource_labels
        Resource attributes copied into the labels (data point attributes always are).
    """

    service: tuple[str, ...] = ("service.name",)
    host: tuple[str, ...] = ("host.name",)
    default_service: str = "unknown_service"
    resource_labels: tuple[str, ...] = ()


class InfluxMapping(_SourceMapping, frozen=True, extra="forbid"):
    """InfluxDB line protocol (Telegraf): tag names and the metric name template.

    Parameters
    ----------
    service
        Tags naming the service (set one with Telegraf's ``[global_tags]``).
    host
        Tags naming the host; Telegraf adds ``host`` to every metric.
    metric
        Metric name template over ``{measurement}`` and ``{field}``.
    value_field
        A field of this name is named after its measurement alone, as Telegraf's
        Prometheus output does.
    counters
        Glob patterns of metric names (after the template) that are cumulative counters
        and become per-second rates, e.g. ``net_bytes_*``.
    precision
        Unit of the timestamps; ``auto`` tells s/ms/µs/ns apart by magnitude.
    """

    service: tuple[str, ...] = ("service",)
    host: tuple[str, ...] = ("host",)
    metric: str = "{measurement}_{field}"
    value_field: str | None = "value"
    counters: tuple[str, ...] = ()
    precision: Literal["auto", "ns", "us", "ms", "s"] = "auto"

    @field_validator("metric")
    @classmethod
    def _check_template(cls, value: str) -> str:
        try:
            value.format(measurement="m", field="f")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"metric template may use only {{measurement}} and {{field}}: {exc}"
            ) from None
        return value


class CollectdMapping(_SourceMapping, frozen=True, extra="forbid"):
    """collectd JSON: which value-list fields name the service and the host.

    Candidates are ``host``, ``plugin``, ``plugin_instance``, ``type``, ``type_instance``
    or ``meta.<key>`` (collectd meta data). The metric is named as collectd's
    ``write_prometheus`` plugin names it, without its ``collectd_`` prefix and ``_total``
    suffix: ``[prefix_]<plugin>_<type>[_<dsname>]`` (the plugin is left out when equal
    to the type, the data source when it is ``value``); ``plugin_instance`` becomes a
    label named after the plugin and ``type_instance`` a label ``type``.

    Parameters
    ----------
    service
        Fields naming the service; by default a ``service`` meta data entry, else the
        host (collectd is a host agent).
    host
        Fields naming the host.
    prefix
        Prepended to every metric name, e.g. ``collectd``.
    store_rates
        Set it as ``StoreRates`` is set in ``write_kafka``: when true, collectd already
        sent ``counter``/``derive``/``absolute`` values as rates (the ``dstypes`` still
        name the original types).
    """

    service: tuple[str, ...] = ("meta.service", "host")
    host: tuple[str, ...] = ("host",)
    default_service: str = "collectd"
    prefix: str = ""
    store_rates: bool = False


class PrometheusMapping(_SourceMapping, frozen=True, extra="forbid"):
    """prometheus-kafka-adapter JSON: label names and the counters.

    Parameters
    ----------
    service
        Labels naming the service (Prometheus' ``job``).
    host
        Labels naming the host (Prometheus' ``instance``).
    counters
        Glob patterns of metric names that are cumulative counters and become
        per-second rates (Prometheus' naming conventions by default).
    """

    service: tuple[str, ...] = ("job",)
    host: tuple[str, ...] = ("instance",)
    counters: tuple[str, ...] = ("*_total", "*_count", "*_sum", "*_bucket")


class GraphiteTemplate(BaseModel, frozen=True, extra="forbid"):
    """How one family of Graphite paths splits into service, host, metric and labels.

    ``template`` names each dot-separated node of the path: ``service``, ``host``,
    ``metric`` (nodes joined with dots, in order), ``metric*`` (this node and all the
    rest), ``_`` (dropped), or any other word (a label of that name).

    Parameters
    ----------
    match
        Glob pattern the whole path must match for this template to apply.
    template
        The node names, e.g. ``servers.host.service.metric*``.

    >>> GraphiteTemplate(match="servers.*", template="_.host.service.metric*").template
    '_.host.service.metric*'
    """

    match: str = "*"
    template: str

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        nodes = value.split(".")
        if not any(node in ("metric", "metric*") for node in nodes):
            raise ValueError("a Graphite template needs a 'metric' or 'metric*' node")
        if "metric*" in nodes[:-1]:
            raise ValueError("'metric*' may only be the last node of a Graphite template")
        return value


class GraphiteMapping(_SourceMapping, frozen=True, extra="forbid"):
    """Graphite plaintext: templates for the path, tag names for tagged series.

    Parameters
    ----------
    service
        Tags (Graphite 1.1 ``;tag=value``) naming the service.
    host
        Tags naming the host.
    templates
        Tried in order; the first whose ``match`` fits the path applies. Without one,
        the whole path is the metric name.
    counters
        Glob patterns of metric names that are cumulative counters (become rates).
    """

    service: tuple[str, ...] = ("service",)
    host: tuple[str, ...] = ("host",)
    default_service: str = "graphite"
    templates: tuple[GraphiteTemplate, ...] = ()
    counters: tuple[str, ...] = ()


class MetricMapping(BaseModel, frozen=True, extra="forbid"):
    """The mapping rules of every metric format, each with its own defaults."""

    otlp: OtlpMapping = OtlpMapping()
    influx: InfluxMapping = InfluxMapping()
    collectd: CollectdMapping = CollectdMapping()
    prometheus: PrometheusMapping = PrometheusMapping()
    graphite: GraphiteMapping = GraphiteMapping()


def take_first(
    values: dict[str, str], candidates: tuple[str, ...]
) -> tuple[str, str] | tuple[None, None]:
    """The first candidate present with a non-empty value, as ``(name, value)``.

    >>> take_first({"job": "api", "instance": "h1"}, ("service", "job"))
    ('job', 'api')
    """
    for name in candidates:
        value = values.get(name)
        if value:
            return name, value
    return None, None


def split_labels(
    values: dict[str, str], mapping: _SourceMapping
) -> tuple[str, str | None, tuple[tuple[str, str], ...]]:
    """``(service, host, labels)`` from a flat string map, by a mapping's rules.

    The names used for the service and the host are not repeated among the labels.

    >>> split_labels({"job": "api", "instance": "h1", "path": "/"}, PrometheusMapping())
    ('api', 'h1', (('path', '/'),))
    """
    service_key, service = take_first(values, mapping.service)
    host_key, host = take_first(values, mapping.host)
    labels = tuple(
        sorted(
            (key, value) for key, value in values.items() if key != service_key and key != host_key
        )
    )
    return service or mapping.default_service, host, labels


@lru_cache(maxsize=65536)
def matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``name`` matches one of the glob ``patterns`` (case-sensitive, cached)."""
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def flat_strings(obj: Mapping[str, object]) -> dict[str, str]:
    """Only the string-valued entries of a mapping."""
    return {key: value for key, value in obj.items() if isinstance(value, str)}
