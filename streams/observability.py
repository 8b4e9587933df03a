"""Prometheus metrics of the worker, served on ``/metrics`` of its web port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES_CONSUMED = Counter(
    "aiops_messages_consumed_total",
    "Kafka messages consumed, per topic.",
    ["topic"],
    registry=REGISTRY,
)
EVENTS_ACCEPTED = Counter(
    "aiops_events_accepted_total",
    "Telemetry events that passed validation, per topic.",
    ["topic"],
    registry=REGISTRY,
)
EVENTS_DEADLETTERED = Counter(
    "aiops_events_deadlettered_total",
    "Messages or events sent to the dead-letter topic, per source topic and reason.",
    ["topic", "reason"],
    registry=REGISTRY,
)
ANOMALIES = Counter(
    "aiops_anomalies_total",
    "Anomaly records published, per signal kind and detector.",
    ["kind", "detector"],
    registry=REGISTRY,
)
INCIDENT_CHANGES = Counter(
    "aiops_incident_changes_total",
    "Incident snapshots published, per state.",
    ["state"],
    registry=REGISTRY,
)
INCIDENTS_OPEN = Gauge(
    "aiops_incidents_open",
    "Incidents currently open on this worker.",
    registry=REGISTRY,
)
ACTIONS = Counter(
    "aiops_actions_total",
    "Remediation actions published, per action and mode.",
    ["action", "mode"],
    registry=REGISTRY,
)
SLACK_DELIVERIES = Counter(
    "aiops_slack_deliveries_total",
    "Slack API calls, per method and outcome.",
    ["method", "outcome"],
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "aiops_notifications_total",
    "Calls to the receivers of incidents (slack, pagerduty, webhook), per call and outcome.",
    ["notifier", "call", "outcome"],
    registry=REGISTRY,
)
SERIES_TRACKED = Gauge(
    "aiops_series_tracked",
    "Metric series with detector state on this worker.",
    registry=REGISTRY,
)
SERIES_REJECTED = Counter(
    "aiops_series_rejected_total",
    "New series not tracked because the per-worker cap was reached.",
    registry=REGISTRY,
)
LOG_LINES_UNMINED = Counter(
    "aiops_log_lines_unmined_total",
    "Log lines put in no template of their own: their service was at max_templates "
    "(cause template_cap) or a new service came past max_services (cause service_cap).",
    ["cause"],
    registry=REGISTRY,
)
LOG_SERVICES_TRACKED = Gauge(
    "aiops_log_services_tracked",
    "Log services with template and rate state on this worker.",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "aiops_consumer_lag_messages",
    "Messages between the committed offset and the end of each input partition.",
    ["topic", "partition"],
    registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "aiops_message_processing_seconds",
    "Time to process one input message, per topic.",
    ["topic"],
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
    registry=REGISTRY,
)
SERIES_RESTORED = Counter(
    "aiops_series_restored_total",
    "Series whose detector state was restored from a checkpoint (restart or rebalance).",
    registry=REGISTRY,
)
