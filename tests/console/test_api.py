"""The console's JSON API, as a script or a responder's browser uses it."""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import Any

import jsonschema
import orjson
import pytest
from aiohttp.test_utils import TestClient

from console.view import ConsoleView
from rca.model import ActionStatus
from tests.console.conftest import TOKEN, Sent

AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPENAPI = json.loads(resources.files("console").joinpath("openapi.json").read_text())

Client = tuple[TestClient, Sent, ConsoleView]


def _schema_of(path: str, method: str, status: int) -> dict[str, Any]:
    responses = OPENAPI["paths"][path][method]["responses"]
    content = responses[str(status)].get("content", {}).get("application/json", {})
    schema = content.get("schema", {"$ref": "#/components/schemas/Error"})
    return {**schema, "components": OPENAPI["components"]}


def _check(body: Any, path: str, method: str, status: int) -> None:
    jsonschema.Draft202012Validator(_schema_of(path, method, status)).validate(body)


def _open_id(view: ConsoleView) -> str:
    return view.incidents(state="open").items[0].id


def _resolved_id(view: ConsoleView) -> str:
    return view.incidents(state="resolved").items[0].id


async def test_every_read_answers_what_the_schema_says(client: Client) -> None:
    c, _, view = client
    open_id = _open_id(view)
    reads = {
        "/api/incidents": "/api/incidents",
        "/api/incidents?state=open&service=carts-db": "/api/incidents",
        f"/api/incidents/{open_id}": "/api/incidents/{id}",
        f"/api/incidents/{open_id}/history": "/api/incidents/{id}/history",
        "/api/anomalies?service=carts": "/api/anomalies",
        "/api/silences": "/api/silences",
        "/api/silences/preview?matcher=service%3Dcarts": "/api/silences/preview",
        "/api/actions?state=pending": "/api/actions",
        "/health": "/health",
    }
    for url, path in reads.items():
        response = await c.get(url, headers=AUTH)
        assert response.status == 200, url
        _check(await response.json(), path, "get", 200)


async def test_incident_list_is_open_first_filtered_and_paged(client: Client) -> None:
    c, _, view = client
    page = await (await c.get("/api/incidents", headers=AUTH)).json()
    assert [i["state"] for i in page["items"]] == ["updated", "resolved"]
    assert page["total"] == 2 and page["next_offset"] is None
    top = page["items"][0]
    assert top["top_cause"]["service"] == "carts-db"
    assert top["pending_actions"] == 1
    only_open = await (await c.get("/api/incidents?state=open", headers=AUTH)).json()
    assert [i["id"] for i in only_open["items"]] == [_open_id(view)]
    by_service = await (await c.get("/api/incidents?service=payment", headers=AUTH)).json()
    assert [i["id"] for i in by_service["items"]] == [_resolved_id(view)]
    later = await (await c.get("/api/incidents?since=1500", headers=AUTH)).json()
    assert [i["id"] for i in later["items"]] == [_open_id(view)]
    first = await (await c.get("/api/incidents?limit=1", headers=AUTH)).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1
    second = await (await c.get("/api/incidents?limit=1&offset=1", headers=AUTH)).json()
    assert second["items"][0]["id"] == _resolved_id(view) and second["next_offset"] is None


async def test_incident_detail_has_causes_evidence_actions_and_timeline(client: Client) -> None:
    c, _, view = client
    detail = await (await c.get(f"/api/incidents/{_open_id(view)}", headers=AUTH)).json()
    assert detail["root_causes"][0]["service"] == "carts-db"
    assert detail["root_causes"][0]["explanation"]
    assert {e["service"] for e in detail["evidence"]} == {"carts", "carts-db", "front-end"}
    assert detail["actions"][0]["status"] == "pending_approval"
    assert detail["timeline"]
    history = await (await c.get(f"/api/incidents/{_open_id(view)}/history", headers=AUTH)).json()
    assert [v["version"] for v in history["items"]] == list(range(1, detail["version"] + 1))


async def test_commands_go_to_the_control_topic_with_the_user(client: Client) -> None:
    c, sent, view = client
    incident_id = _open_id(view)
    (action,) = view.actions(state="pending")
    basic = base64.b64encode(b"alice:wonderland").decode()
    as_alice = {"Authorization": f"Basic {basic}"}
    posts = [
        (f"/api/incidents/{incident_id}/acknowledge", None, AUTH),
        (f"/api/incidents/{incident_id}/silence", {"duration_s": 600, "comment": "deploy"}, AUTH),
        (f"/api/actions/{action.id}/approve", {}, as_alice),
        (f"/api/incidents/{incident_id}/resolve", {}, as_alice),
    ]
    for url, body, headers in posts:
        response = await c.post(url, json=body, headers=headers)
        assert response.status == 202, (url, await response.text())
        _check(
            await response.json(),
            url.replace(incident_id, "{id}").replace(action.id, "{id}"),
            "post",
            202,
        )
    assert [(cmd.key, cmd.body["type"], cmd.body["user"]) for cmd in sent.commands] == [
        (incident_id, "acknowledge", "bot"),
        (incident_id, "silence_incident", "bot"),
        (incident_id, "approve", "alice"),
        (incident_id, "resolve", "alice"),
    ]
    assert sent.commands[1].body["duration_s"] == 600.0
    assert sent.commands[2].body["action_id"] == action.id


