"""Telemetry formats that producers already ship to Kafka.

Metrics: OTLP (JSON and protobuf), InfluxDB line protocol (Telegraf), collectd JSON,
prometheus-kafka-adapter JSON, Graphite plaintext; see :mod:`ingest.metrics` for the
entry point. Logs: OTLP (JSON and protobuf), Fluent Bit and Vector JSON records; see
:func:`~ingest.formats.structured_logs.decode_structured_logs` and :mod:`ingest.logs`.

Each decoder is pure: parsed JSON or bytes in, a :class:`~ingest.contract.Decoded`
out, every rejected element with a detail that names the format it was taken for.
"""

from ingest.formats.cumulative import CumulativeState, Increase
from ingest.formats.mapping import (
    CollectdMapping,
    GraphiteMapping,
    GraphiteTemplate,
    InfluxMapping,
    MetricMapping,
    OtlpMapping,
    PrometheusMapping,
)
from ingest.formats.structured_logs import (
    AgentLogMapping,
    StructuredLogConfig,
    decode_structured_logs,
)

__all__ = [
    "AgentLogMapping",
    "CollectdMapping",
    "CumulativeState",
    "GraphiteMapping",
    "GraphiteTemplate",
    "Increase",
    "InfluxMapping",
    "MetricMapping",
    "OtlpMapping",
    "PrometheusMapping",
    "StructuredLogConfig",
    "decode_structured_logs",
]
