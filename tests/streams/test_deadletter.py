"""Dead-letter records: reason, origin and the source key travel in headers."""

from __future__ import annotations

from ingest.exceptions import DecodeError, Reason
from streams.deadletter import KEY_HEADER, DeadLetter, Origin, parse_headers

ORIGIN = Origin("telemetry.metrics", 3, 1207)
ERROR = DecodeError(Reason.INVALID_JSON, "not JSON")


def test_source_key_is_kept_raw_in_a_header() -> None:
    key = b"\x00\x01web-7\xff"  # not text: a replay needs the bytes as they were
    letter = DeadLetter.from_error(ORIGIN, ERROR, b"{", index=2, key=key)
    headers = letter.headers()
    assert [value for name, value in headers if name == KEY_HEADER] == [key]
    # the record's own key still names the source position
    assert letter.record_key() == b"telemetry.metrics/3/1207#2"
    shown = parse_headers(headers)
    assert shown["key"] == "\x00\x01web-7\\xff"
    assert (shown["reason"], shown["topic"], shown["offset"], shown["index"]) == (
        "invalid_json",
        "telemetry.metrics",
        "1207",
        "2",
    )


def test_text_key_is_shown_as_text() -> None:
    letter = DeadLetter.from_error(ORIGIN, ERROR, b"{", key=b"web-7")
    assert parse_headers(letter.headers())["key"] == "web-7"


def test_no_key_header_without_a_source_key() -> None:
    letter = DeadLetter.from_error(ORIGIN, ERROR, b"{")
    assert KEY_HEADER not in {name for name, _ in letter.headers()}
    assert "key" not in parse_headers(letter.headers())


def test_empty_key_is_a_key() -> None:
    letter = DeadLetter.from_error(ORIGIN, ERROR, b"{", key=b"")
    assert (KEY_HEADER, b"") in letter.headers()
