"""PagerDuty Events API v2 against a local server that speaks it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from notify.config import RetryConfig
from notify.exceptions import PagerDutyUnavailable
from notify.pagerduty import PagerDutyConfig, PagerDutyNotifier, PagerDutyRoute
from rca.model import Incident, IncidentState, RootCauseCandidate, Severity
from tests.pagerduty_server import ROUTING_KEY, FakePagerDuty

OPENED = Incident(
    id="inc-42",
    version=1,
    state=IncidentState.OPENED,
    severity=Severity.CRITICAL,
    title="checkout: errors anomaly",
    services=("checkout", "payments"),
    opened_at=1_796_292_000.0,
    updated_at=1_796_292_000.0,
    root_causes=(RootCauseCandidate("payments", "errors", "errors", 0.9, "errors 40 sigma", 40.0),),
)
ACKED = replace(OPENED, version=2, acknowledged=True, acknowledged_by="ana")
RESOLVED = replace(OPENED, version=3, state=IncidentState.RESOLVED, resolved_at=1_796_293_000.0)


async def no_sleep(_: float) -> None:
    return None


def notifier(server: FakePagerDuty, **config: object) -> PagerDutyNotifier:
    settings = PagerDutyConfig(
        routing_key=ROUTING_KEY,
        url=server.url,
        console_url="https://aiops.example/console",
        retry=RetryConfig(max_attempts=3, backoff_s=0.01, timeout_s=1.0),
        **config,
    )
    return PagerDutyNotifier(settings, sleep=no_sleep)


def run(server_call):  # one event loop per test, the server in it
    async def main():
        async with FakePagerDuty() as server:
            return await server_call(server)

    return asyncio.run(main())


def test_trigger_acknowledge_resolve_with_the_incident_id_as_dedup_key() -> None:
    async def scenario(server: FakePagerDuty):
        pd = notifier(server)
        await pd.deliver([OPENED])
        await pd.deliver([OPENED, ACKED])  # a redelivered snapshot changes nothing
        await pd.deliver([RESOLVED])
        await pd.close()
        return server

    server = run(scenario)
    assert server.actions() == [
        ("trigger", "inc-42"),
        ("acknowledge", "inc-42"),
        ("resolve", "inc-42"),
    ]
    trigger = server.events[0]
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["component"] == "payments"
    assert trigger["payload"]["custom_details"]["root_causes"][0]["why"] == "errors 40 sigma"
    assert trigger["links"][0]["href"] == "https://aiops.example/console/incidents/inc-42"
    assert server.alerts["inc-42"] == "resolved"


def test_a_batch_collapses_to_the_latest_snapshot() -> None:
    async def scenario(server: FakePagerDuty):
        pd = notifier(server)
        await pd.deliver([OPENED, ACKED, RESOLVED])
        await pd.close()
        return server

    assert run(scenario).actions() == [("resolve", "inc-42")]


def test_429_and_500_are_retried() -> None:
    async def scenario(server: FakePagerDuty):
        server.fail("429", "500")
        pd = notifier(server)
        report = await pd.deliver([OPENED])
        await pd.close()
        return server, report

    server, report = run(scenario)
    assert server.actions() == [("trigger", "inc-42")] and report.retries == 2


def test_an_outage_raises_and_the_same_snapshots_go_out_later() -> None:
    async def scenario(server: FakePagerDuty):
        server.fail("500", "500", "500")
        pd = notifier(server)
        with pytest.raises(PagerDutyUnavailable):
            await pd.deliver([OPENED])
        await pd.deliver([OPENED])
        await pd.close()
        return server

    assert run(scenario).actions() == [("trigger", "inc-42")]


def test_a_timeout_is_retried() -> None:
    async def scenario(server: FakePagerDuty):
        server.fail("hang")
        pd = notifier(server)
        await pd.deliver([OPENED])
        await pd.close()
        return server

    assert run(scenario).actions() == [("trigger", "inc-42")]


def test_a_refused_event_is_counted_not_retried() -> None:
    async def scenario(server: FakePagerDuty):
        pd = notifier(server)
        pd.config = PagerDutyConfig.model_validate(
            {**pd.config.model_dump(), "routing_key": "short"}
        )
        report = await pd.deliver([OPENED])
        await pd.close()
        return server, report

    server, report = run(scenario)
    assert server.events == [] and report.retries == 0
    assert "routing_key must be 32 characters" in report.rejected[0]


def test_routes_and_minimum_severity() -> None:
    other = "f" * 32
    route = PagerDutyRoute(services=["payments"], routing_key=other)

    async def scenario(server: FakePagerDuty):
        pd = notifier(server, routes=(route,), min_severity=Severity.CRITICAL)
        warning = replace(OPENED, id="inc-7", severity=Severity.WARNING, services=("web",))
        await pd.deliver([OPENED, warning])
        await pd.close()
        return server

    server = run(scenario)
    assert [e["routing_key"] for e in server.events] == [other]
