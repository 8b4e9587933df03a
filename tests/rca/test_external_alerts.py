"""Alerts of other tools (Alertmanager, Grafana, plain JSON) as signals of the incident
engine: they join anomalies of their service, hold an incident open while they fire and
let it resolve when they stop."""

from __future__ import annotations

import orjson

from detectors.events import AlertEvent
from ingest.alerts import AlertIngestConfig, alert_anomaly, decode_alert_message
from rca.engine import IncidentEngine
from rca.model import Incident, IncidentState, Severity
from tests.rca.conftest import make_anomaly

T0 = 1_764_756_000.0  # 2025-12-03 10:00:00Z


def alert(status: str, *, starts: float = T0, ends: float | None = None, sev: str = "page"):
    body = {
        "version": "4",
        "status": status,
        "receiver": "aiops",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "HighErrorRate", "job": "checkout", "severity": sev},
                "annotations": {"summary": "5% of checkout requests fail"},
                "startsAt": starts,
                "endsAt": ends or "0001-01-01T00:00:00Z",
                "fingerprint": "c0ffee",
            }
        ],
    }
    return decode_alert_message(
        orjson.dumps(body), config=AlertIngestConfig(), max_bytes=1 << 20, received_at=T0
    ).events[0]


def feed(engine: IncidentEngine, event: AlertEvent, at: float) -> list[Incident]:
    return list(engine.on_anomaly(alert_anomaly(event, received_at=at)).incidents)


def test_an_alert_and_an_anomaly_of_its_service_are_one_incident() -> None:
    engine = IncidentEngine()
    out = feed(engine, alert("firing"), T0 + 5)
    out += engine.on_anomaly(make_anomaly("checkout", "latency_p99", T0 + 20)).incidents
    assert {i.id for i in out} == {out[0].id}
    last = out[-1]
    assert {a.signal for a in last.anomalies} == {"alert:HighErrorRate", "latency_p99"}
    assert last.severity is Severity.CRITICAL  # the alert's severity label says page
    texts = [e.text for e in last.timeline]
    assert any("alert HighErrorRate firing (critical, alertmanager)" in t for t in texts)
    notes = " ".join(c.explanation for c in last.root_causes)
    assert "alert HighErrorRate firing since 10:00:00Z" in notes


def test_a_firing_alert_holds_its_incident_open_and_its_end_resolves_it() -> None:
    engine = IncidentEngine()
    feed(engine, alert("firing"), T0)
    quiet = engine.config.correlation.quiet_period_s
    for minute in range(1, 60):  # an hour without any other sign: the alert still fires
        assert not [i for i in engine.tick(T0 + 60 * minute).incidents if i.resolved_at]
    done = feed(engine, alert("resolved", ends=T0 + 3600), T0 + 3600)
    assert done and done[-1].state is IncidentState.RESOLVED
    assert quiet < 3600


def test_repeated_notifications_of_one_alert_fold_into_one_signal() -> None:
    engine = IncidentEngine()
    out: list[Incident] = []
    for repeat in range(4):  # Alertmanager notifies again every repeat_interval
        out += feed(engine, alert("firing"), T0 + 300 * repeat)
    assert len({i.id for i in out}) == 1
    assert len(out[-1].anomalies) == 1 and out[-1].anomalies[0].count >= 1


def test_an_old_alert_still_meets_the_anomalies_of_now() -> None:
    # fired two hours ago and notified again now: its onset is the correlation window ago
    engine = IncidentEngine()
    out = feed(engine, alert("firing", starts=T0 - 7200), T0)
    out += engine.on_anomaly(make_anomaly("checkout", "cpu", T0 + 30)).incidents
    assert len({i.id for i in out}) == 1
    assert out[0].opened_at == T0 - 300


def test_a_warning_alert_alone_is_a_warning_incident() -> None:
    engine = IncidentEngine()
    out = feed(engine, alert("firing", sev="warning"), T0)
    assert out[-1].severity is Severity.WARNING


def test_an_alert_storm_is_one_incident_of_bounded_size() -> None:
    engine = IncidentEngine()
    published: list[Incident] = []
    for i in range(1000):  # 1,000 alerts of 100 services in a second, no topology
        event = AlertEvent(
            f"Alert{i}",
            f"svc-{i % 100}",
            "firing",
            "warning",
            T0 + i / 1000,
            None,
            (("alertname", f"Alert{i}"), ("job", f"svc-{i % 100}")),
            "",
            "",
            "alertmanager",
        )
        published += engine.on_anomaly(alert_anomaly(event, received_at=T0 + 1)).incidents
    assert len({i.id for i in published}) == 1
    limit = engine.config.correlation.max_signals
    assert len(published) <= limit  # no snapshot for a signal past the limit
    engine_tick = engine.tick(T0 + 2).incidents
    last = (engine_tick or published)[-1]
    assert len(last.anomalies) == limit
