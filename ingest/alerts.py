"""Alerts from other tools: Alertmanager and Grafana webhooks, and a plain JSON alert.

Teams already run Prometheus rules, Alertmanager and Grafana alerting. Their alerts come in
over the worker's web port or the ``telemetry.alerts`` topic and become signals of the
incident engine beside the anomalies (:func:`alert_anomaly`): ``firing`` joins or opens an
incident and holds it open, ``resolved`` ends the signal.

Formats, told apart by their shape:

- **Alertmanager** webhook (payload ``version`` ``"4"``): ``{"receiver", "status",
  "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
  "fingerprint"}], ...}``;
- **Grafana** alerting webhook: the same ``alerts`` array (Grafana's payload extends
  Alertmanager's; ``orgId``, ``state`` and ``title`` tell it apart);
- **plain JSON**: one object or an array of ``{"name", "status", "service", "severity",
  "started_at", "ended_at", "labels", "summary", "fingerprint", "url"}`` (``name`` and
  ``status`` required, ``started_at`` defaults to the time of receipt).

The service of an alert is the first of ``service_labels`` its labels have (OpenTelemetry's
``service.name`` first, prefixed by ``service.namespace`` when present), else
``default_service``; its severity is the ``severity_label`` label mapped through
``severities``. Everything here is pure: no Kafka, no HTTP.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import AlertEvent
from ingest.contract import Decoded, EventError, parse_timestamp, without_bom
from ingest.exceptions import DecodeError, Reason
from ingest.identity import screen

AlertSource = Literal["alertmanager", "grafana", "json"]
Severity = Literal["critical", "warning", "info"]

ALERT_SCORES = {"critical": 1.0, "warning": 0.8, "info": 0.6}
"""Score of an alert's anomaly record by its severity."""

DEFAULT_SEVERITIES: dict[str, Severity] = {
    "critical": "critical",
    "page": "critical",
    "high": "critical",
    "error": "critical",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "ticket": "warning",
    "info": "info",
    "low": "info",
    "none": "info",
}
"""Values of the severity label (lower case) and the severity each means."""

DETECTOR = "external_alert"
"""The ``detector`` of an alert's anomaly record."""


class AlertIngestConfig(BaseModel, frozen=True, extra="forbid"):
    """How alerts of other tools map to services and severities.

    Parameters
    ----------
    service_labels
        Labels that name the service, first present wins.
    namespace_labels
        Labels that name the service's namespace (prefixed as ``namespace/service`` to a
        service taken from ``service.name``).
    default_service
        Service of an alert without any of those labels.
    severity_label
        The label holding the alert's severity.
    severities
        Its values (lower case) mapped to ``critical``, ``warning`` or ``info``; unknown
        values are ``warning``.
    """

    service_labels: tuple[str, ...] = ("service.name", "service_name", "service", "job", "app")
    namespace_labels: tuple[str, ...] = ("service.namespace", "service_namespace")
    default_service: str = Field(default="unknown", min_length=1)
    severity_label: str = "severity"
    severities: dict[str, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITIES))


def decode_alert_message(
    payload: bytes,
    *,
    config: AlertIngestConfig,
    max_bytes: int,
    received_at: float,
    source: AlertSource | None = None,
) -> Decoded[AlertEvent]:
    """Decode one webhook body or ``telemetry.alerts`` message.

    ``source`` names the format (the HTTP route does); ``None`` tells it from the shape.
    Raises :class:`DecodeError` when the message as a whole is unusable; a bad alert of an
    array is reported in :attr:`Decoded.errors`.

    >>> body = orjson.dumps({"version": "4", "status": "firing", "receiver": "aiops",
    ...     "alerts": [{"status": "firing", "startsAt": "2026-12-03T10:00:00Z",
    ...                 "labels": {"alertname": "HighErrorRate", "job": "checkout",
    ...                            "severity": "page"},
    ...                 "annotations": {"summary": "5% of requests fail"},
    ...                 "fingerprint": "a1b2"}]})
    >>> alert = decode_alert_message(body, config=AlertIngestConfig(), max_bytes=1 << 20,
    ...                              received_at=1.8e9).events[0]
    >>> alert.name, alert.service, alert.severity, alert.source, alert.summary
    ('HighErrorRate', 'checkout', 'critical', 'alertmanager', '5% of requests fail')
    """
    original, payload = payload, without_bom(payload)
    if len(payload) > max_bytes:
        raise DecodeError(
            Reason.OVERSIZED, f"message is {len(payload)} bytes, the limit is {max_bytes}"
        )
    if not payload.strip():
        raise DecodeError(Reason.EMPTY, "message is empty")
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(Reason.INVALID_JSON, f"not valid JSON: {exc}") from None
    kind = source or _shape(parsed)
    out: Decoded[AlertEvent] = Decoded()
    items: Any
    if kind == "json":
        items = parsed if isinstance(parsed, list) else [parsed]
        build = _plain
    else:
        if not isinstance(parsed, dict):
            raise DecodeError(Reason.WRONG_TYPE, f"a {kind} webhook body must be a JSON object")
        version = parsed.get("version")
        if kind == "alertmanager" and version is not None and str(version) != "4":
            raise DecodeError(
                Reason.INVALID_VALUE,
                f"Alertmanager webhook payload version {version!r}; version '4' is read",
            )
        items = parsed.get("alerts")
        if not isinstance(items, list):
            raise DecodeError(Reason.MISSING_FIELD, f"a {kind} body needs 'alerts', a list")
        build = _webhook
    if not items:
        raise DecodeError(Reason.EMPTY, "no alerts in the message")
    for index, item in enumerate(items):
        try:
            out.events.append(build(item, config, received_at, kind))
        except DecodeError as exc:
            out.errors.append(EventError(index, exc, orjson.dumps(item)))
    return screen(out, original)


