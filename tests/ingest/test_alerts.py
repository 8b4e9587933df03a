"""Decoding alerts of other tools: Alertmanager and Grafana webhooks, plain JSON."""

from __future__ import annotations

import orjson
import pytest

from ingest.alerts import AlertIngestConfig, decode_alert_message
from ingest.exceptions import DecodeError, Reason

NOW = 1_800_000_000.0


def decode(body: object, source=None, **config: object):
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return decode_alert_message(
        payload,
        config=AlertIngestConfig(**config),
        max_bytes=1 << 16,
        received_at=NOW,
        source=source,
    )


AM_ALERT = {
    "status": "resolved",
    "labels": {"alertname": "DiskFull", "instance": "db-1:9100", "job": "node"},
    "annotations": {"description": "disk / is 97% full"},
    "startsAt": "2026-12-03T10:00:00.123Z",
    "endsAt": "2026-12-03T10:20:00Z",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
    "fingerprint": "5f1e",
}


def test_alertmanager_payload() -> None:
    body = {"version": "4", "receiver": "aiops", "status": "resolved", "alerts": [AM_ALERT]}
    (alert,) = decode(body).events
    assert (alert.name, alert.service, alert.status, alert.source) == (
        "DiskFull",
        "node",
        "resolved",
        "alertmanager",
    )
    assert alert.summary == "disk / is 97% full" and alert.severity == "warning"
    assert alert.ends_at == 1796293200.0  # 2026-12-03T10:20:00Z
    assert alert.fingerprint == "5f1e" and alert.url.startswith("http://prometheus")


def test_grafana_payload_is_told_apart() -> None:
    body = {
        "receiver": "x",
        "status": "firing",
        "orgId": 1,
        "state": "alerting",
        "title": "[FIRING:1]",
        "alerts": [{**AM_ALERT, "status": "firing"}],
    }
    assert decode(body).events[0].source == "grafana"


def test_plain_json_alerts() -> None:
    body = [
        {"name": "QueueBacklog", "status": "firing", "service": "billing", "severity": "high"},
        {"name": "x", "status": "maybe"},
    ]
    decoded = decode(body)
    (alert,) = decoded.events
    assert (alert.service, alert.severity, alert.starts_at) == ("billing", "critical", NOW)
    (error,) = decoded.errors
    assert error.index == 1 and error.error.reason is Reason.INVALID_VALUE


def test_service_from_opentelemetry_labels_first() -> None:
    labels = {
        "alertname": "A",
        "job": "kubelet",
        "service_name": "cart",
        "service_namespace": "shop",
    }
    body = {"alerts": [{"status": "firing", "labels": labels}]}
    assert decode(body).events[0].service == "shop/cart"
    body = {"alerts": [{"status": "firing", "labels": {"alertname": "A", "team": "pay"}}]}
    assert decode(body, service_labels=("team",)).events[0].service == "pay"
    assert (
        decode({"alerts": [{"status": "firing", "labels": {"alertname": "A"}}]}).events[0].service
        == "unknown"
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.EMPTY),
        (b"{not json", Reason.INVALID_JSON),
        (orjson.dumps({"receiver": "x", "alerts": []}), Reason.EMPTY),
        (orjson.dumps({"version": "4", "alerts": "nope"}), Reason.MISSING_FIELD),
        (b"x" * 70000, Reason.OVERSIZED),
        (orjson.dumps({"version": "3", "alerts": [AM_ALERT]}), Reason.INVALID_VALUE),
    ],
)
def test_a_bad_message_is_refused_with_its_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        decode(payload, source="alertmanager" if payload.startswith(b"{") else None)
    assert info.value.reason is reason


def test_a_start_in_the_future_is_taken_as_the_time_of_receipt() -> None:
    from ingest.alerts import alert_anomaly

    body = {
        "alerts": [{"status": "firing", "labels": {"alertname": "Skewed"}, "startsAt": NOW + 3600}]
    }
    (alert,) = decode(body).events
    assert alert_anomaly(alert).timestamp == NOW


def test_a_bad_alert_of_a_webhook_is_reported_and_the_rest_kept() -> None:
    body = {
        "version": "4",
        "alerts": [
            AM_ALERT,
            {"status": "firing", "labels": {}},
            {"status": "firing", "labels": {"alertname": "B"}, "startsAt": "yesterday"},
        ],
    }
    decoded = decode(body)
    assert [a.name for a in decoded.events] == ["DiskFull"]
    assert [(e.index, e.error.reason) for e in decoded.errors] == [
        (1, Reason.MISSING_FIELD),
        (2, Reason.INVALID_VALUE),
    ]
