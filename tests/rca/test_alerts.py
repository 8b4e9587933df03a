"""Stateful alerts (SLO burn rates) in the incident engine: an incident stays open while its
alert fires and resolves when the alert says it stopped."""

from __future__ import annotations

from detectors.anomaly import Anomaly
from detectors.events import MetricEvent
from detectors.forecast import ForecastConfig, ForecastMonitor
from detectors.forecast.config import BurnRateRule
from rca.engine import IncidentEngine
from rca.model import Incident, IncidentState
from tests.rca.conftest import make_anomaly

HOUR = 3600.0
T0 = 1_700_000_000.0
RULE = BurnRateRule.model_validate(
    {
        "name": "availability",
        "objective": 0.999,
        "error_metric": "http_errors_total",
        "total_metric": "http_requests_total",
        "windows": [
            {"long_seconds": HOUR, "short_seconds": 300, "burn_rate": 14.4, "severity": "page"}
        ],
    }
)


def burn_rate_alerts(failing: tuple[float, float], hours: float) -> list[tuple[float, Anomaly]]:
    """``(time, record)`` of the burn-rate alerts of a service failing 5% of its requests
    from ``failing[0]`` to ``failing[1]`` hours, one counter sample a minute."""
    monitor = ForecastMonitor(ForecastConfig(burn_rates=[RULE]))
    requests = errors = 0.0
    out = []
    for i in range(int(hours * 60)):
        t = T0 + i * 60.0
        requests += 3000.0
        errors += 150.0 if failing[0] * HOUR <= i * 60.0 < failing[1] * HOUR else 0.0
        for metric, value in (("http_requests_total", requests), ("http_errors_total", errors)):
            out += [(t, a) for a in monitor.process(MetricEvent(t, "checkout", metric, value))]
    return out


def replay(
    engine: IncidentEngine, records: list[tuple[float, Anomaly]], until: float
) -> list[Incident]:
    """Records and a tick a minute, in time order; the snapshots published."""
    snapshots: list[Incident] = []
    pending = sorted(records, key=lambda r: r[0])
    t = T0
    while t <= until:
        while pending and pending[0][0] <= t:
            snapshots += engine.on_anomaly(pending.pop(0)[1]).incidents
        snapshots += engine.tick(t).incidents
        t += 60.0
    return snapshots


def test_an_incident_stays_open_while_its_alert_fires_and_resolves_with_it() -> None:
    alerts = burn_rate_alerts(failing=(1.5, 3.0), hours=4)
    assert [a.details["phase"] for _, a in alerts] == ["firing", "resolved"]
    (fired_at, _), (stopped_at, _) = alerts
    assert stopped_at - fired_at > 2 * 600.0  # firing for longer than two quiet periods

    snapshots = replay(IncidentEngine(), alerts, until=T0 + 4 * HOUR)
    assert [s.state for s in snapshots] == [IncidentState.OPENED, IncidentState.RESOLVED]
    resolved = snapshots[-1]
    assert resolved.resolved_at == stopped_at
    assert resolved.timeline[-1].text == "checkout slo:availability stopped firing"


def test_a_firing_alert_survives_a_restart_of_the_engine() -> None:
    (fired_at, firing), (stopped_at, stopped) = burn_rate_alerts(failing=(1.5, 3.0), hours=4)
    engine = IncidentEngine()
    opened = replay(engine, [(fired_at, firing)], until=fired_at + 1800.0)
    assert [s.state for s in opened] == [IncidentState.OPENED]
    restored = IncidentEngine.load_state(engine.dump_state())
    later = replay(restored, [(stopped_at, stopped)], until=T0 + 4 * HOUR)
    assert [s.state for s in later] == [IncidentState.RESOLVED]
    assert later[0].resolved_at == stopped_at


def test_the_end_of_an_alert_is_not_evidence() -> None:
    _, (_, stopped) = burn_rate_alerts(failing=(1.5, 3.0), hours=4)
    engine = IncidentEngine()
    assert not engine.on_anomaly(stopped)  # opens nothing on its own
    assert not engine.tick(stopped.details["emitted_at"] + 3600.0)
    assert engine.open_incidents == ()


def test_other_anomalies_keep_the_quiet_period_after_the_alert_stops() -> None:
    (fired_at, firing), (stopped_at, stopped) = burn_rate_alerts(failing=(1.5, 3.0), hours=4)
    latency = make_anomaly("checkout", "latency_p99", stopped_at - 120.0)
    snapshots = replay(
        IncidentEngine(),
        [(fired_at, firing), (stopped_at - 120.0, latency), (stopped_at, stopped)],
        until=T0 + 4 * HOUR,
    )
    states = [s.state for s in snapshots]
    assert states[0] is IncidentState.OPENED and states[-1] is IncidentState.RESOLVED
    assert states.count(IncidentState.RESOLVED) == 1
    ended = next(s for s in snapshots if "stopped firing" in s.timeline[-1].text)
    assert ended.state is IncidentState.UPDATED  # the latency anomaly is two minutes old
    assert snapshots[-1].resolved_at == stopped_at - 120.0 + 600.0  # then quiet for 600 s
