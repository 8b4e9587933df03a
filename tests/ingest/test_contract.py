"""The telemetry contract: what is accepted, what is rejected and why."""

from __future__ import annotations

import contextlib
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.contract import (
    checked_metric_from_obj,
    decode_logs,
    decode_metrics,
    metric_from_obj,
    parse_timestamp,
)
from ingest.exceptions import DecodeError, Reason

METRIC = {"timestamp": 1_700_000_000, "service": "api", "metric": "latency_ms", "value": 12.5}
LOG = {"timestamp": "2023-11-14T22:13:20Z", "service": "api", "message": "boom", "level": "ERR"}


def test_metric_event_with_optional_fields() -> None:
    payload = {**METRIC, "host": "web-1", "labels": {"region": "eu", "az": "b"}}
    decoded = decode_metrics(orjson.dumps(payload))
    (event,) = decoded.events
    assert event.timestamp == 1_700_000_000.0
    assert (event.service, event.metric, event.value, event.host) == (
        "api",
        "latency_ms",
        12.5,
        "web-1",
    )
    assert event.labels == (("az", "b"), ("region", "eu"))
    assert decoded.errors == []


def test_instance_is_taken_as_host() -> None:
    (event,) = decode_metrics(orjson.dumps({**METRIC, "instance": "10.0.0.1:9100"})).events
    assert event.host == "10.0.0.1:9100"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000.5, 1_700_000_000.5),
        (1_700_000_000_250, 1_700_000_000.25),
        (1_700_000_000_250_000, 1_700_000_000.25),
        (1_700_000_000_250_000_000, 1_700_000_000.25),
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T23:13:20.250+01:00", 1_700_000_000.25),
    ],
)
def test_timestamps_in_every_accepted_form(raw: object, expected: float) -> None:
    assert parse_timestamp(raw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2023-11-14 22:13:20", Reason.INVALID_VALUE),  # no offset: ambiguous
        ("yesterday", Reason.INVALID_VALUE),
        (-5, Reason.INVALID_VALUE),
        (True, Reason.WRONG_TYPE),
        (None, Reason.WRONG_TYPE),
    ],
)
def test_bad_timestamps(raw: object, reason: Reason) -> None:
    with pytest.raises(DecodeError) as err:
        parse_timestamp(raw)
    assert err.value.reason == reason


def test_null_value_is_a_gap() -> None:
    (event,) = decode_metrics(orjson.dumps({**METRIC, "value": None})).events
    assert math.isnan(event.value)


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"service": None}, Reason.MISSING_FIELD, "service"),
        ({"value": "12"}, Reason.WRONG_TYPE, "value"),
        ({"value": True}, Reason.WRONG_TYPE, "value"),
        ({"metric": 3}, Reason.WRONG_TYPE, "metric"),
        ({"service": ""}, Reason.INVALID_VALUE, "service"),
        ({"labels": {"a": 1}}, Reason.WRONG_TYPE, "labels.a"),
        ({"labels": ["a"]}, Reason.WRONG_TYPE, "labels"),
    ],
)
def test_invalid_metric_names_the_field(
    change: dict[str, object], reason: Reason, field: str
) -> None:
    payload = {k: v for k, v in {**METRIC, **change}.items() if v is not None}
    with pytest.raises(DecodeError) as err:
        decode_metrics(orjson.dumps(payload))
    assert err.value.reason == reason
    assert field in err.value.detail


def test_batch_keeps_good_events_and_reports_bad_ones_by_index() -> None:
    batch = [METRIC, {**METRIC, "value": "x"}, {"nope": 1}, METRIC]
    decoded = decode_metrics(orjson.dumps(batch))
    assert len(decoded.events) == 2
    assert [(e.index, e.error.reason) for e in decoded.errors] == [
        (1, Reason.WRONG_TYPE),
        (2, Reason.MISSING_FIELD),
    ]
    assert orjson.loads(decoded.errors[0].raw) == batch[1]


def test_message_level_failures() -> None:
    for payload, reason in [
        (b"", Reason.EMPTY),
        (b"[]", Reason.EMPTY),
        (b"{not json", Reason.INVALID_JSON),
        (b"42", Reason.NOT_AN_EVENT),
        (b"\xff\xfe\x00", Reason.INVALID_JSON),
    ]:
        with pytest.raises(DecodeError) as err:
            decode_metrics(payload)
        assert err.value.reason == reason, payload


def test_size_limit_is_checked_before_parsing() -> None:
    payload = orjson.dumps({**METRIC, "labels": {"pad": "x" * 2000}})
    with pytest.raises(DecodeError) as err:
        decode_metrics(payload, max_bytes=1024)
    assert err.value.reason == Reason.OVERSIZED
    assert str(len(payload)) in err.value.detail


def test_log_event_normalises_level() -> None:
    (event,) = decode_logs(orjson.dumps({**LOG, "attributes": {"trace_id": "ab", "n": 3}})).events
    assert event.level == "error"
    assert event.timestamp == 1_700_000_000.0
    assert event.attributes == (("n", "3"), ("trace_id", "ab"))


def test_log_without_message_is_rejected() -> None:
    with pytest.raises(DecodeError) as err:
        decode_logs(orjson.dumps({k: v for k, v in LOG.items() if k != "message"}))
    assert err.value.reason == Reason.MISSING_FIELD


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_decode_error(payload: bytes) -> None:
    for decode in (decode_metrics, decode_logs):
        with contextlib.suppress(DecodeError):
            decode(payload, max_bytes=256)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["timestamp", "service", "metric", "value", "labels", "message", "x"]),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_arbitrary_json_only_raises_decode_error(value: object) -> None:
    payload = orjson.dumps(value)
    for decode in (decode_metrics, decode_logs):
        with contextlib.suppress(DecodeError):
            decode(payload)


near_metrics = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.one_of(
            st.floats(-1.0, 2e10, allow_nan=False),
            st.integers(-1, 2**62),
            st.sampled_from(["2023-11-14T22:13:20Z", "x", True]),
        ),
        "service": st.one_of(st.sampled_from(["api", "", "db"]), st.integers(0, 3), st.none()),
        "metric": st.one_of(st.sampled_from(["cpu", "", "p99"]), st.none(), st.booleans()),
        "value": st.one_of(
            st.floats(allow_nan=False), st.integers(-(2**63), 2**63 - 1), st.none(), st.text()
        ),
        "host": st.one_of(st.sampled_from(["h1", ""]), st.none(), st.integers(0, 2)),
        "instance": st.one_of(st.sampled_from(["i1", ""]), st.none()),
        "labels": st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from("abc"), st.one_of(st.text(max_size=3), st.integers())),
            st.lists(st.text(max_size=3), max_size=2),
        ),
    },
)


@given(near_metrics)
def test_the_quick_path_gives_what_the_field_by_field_checks_give(obj: dict[str, object]) -> None:
    try:
        expected: object = checked_metric_from_obj(obj)
    except DecodeError as exc:
        expected = exc.reason
    try:
        got: object = metric_from_obj(obj)
    except DecodeError as exc:
        got = exc.reason
    assert got == expected