async def test_a_silence_is_validated_and_previewed(client: Client) -> None:
    c, sent, view = client
    every = {"matcher": "service=~carts.*|front-end"}
    preview = await (await c.get("/api/silences/preview", params=every, headers=AUTH)).json()
    assert [i["id"] for i in preview["items"]] == [_open_id(view)], "only open incidents"
    some = {"matcher": "service=carts-db"}
    partial = await (await c.get("/api/silences/preview", params=some, headers=AUTH)).json()
    assert partial["items"] == [], "an incident is muted only when every signal is"
    none = await (await c.get("/api/silences/preview?matcher=service%3Dnope", headers=AUTH)).json()
    assert none["items"] == []
    response = await c.post(
        "/api/silences",
        json={"matchers": ['service=~"carts.*"'], "duration_s": 3600, "comment": "db upgrade"},
        headers=AUTH,
    )
    assert response.status == 202
    (cmd,) = sent.commands
    assert cmd.body["type"] == "silence" and cmd.body["created_by"] == "bot"
    assert cmd.body["ends_at"] - cmd.body["starts_at"] == 3600
    # The engine's own command, once on the topic, shows in the list; then it can expire.
    view.apply_control(orjson.dumps(cmd.body), at=2100.0)
    listed = await (await c.get("/api/silences", headers=AUTH)).json()
    assert [(s["id"], s["active"]) for s in listed["items"]] == [(cmd.body["id"], True)]
    expired = await c.post(f"/api/silences/{cmd.body['id']}/expire", json={}, headers=AUTH)
    assert expired.status == 202
    assert sent.commands[-1].body == {"type": "expire_silence", "id": cmd.body["id"], "user": "bot"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matchers": ["service=~("], "duration_s": 60}, "matchers"),
        ({"matchers": ["no operator"], "duration_s": 60}, "matchers"),
        ({"matchers": [], "duration_s": 60}, "matchers"),
        ({"matchers": ["service=carts"], "duration_s": -5}, "duration_s"),
        ({"matchers": ["service=carts"], "duration_s": "an hour"}, "duration_s"),
        ({"matchers": ["service=carts"], "duration_s": 60, "author": "eve"}, "author"),
        ({"matchers": ["service=carts"], "ends_at": 100.0, "starts_at": 200.0}, "ends_at"),
    ],
)
async def test_a_malformed_silence_is_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    c, sent, _ = client
    response = await c.post("/api/silences", json=body, headers=AUTH)
    assert response.status == 422
    error = await response.json()
    _check(error, "/api/silences", "post", 422)
    assert error["field"] == field, error
    assert not sent.commands


async def test_refusals_say_why_and_change_nothing(client: Client) -> None:
    c, sent, view = client
    open_id, resolved_id = _open_id(view), _resolved_id(view)
    cases = [
        ("get", f"/api/incidents/{open_id}", {}, None, 401),
        ("post", f"/api/incidents/{open_id}/acknowledge", {}, {}, 401),
        (
            "post",
            f"/api/incidents/{open_id}/acknowledge",
            {"Authorization": "Bearer wrong"},
            {},
            401,
        ),
        ("get", "/api/incidents/inc-nope", AUTH, None, 404),
        ("post", "/api/incidents/inc-nope/acknowledge", AUTH, {}, 404),
        ("post", "/api/actions/act-nope/approve", AUTH, {}, 404),
        ("post", f"/api/incidents/{resolved_id}/acknowledge", AUTH, {}, 409),
        ("post", f"/api/incidents/{resolved_id}/silence", AUTH, {"duration_s": 60}, 409),
        ("post", f"/api/incidents/{open_id}/acknowledge", AUTH, {"force": True}, 422),
        ("get", "/api/incidents?state=broken", AUTH, None, 422),
        ("get", "/api/incidents?limit=-1", AUTH, None, 422),
    ]
    for method, url, headers, body, status in cases:
        call = getattr(c, method)
        response = await (
            call(url, headers=headers, json=body)
            if method == "post"
            else call(url, headers=headers)
        )
        assert response.status == status, (url, await response.text())
        error = await response.json()
        assert error["error"], url
    assert not sent.commands


async def test_an_action_decided_meanwhile_is_409(client: Client) -> None:
    c, sent, view = client
    (action,) = view.actions(state="pending")
    from dataclasses import replace

    done = replace(action, status=ActionStatus.DISPATCHED, decided_by="slack:bob")
    view.apply_action(orjson.dumps(done.to_dict()))
    response = await c.post(f"/api/actions/{action.id}/approve", json={}, headers=AUTH)
    assert response.status == 409
    assert "dispatched" in (await response.json())["error"]
    assert not sent.commands


async def test_bodies_too_large_not_json_or_cross_site_are_refused(client: Client) -> None:
    c, sent, view = client
    url = f"/api/incidents/{_open_id(view)}/silence"
    big = {"duration_s": 60, "comment": "x" * (70 * 1024)}
    assert (await c.post(url, json=big, headers=AUTH)).status == 413
    form = await c.post(url, data={"duration_s": "60"}, headers=AUTH)
    assert form.status == 415, "a form post (what a foreign page can send) is refused"
    broken = await c.post(
        url, data=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert broken.status == 400
    foreign = await c.post(url, json={}, headers={**AUTH, "Origin": "https://evil.example"})
    assert foreign.status == 403
    assert not sent.commands
