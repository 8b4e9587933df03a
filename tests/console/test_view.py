"""The console's view of the topics: what a restarted console rebuilds."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from console.view import ConsoleView, ViewError
from rca.engine import IncidentEngine
from rca.silences import Matcher
from tests.console.conftest import feed


def test_a_second_console_rebuilds_the_same_view_from_the_records(
    populated: tuple[ConsoleView, IncidentEngine],
) -> None:
    view, eng = populated
    again = ConsoleView()
    # The same records twice (a redelivery), and an older version after a newer one.
    for incident in view.latest():
        for version in view.history(incident.id)[::-1]:
            again.apply_incident(orjson.dumps(version.to_dict()), version.id.encode())
    for incident in view.latest():
        for version in view.history(incident.id):
            again.apply_incident(orjson.dumps(version.to_dict()), version.id.encode())
    assert [i.id for i in again.latest()] == [i.id for i in view.latest()]
    assert [i.version for i in again.latest()] == [eng.get(i.id).version for i in view.latest()]  # type: ignore[union-attr]


def test_a_tombstone_forgets_an_incident(populated: tuple[ConsoleView, IncidentEngine]) -> None:
    view, _ = populated
    gone = view.incidents(state="resolved").items[0]
    view.apply_incident(None, gone.id.encode())
    assert view.get(gone.id) is None and len(view) == 1


def test_the_oldest_resolved_incidents_go_first_when_full(
    populated: tuple[ConsoleView, IncidentEngine],
) -> None:
    view, _ = populated
    small = ConsoleView(max_incidents=1)
    for incident in view.latest():
        small.apply_incident(orjson.dumps(incident.to_dict()))
    assert [i.is_open for i in small.latest()] == [True]


def test_junk_on_a_topic_is_refused_with_a_reason() -> None:
    view = ConsoleView()
    with pytest.raises(ViewError, match="not an incident snapshot"):
        view.apply_incident(b"{oops")
    with pytest.raises(ViewError, match="not an action record"):
        view.apply_action(b'{"id": 1}')
    with pytest.raises(ViewError, match="not an anomaly record"):
        view.apply_anomaly(b"[]")
    assert view.skipped == 3 and len(view) == 0


def test_silences_follow_the_control_topic(populated: tuple[ConsoleView, IncidentEngine]) -> None:
    view, _ = populated
    incident = view.incidents(state="open").items[0]
    view.apply_control(
        orjson.dumps({"type": "silence_incident", "incident_id": incident.id, "user": "ana"}),
        at=3000.0,
    )
    (silence,) = view.silence_list()
    assert silence.created_by == "ana" and silence.ends_at == 6600.0
    assert all(silence.mutes(labels, 3000.0) for labels in view.label_sets(incident)), (
        "the engine's rule: every signal of the incident is muted"
    )
    view.apply_control(orjson.dumps({"type": "expire_silence", "id": silence.id}), at=3100.0)
    assert not view.silence_list()[0].active(3100.0)


def test_preview_mutes_only_incidents_whose_every_signal_matches(
    populated: tuple[ConsoleView, IncidentEngine],
) -> None:
    view, _ = populated
    incident = view.incidents(state="open").items[0]
    assert view.would_mute([Matcher.parse("service=~carts.*|front-end")]) == [incident]
    assert view.would_mute([Matcher.parse("service=~carts.*")]) == [], "front-end is not muted"
    assert view.would_mute([Matcher.parse("kind=log")]) == []
    resolved = view.incidents(state="resolved").items[0]
    assert resolved not in view.would_mute([Matcher.parse("service=payment")])


def test_actions_keep_their_latest_status(populated: tuple[ConsoleView, IncidentEngine]) -> None:
    view, eng = populated
    (pending,) = view.actions(state="pending")
    feed(view, eng.approve(pending.id, "ana"))
    assert view.actions(state="pending") == ()
    assert view.action(pending.id).decided_by == "ana"  # type: ignore[union-attr]
    assert replace(pending, status=view.action(pending.id).status) != pending  # type: ignore[union-attr]
