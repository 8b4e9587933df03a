"""The console's pages and live updates, as a browser gets them."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import orjson
from aiohttp.test_utils import TestClient, TestServer

from console.auth import SESSION_COOKIE, Authenticator
from console.view import ConsoleView
from console.web import Console
from detectors.anomaly import SignalKind
from rca.engine import Outcome
from tests.console.conftest import TOKEN, Sent, engine, feed
from tests.rca.conftest import make_anomaly

AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = tuple[TestClient, Sent, ConsoleView]


async def test_pages_need_a_sign_in_and_the_session_cookie_opens_them(client: Client) -> None:
    c, _, view = client
    incident_id = view.incidents(state="open").items[0].id
    first = await c.get(f"/incidents/{incident_id}", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"].startswith("/login?next=")
    wrong = await c.post("/login", data={"user": "alice", "password": "nope", "next": "/"})
    assert wrong.status == 401 and SESSION_COOKIE not in wrong.cookies
    signed = await c.post(
        "/login",
        data={"user": "alice", "password": "wonderland", "next": f"/incidents/{incident_id}"},
        allow_redirects=False,
    )
    assert signed.status == 303 and signed.headers["Location"] == f"/incidents/{incident_id}"
    assert signed.cookies[SESSION_COOKIE]["httponly"]
    page = await c.get(f"/incidents/{incident_id}")
    text = await page.text()
    assert page.status == 200
    assert re.search(r'class="culprit">carts-db<', text), "the culprit is named"
    assert 'id="acknowledge"' in text and "alice" in text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    elsewhere = await c.post(
        "/login", data={"password": TOKEN, "next": "https://evil.example/"}, allow_redirects=False
    )
    assert elsewhere.headers["Location"] == "/", "no redirect off the console"


async def test_the_list_page_orders_open_first_and_filters(client: Client) -> None:
    c, _, view = client
    text = await (await c.get("/", headers=AUTH)).text()
    open_id = view.incidents(state="open").items[0].id
    resolved_id = view.incidents(state="resolved").items[0].id
    assert text.index(open_id) < text.index(resolved_id)
    only = await (await c.get("/?state=resolved", headers=AUTH)).text()
    assert resolved_id in only and open_id not in only


async def test_a_hostile_title_or_log_example_is_shown_as_text() -> None:
    eng, view = engine(), ConsoleView()
    hostile = "<script>alert(1)</script>"
    anomalies = [
        make_anomaly(hostile, "cpu", 1000.0, z=9.0),
        make_anomaly(
            hostile,
            "log:error",
            1001.0,
            z=None,
            kind=SignalKind.LOG,
            template=f"user <*> sent {hostile}",
            level="ERROR",
            examples=[f'<img src=x onerror="alert(2)"> {hostile}'],
        ),
    ]
    out = Outcome()
    for a in anomalies:
        out += eng.on_anomaly(a)
    feed(view, out, anomalies)
    (incident,) = view.latest()
    assert hostile in incident.title
    console = Console(view, Sent(), Authenticator({"bot": TOKEN}, {}))
    async with TestClient(TestServer(console.app())) as c:
        for url in ("/", f"/incidents/{incident.id}", f"/fragments/incidents/{incident.id}"):
            text = await (await c.get(url, headers=AUTH)).text()
            assert "<script>alert" not in text and "<img src=x" not in text, url
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, url
        page = await (await c.get(f"/incidents/{incident.id}", headers=AUTH)).text()
        assert "&lt;img src=x onerror=" in page, "the log example is shown, escaped"


async def test_reading_without_sign_in_is_opt_in() -> None:
    view = ConsoleView()
    console = Console(view, Sent(), Authenticator({"bot": TOKEN}, {}), read_without_login=True)
    async with TestClient(TestServer(console.app())) as c:
        assert (await c.get("/api/incidents")).status == 200
        assert (await c.get("/")).status == 200
        refused = await c.post("/api/silences", json={"matchers": ["service=a"]})
        assert refused.status == 401, "changes still need credentials"


async def test_a_new_snapshot_reaches_an_open_event_stream(client: Client) -> None:
    c, _, view = client
    incident = view.incidents(state="open").items[0]
    response = await c.get("/api/events", headers=AUTH)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    hello = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 2.0)
    assert b"connected" in hello
    from dataclasses import replace

    newer = replace(incident, version=incident.version + 1, acknowledged_by="carol")
    view.apply_incident(orjson.dumps(newer.to_dict()), newer.id.encode())
    event = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 2.0)
    name, data = event.decode().strip().split("\n", 1)
    assert name == "event: incident"
    sent = orjson.loads(data.removeprefix("data: "))
    assert (sent["id"], sent["version"], sent["acknowledged_by"]) == (
        incident.id,
        incident.version + 1,
        "carol",
    )
    response.close()


async def test_the_top_candidate_gets_the_chart_of_its_series(client: Client) -> None:
    c, _, view = client
    incident = view.incidents(state="open").items[0]
    (ref,) = [a for a in incident.anomalies if (a.service, a.signal) == ("carts-db", "cpu")]
    chart_url = f"/charts/{ref.fingerprint}.png"
    page = await (await c.get(f"/incidents/{incident.id}", headers=AUTH)).text()
    assert f'<img class="chart" src="{chart_url}"' in page
    missing = await c.get(chart_url, headers=AUTH)
    assert missing.status == 404, "no points on the series topic yet"

    times = [1400.0 + 10.0 * i for i in range(70)]
    values = [0.3 + 0.01 * (i % 3) for i in range(60)] + [0.95] * 10
    record = {
        "fingerprint": ref.fingerprint,
        "label": "carts-db cpu",
        "onset": 2000.0,
        "band": [0.28, 0.34],
        "t": times,
        "v": values,
    }
    view.apply_series(orjson.dumps(record), ref.fingerprint.encode())
    png = await c.get(chart_url, headers=AUTH)
    assert png.status == 200 and png.content_type == "image/png"
    assert (await png.read())[:8] == b"\x89PNG\r\n\x1a\n"
    anonymous = await c.get(chart_url, allow_redirects=False)
    assert anonymous.status in (303, 401), "a chart needs a sign-in too"


def test_a_bad_series_record_is_skipped_and_a_tombstone_forgets() -> None:
    view = ConsoleView()
    for bad in (b"{", b'{"fingerprint": "f", "t": [1, 2], "v": [1]}', b'{"t": []}'):
        try:
            view.apply_series(bad, b"f")
        except ValueError:
            pass
        else:  # pragma: no cover - the assertion below says what went wrong
            raise AssertionError(f"accepted {bad!r}")
    assert view.series("f") is None and view.skipped == 3
    view.apply_series(b'{"fingerprint": "f", "t": [1.0], "v": [2.0]}', b"f")
    assert view.series("f") is not None
    view.apply_series(None, b"f")
    assert view.series("f") is None


async def test_a_predicted_incident_is_shown_as_such(client: Client) -> None:
    c, _, view = client
    current = view.incidents(state="open").items[0]
    predicted = dataclasses.replace(
        current, version=current.version + 1, predicted=True, time_left=1800.0
    )
    view.apply_incident(orjson.dumps(predicted.to_dict()))
    listing = await (await c.get("/", headers=AUTH)).text()
    row = listing[listing.index(f'data-id="{current.id}"') :].split("</tr>")[0]
    assert 'class="badge predicted">predicted<' in row
    page = await (await c.get(f"/incidents/{current.id}", headers=AUTH)).text()
    assert 'class="badge predicted">predicted<' in page and "limit in 30 min" in page
