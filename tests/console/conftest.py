"""A console fed from a real incident engine, and a publisher that keeps what it is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.auth import Authenticator
from console.commands import Command
from console.view import ConsoleView
from console.web import Console
from detectors.anomaly import Anomaly
from rca.config import CorrelationConfig, RcaConfig, RemediationConfig
from rca.engine import IncidentEngine, Outcome
from rca.remediation import rules_from_dicts
from rca.topology import Topology
from tests.rca.conftest import make_anomaly

TOKEN = "s3cret-token"
TOPOLOGY = Topology.from_mapping({"front-end": ["carts"], "carts": ["carts-db"], "payment": []})


@dataclass
class Sent:
    """A publisher that records the commands it is handed."""

    commands: list[Command] = field(default_factory=list)

    async def send(self, command: Command) -> None:
        self.commands.append(command)


def feed(view: ConsoleView, outcome: Outcome, anomalies: list[Anomaly] = ()) -> None:  # type: ignore[assignment]
    """Pass what the engine published through the view, as the topics would."""
    for anomaly in anomalies:
        view.apply_anomaly(orjson.dumps(anomaly.to_dict()))
    for incident in outcome.incidents:
        view.apply_incident(orjson.dumps(incident.to_dict()), incident.id.encode())
    for action in outcome.actions:
        view.apply_action(orjson.dumps(action.to_dict()))


def engine() -> IncidentEngine:
    rules = rules_from_dicts(
        [
            {
                "name": "db-scale-out",
                "match": {"kind": "cpu"},
                "action": "scale_out",
                "mode": "approval",
                "cooldown_s": 600,
            }
        ]
    )
    cfg = RcaConfig(
        correlation=CorrelationConfig(quiet_period_s=300),
        remediation=RemediationConfig(settle_s=0.0),
    )
    return IncidentEngine(config=cfg, rules=rules, topology=TOPOLOGY)


@pytest.fixture
def populated() -> tuple[ConsoleView, IncidentEngine]:
    """Two incidents: an open one on carts-db (with a pending action) and a resolved one."""
    eng = engine()
    view = ConsoleView()
    first = [
        make_anomaly("payment", "errors", 100.0, z=8.0),
        make_anomaly("payment", "latency_p99", 101.0, z=6.0),
    ]
    out = Outcome()
    for a in first:
        out += eng.on_anomaly(a)
    out += eng.tick(1000.0)  # quiet: the payment incident resolves
    second = [
        make_anomaly("carts-db", "cpu", 2000.0, z=30.0),
        make_anomaly("carts", "latency_p99", 2003.0, z=8.0),
        make_anomaly("front-end", "latency_p99", 2005.0, z=6.0),
    ]
    for a in second:
        out += eng.on_anomaly(a)
    feed(view, out, first + second)
    return view, eng


@pytest.fixture
async def client(
    populated: tuple[ConsoleView, IncidentEngine],
) -> AsyncIterator[tuple[TestClient, Sent, ConsoleView]]:
    view, _ = populated
    sent = Sent()
    console = Console(
        view, sent, Authenticator({"bot": TOKEN}, {"alice": "wonderland"}), clock=lambda: 2100.0
    )
    async with TestClient(TestServer(console.app())) as c:
        yield c, sent, view