def _shape(parsed: Any) -> AlertSource:
    if isinstance(parsed, dict) and "alerts" in parsed:  # a webhook body, even a broken one
        if "orgId" in parsed or "state" in parsed or "title" in parsed:
            return "grafana"
        return "alertmanager"
    return "json"


def _webhook(item: Any, config: AlertIngestConfig, now: float, kind: str) -> AlertEvent:
    if not isinstance(item, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "an alert must be a JSON object")
    labels = _strings(item.get("labels"), "labels")
    name = labels.get("alertname")
    if not name:
        raise DecodeError(Reason.MISSING_FIELD, "an alert needs the label 'alertname'")
    annotations = _strings(item.get("annotations") or {}, "annotations")
    status = _status(item.get("status"))
    starts = _time(item.get("startsAt"), "startsAt", now)
    ends = _time(item.get("endsAt"), "endsAt", None)
    fingerprint = item.get("fingerprint")
    return _event(
        name=name,
        status=status,
        labels=labels,
        starts_at=starts,
        ends_at=ends,
        summary=annotations.get("summary") or annotations.get("description") or "",
        fingerprint=str(fingerprint) if fingerprint else "",
        url=str(item.get("generatorURL") or ""),
        source="grafana" if kind == "grafana" else "alertmanager",
        config=config,
        received_at=now,
    )


def _plain(item: Any, config: AlertIngestConfig, now: float, kind: str) -> AlertEvent:
    if not isinstance(item, dict):
        raise DecodeError(Reason.NOT_AN_EVENT, "an alert must be a JSON object")
    name = item.get("name") or item.get("alertname")
    if not isinstance(name, str) or not name:
        raise DecodeError(Reason.MISSING_FIELD, "an alert needs 'name', a string")
    labels = _strings(item.get("labels") or {}, "labels")
    for key in ("service", "severity"):
        if item.get(key) is not None:
            labels[key if key == "service" else config.severity_label] = str(item[key])
    return _event(
        name=name,
        status=_status(item.get("status")),
        labels=labels,
        starts_at=_time(item.get("started_at"), "started_at", now),
        ends_at=_time(item.get("ended_at"), "ended_at", None),
        summary=str(item.get("summary") or ""),
        fingerprint=str(item.get("fingerprint") or ""),
        url=str(item.get("url") or ""),
        source="json",
        config=config,
        received_at=now,
    )


def _event(
    *,
    name: str,
    status: Literal["firing", "resolved"],
    labels: dict[str, str],
    starts_at: float,
    ends_at: float | None,
    summary: str,
    fingerprint: str,
    url: str,
    source: AlertSource,
    config: AlertIngestConfig,
    received_at: float,
) -> AlertEvent:
    service = config.default_service
    for key in config.service_labels:
        if labels.get(key):
            service = labels[key]
            namespace = next((labels[n] for n in config.namespace_labels if labels.get(n)), "")
            if namespace and key in ("service.name", "service_name"):
                service = f"{namespace}/{service}"
            break
    raw = labels.get(config.severity_label, "").lower()
    severity = config.severities.get(raw, "warning")
    return AlertEvent(
        name=name,
        service=service,
        status=status,
        severity=severity,
        starts_at=starts_at,
        ends_at=ends_at,
        labels=tuple(sorted(labels.items())),
        summary=summary,
        fingerprint=fingerprint,
        source=source,
        url=url,
        received_at=received_at,
    )


