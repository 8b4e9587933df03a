"""decode_log_message: one Kafka message of telemetry.logs, JSON or raw lines."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.events import LogEvent
from ingest.contract import Decoded
from ingest.exceptions import DecodeError, Reason
from ingest.logs import LogIngestConfig, ServiceRule, decode_log_message

NOW = datetime(2026, 11, 26, 18, tzinfo=UTC).timestamp()
CFG = LogIngestConfig()


def decode(payload: bytes, config: LogIngestConfig = CFG) -> Decoded[LogEvent]:
    return decode_log_message(payload, config=config, max_bytes=1 << 16, received_at=NOW)


def test_json_contract_object_and_array() -> None:
    one = {"timestamp": 1700000000, "service": "api", "message": "hi", "level": "WARN"}
    d = decode(orjson.dumps(one))
    assert [(e.service, e.message, e.level) for e in d.events] == [("api", "hi", "warning")]
    d = decode(orjson.dumps([one, {"service": "api"}]))
    assert len(d.events) == 1
    assert [(e.index, e.error.reason) for e in d.errors] == [(1, Reason.MISSING_FIELD)]


def test_fluent_bit_record_is_recognised() -> None:
    record = {
        "@timestamp": 1700000000.5,
        "log": "GET / 200",
        "kubernetes": {"labels": {"app": "web"}},
    }
    d = decode(orjson.dumps(record))
    assert [(e.service, e.message) for e in d.events] == [("web", "GET / 200")]


def test_several_raw_lines_in_one_message() -> None:
    payload = (
        b"<38>Nov 26 17:59:58 bastion sshd[1]: Accepted key for bob\n"
        b"<165>1 2026-11-26T17:59:59Z web-1 nginx - - - GET / 200\r\n"
        b"\n"
        b"plain line from nowhere\n"
    )
    d = decode(payload)
    assert d.errors == []
    assert [(e.service, e.host, e.message) for e in d.events] == [
        ("sshd", "bastion", "Accepted key for bob"),
        ("nginx", "web-1", "GET / 200"),
        ("unknown", None, "plain line from nowhere"),
    ]
    assert d.events[0].timestamp == NOW - 2
    assert d.events[2].timestamp == NOW  # no time in the line: time of receipt
    assert dict(d.events[1].attributes)["format"] == "rfc5424"


def test_indented_lines_continue_the_previous_one() -> None:
    payload = (
        b"2026-11-26 17:59:59 ERROR request failed\n"
        b"\tat com.shop.Cart.add(Cart.java:42)\n"
        b"    at com.shop.Api.handle(Api.java:7)\n"
        b"2026-11-26 18:00:00 INFO recovered\n"
    )
    d = decode(payload)
    assert [e.level for e in d.events] == ["error", "info"]
    assert d.events[0].message.count("\n") == 2
    assert "Cart.java:42" in d.events[0].message


def test_line_starting_with_a_bracket_is_a_raw_line() -> None:
    d = decode(b"[INFO] build started")
    assert [(e.message, e.level) for e in d.events] == [("[INFO] build started", "info")]


def test_broken_json_object_is_rejected() -> None:
    with pytest.raises(DecodeError) as err:
        decode(b'{"service": "api", "message": ')
    assert err.value.reason is Reason.INVALID_JSON


@pytest.mark.parametrize(
    "payload",
    [b"\x00\x01\x02\x03binary", b"\x89PNG\r\n\x1a\n\x00\x00", b"ok text \xff\xfe then bytes"],
)
def test_binary_is_rejected_not_turned_into_lines(payload: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        decode(payload)
    assert err.value.reason is Reason.UNKNOWN_FORMAT
    assert "not a text message" in err.value.detail


def test_colour_codes_are_stripped() -> None:
    d = decode(b"\x1b[31mERROR\x1b[0m disk full")
    assert [(e.message, e.level) for e in d.events] == [("ERROR disk full", "error")]


def test_empty_and_oversized() -> None:
    with pytest.raises(DecodeError) as err:
        decode(b" \n\r\n ")
    assert err.value.reason is Reason.EMPTY
    with pytest.raises(DecodeError) as err:
        decode_log_message(b"x" * 101, config=CFG, max_bytes=100, received_at=NOW)
    assert err.value.reason is Reason.OVERSIZED


def test_service_rules_param_app_host_default_and_aliases() -> None:
    cfg = LogIngestConfig(
        rules=(ServiceRule(source="host", pattern=r"^(\w+)-\d+$", service=r"\1"),),
        aliases={"sshd": "auth"},
        default_service="misc",
    )
    d = decode(
        b"<14>Nov 26 18:00:00 cart-7 java: started\n"
        b'<14>1 2026-11-26T18:00:00Z db app - - [meta service="orders"] saved\n'
        b"<14>Nov 26 18:00:00 bastion sshd[3]: closed\n"
        b"<14>1 2026-11-26T18:00:00Z node-a - - - - kernel says hi\n"
        b"anonymous\n",
        cfg,
    )
    assert [e.service for e in d.events] == ["cart", "orders", "auth", "node-a", "misc"]


def test_rsyslog_templates_of_rfc5424_and_rfc3164_input_give_the_same_event() -> None:
    # omkafka's default template and RSYSLOG_SyslogProtocol23Format, as rsyslog 8.2302
    # writes a message that arrived as RFC 5424 (tag without colon) or as RFC 3164.
    d = decode(
        b"2026-11-26T18:00:00.5+00:00 vm checkout0 order settled\n"
        b"2026-11-26T18:00:00+00:00 vm checkout0: order settled\n"
        b'<131>1 2026-11-26T18:00:00.5+00:00 vm checkout0 - - [timeQuality tzKnown="1"] '
        b"order settled\n"
        b"<131>1 2026-11-26T18:00:00+00:00 vm checkout0 - - -  order settled\n"
    )
    assert d.errors == []
    assert {(e.service, e.host, e.message) for e in d.events} == {
        ("checkout0", "vm", "order settled")
    }


def test_service_from_order_is_configurable() -> None:
    cfg = LogIngestConfig(service_from=("host",))
    d = decode(b"<14>Nov 26 18:00:00 bastion sshd[3]: closed", cfg)
    assert d.events[0].service == "bastion"


def test_long_messages_are_cut() -> None:
    cfg = LogIngestConfig(max_line_chars=100)
    d = decode(b"x" * 500, cfg)
    assert len(d.events[0].message) == 100


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError):
        LogIngestConfig(timezone="Mars/Olympus")
    with pytest.raises(ValueError):
        ServiceRule(source="host", pattern="(", service="x")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_fail_with_a_reason(payload: bytes) -> None:
    try:
        d = decode(payload)
    except DecodeError as exc:
        assert isinstance(exc.reason, Reason)
        return
    for event in d.events:
        assert event.message.strip() and event.service


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=200))
def test_printable_text_always_yields_lines(text: str) -> None:
    if not text.strip() or text.lstrip()[:1] in "{[":
        return
    d = decode(text.encode())
    assert d.events, text


def test_a_configured_header_format_gives_message_level_time_and_fields():
    import pytest

    from ingest.logs import LogIngestConfig, decode_log_message
    from streams.config import load_settings
    from streams.exceptions import ConfigError

    config = LogIngestConfig(
        line_formats=(
            {"format": "[<Time>] [<Level>] <Content>", "time": "%a %b %d %H:%M:%S %Y"},
            {"format": "<Date> <Time> <Pid> <Level> <Component>: <Content>", "service": "hdfs"},
        )
    )
    payload = (
        b"[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6\n"
        b"081109 203615 148 INFO dfs.DataNode: Receiving block blk_1\n"
        b"a line in no configured format"
    )
    first, second, third = decode_log_message(
        payload, config=config, max_bytes=1 << 16, received_at=1.7e9
    ).events
    assert (first.message, first.level) == ("mod_jk child workerEnv in error state 6", "error")
    assert first.timestamp == 1133671664.0  # 2005-12-04 04:47:44 UTC
    assert (second.service, second.message) == ("hdfs", "Receiving block blk_1")
    assert ("line.component", "dfs.DataNode") in second.attributes
    assert second.timestamp == 1.7e9  # no time format: the time of receipt
    assert third.message == "a line in no configured format"  # mined whole, not dropped
    assert ("format", "plain") in third.attributes

    with pytest.raises(ConfigError, match=r"ingest\.logs\.line_formats.*Content"):
        load_settings(env={"AIOPS_INGEST__LOGS__LINE_FORMATS": '[{"format": "<Date> <Message>"}]'})
