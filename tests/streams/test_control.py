"""Commands on the control topic, as the worker applies them to its engine; records of the
internal streams it cannot use are dead-lettered with their reason and origin."""

from __future__ import annotations

from rca.config import CorrelationConfig, RcaConfig
from rca.engine import IncidentEngine
from streams.config import Settings
from streams.control import apply_command, command
from streams.deadletter import DeadLetter
from streams.stages import Pipeline
from tests.rca.conftest import make_anomaly
from tests.streams.test_forecast_checkpoints import MemoryCheckpoints, RecordingPublisher


def _engine_with_incident() -> tuple[IncidentEngine, str]:
    engine = IncidentEngine(config=RcaConfig(correlation=CorrelationConfig(quiet_period_s=300)))
    out = engine.on_anomaly(make_anomaly("carts", "latency_p99", 100.0, z=9.0))
    out += engine.on_anomaly(make_anomaly("carts", "errors", 101.0, z=7.0))
    assert out.incidents
    return engine, out.incidents[-1].id


def test_a_silence_command_creates_the_silence_with_its_author() -> None:
    engine, incident_id = _engine_with_incident()
    payload = command(
        "silence",
        id="s-1",
        matchers=["service=carts"],
        starts_at=100.0,
        ends_at=4000.0,
        comment="deploy",
        user="console:alice",
    )
    out = apply_command(engine, payload, now=110.0)
    silences = {s.id: s for s in engine.silences}
    assert silences["s-1"].created_by == "console:alice"
    assert any(i.id == incident_id and i.silenced for i in out.incidents)


def test_a_resolve_command_resolves_the_incident_and_names_who() -> None:
    engine, incident_id = _engine_with_incident()
    out = apply_command(
        engine, command("resolve", incident_id=incident_id, user="console:bob"), now=120.0
    )
    (resolved,) = out.incidents
    assert not resolved.is_open
    assert "console:bob" in _timeline_text(resolved)
    # a second resolve changes nothing
    again = apply_command(
        engine, command("resolve", incident_id=incident_id, user="console:bob"), now=130.0
    )
    assert not again.incidents


def test_a_malformed_command_is_skipped() -> None:
    engine, _ = _engine_with_incident()
    bad = command("silence", id="s-2", matchers=["service~~carts"], starts_at=0, ends_at=10)
    assert not apply_command(engine, bad, now=110.0).incidents
    assert not apply_command(engine, b"not json", now=110.0).incidents
    assert all(s.id != "s-2" for s in engine.silences)


def _timeline_text(incident: object) -> str:
    return " ".join(str(entry) for entry in getattr(incident, "timeline", ()))


class LettersKept(RecordingPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.letters: list[DeadLetter] = []

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


async def test_the_worker_dead_letters_control_and_correlation_records_it_cannot_use() -> None:
    publisher = LettersKept()
    settings = Settings()
    pipe = Pipeline(settings=settings, publisher=publisher, checkpoints=MemoryCheckpoints())
    await pipe.on_control_record(b"{not json", 0, 7)
    await pipe.on_control_record(command("reboot", user="ana"), 0, 8)
    await pipe.on_control_record(command("acknowledge", user="ana"), 0, 9)
    await pipe.on_control_record(command("acknowledge", incident_id="inc-x", user="ana"), 0, 10)
    await pipe.on_correlate_record(b'{"service": "carts"}', 0, 11)
    got = [(d.origin.topic, d.origin.offset, d.reason) for d in publisher.letters]
    control, correlate = settings.topics.control, pipe.correlation_topic
    assert got == [
        (control, 7, "invalid_json"),
        (control, 8, "unknown_command"),
        (control, 9, "invalid_command"),
        (control, 10, "refused"),
        (correlate, 11, "not_an_event"),
    ]
    assert publisher.letters[3].original == command("acknowledge", incident_id="inc-x", user="ana")
    assert "unknown incident inc-x" in publisher.letters[3].detail
    assert not [r for r in publisher.records if r[0] == "incidents"]