def _strings(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise DecodeError(Reason.WRONG_TYPE, f"'{name}' must be an object of strings")
    return {str(k): str(v) for k, v in value.items()}


def _status(value: Any) -> Literal["firing", "resolved"]:
    if value == "firing":
        return "firing"
    if value == "resolved":
        return "resolved"
    raise DecodeError(
        Reason.INVALID_VALUE, f"'status' must be 'firing' or 'resolved', not {value!r}"
    )


def _time(value: Any, name: str, default: float | None) -> Any:
    if value in (None, "") or (isinstance(value, str) and value.startswith("0001-01-01")):
        return default  # Alertmanager's zero time: not set
    return parse_timestamp(value, name)


def alert_anomaly(
    alert: AlertEvent, *, received_at: float | None = None, window_s: float = 300.0
) -> Anomaly:
    """The anomaly record of an alert, for the incident engine (``received_at``: when the
    notification came, by default the alert's own ``received_at``).

    Its onset is the alert's start, but no earlier than ``window_s`` before it was received:
    an alert that has fired for hours (and is notified again) still meets the anomalies of
    now. A ``resolved`` record says when it stopped (``emitted_at``). Its labels, without
    the alert name, are its identity, so repeats of one alert fold into one signal.

    >>> a = AlertEvent("HighErrorRate", "checkout", "firing", "critical", 1000.0, None,
    ...                (("alertname", "HighErrorRate"), ("job", "checkout")), "", "f1",
    ...                "alertmanager")
    >>> r = alert_anomaly(a, received_at=5000.0)
    >>> r.signal, r.kind.value, r.timestamp, r.score, r.details["phase"]
    ('alert:HighErrorRate', 'alert', 4700.0, 1.0, 'firing')
    """
    if received_at is None:
        received_at = alert.received_at
    onset = min(received_at, max(alert.starts_at, received_at - window_s))
    if not math.isfinite(onset):
        onset = received_at
    emitted = received_at
    if alert.status == "resolved" and alert.ends_at is not None:
        emitted = max(onset, alert.ends_at)
    details: dict[str, Any] = {
        "phase": alert.status,
        "emitted_at": emitted,
        "started_at": alert.starts_at,
        "severity": alert.severity,
        "source": alert.source,
        "alert": alert.name,
    }
    if alert.summary:
        details["summary"] = alert.summary
    if alert.url:
        details["url"] = alert.url
    if alert.fingerprint:
        details["alert_fingerprint"] = alert.fingerprint
    return Anomaly(
        service=alert.service,
        signal=f"alert:{alert.name}",
        kind=SignalKind.ALERT,
        timestamp=onset,
        value=1.0 if alert.status == "firing" else 0.0,
        score=ALERT_SCORES[alert.severity] if alert.status == "firing" else 0.0,
        direction=Direction.ALERT,
        detector=DETECTOR,
        labels=tuple((k, v) for k, v in alert.labels if k != "alertname"),
        details=details,
    )


def split_alert_body(payload: bytes, max_bytes: int) -> list[bytes]:
    """A webhook body as messages of at most ``max_bytes`` each, of the same format: the
    ``alerts`` list (or a plain array) cut into parts, the rest of the body kept in every
    part. A body that fits, and one that cannot be cut, is returned whole.

    >>> body = orjson.dumps({"version": "4", "alerts": [{"n": i} for i in range(100)]})
    >>> parts = split_alert_body(body, 400)
    >>> len(parts) > 1, all(len(p) <= 400 for p in parts)
    (True, True)
    >>> sum(len(orjson.loads(p)["alerts"]) for p in parts)
    100
    """
    if len(payload) <= max_bytes:
        return [payload]
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return [payload]
    if isinstance(parsed, list):
        items, wrap = parsed, lambda part: part
    elif isinstance(parsed, dict) and isinstance(parsed.get("alerts"), list):
        items, wrap = parsed["alerts"], lambda part: {**parsed, "alerts": part}
    else:
        return [payload]
    base = len(orjson.dumps(wrap([])))
    out: list[bytes] = []
    part: list[Any] = []
    size = base
    for item in items:
        length = len(orjson.dumps(item)) + 1  # and its comma
        if part and size + length > max_bytes:
            out.append(orjson.dumps(wrap(part)))
            part, size = [], base
        part.append(item)
        size += length
    if part:
        out.append(orjson.dumps(wrap(part)))
    return out
