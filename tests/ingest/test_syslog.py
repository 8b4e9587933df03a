"""Raw line parsing: the framings rsyslog and syslog-ng put on Kafka, and plain lines."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ingest.syslog import LineFormat, level_from_text, parse_line

RECEIVED = datetime(2026, 11, 26, 18, 30, tzinfo=UTC).timestamp()


def test_rfc5424_all_fields() -> None:
    line = (
        "<165>1 2026-11-26T18:00:00.250+01:00 web-1 nginx 4242 ID47 "
        '[exampleSDID@32473 iut="3" service="cart"][origin ip="10.0.0.1"] GET /cart 500'
    )
    r = parse_line(line, received_at=RECEIVED)
    assert r.format is LineFormat.RFC5424
    assert r.timestamp == datetime(2026, 11, 26, 17, 0, 0, 250000, tzinfo=UTC).timestamp()
    assert (r.host, r.app_name, r.proc_id, r.msg_id) == ("web-1", "nginx", "4242", "ID47")
    assert (r.facility, r.severity, r.level) == (20, 5, "notice")
    assert dict(r.structured_data) == {
        "exampleSDID@32473.iut": "3",
        "exampleSDID@32473.service": "cart",
        "origin.ip": "10.0.0.1",
    }
    assert r.message == "GET /cart 500"


def test_rfc5424_nil_fields_bom_and_escapes() -> None:
    line = '<11>1 - - - - - [m k="a\\"b\\]c"] \ufeffdisk failure on sda'
    r = parse_line(line, received_at=RECEIVED)
    assert r.timestamp is None and r.host is None and r.app_name is None
    assert r.structured_data == (("m.k", 'a"b]c'),)
    assert r.message == "disk failure on sda"
    assert r.level == "error"  # severity 3


def test_rfc5424_without_structured_data_or_message() -> None:
    r = parse_line("<14>1 2026-11-26T18:00:00Z h app - - -", received_at=RECEIVED)
    assert r.format is LineFormat.RFC5424 and r.message == "" and r.structured_data == ()


def test_octet_counted_frame_is_unwrapped() -> None:
    r = parse_line("52 <14>1 2026-11-26T18:00:00Z h app - - - hello", received_at=RECEIVED)
    assert r.format is LineFormat.RFC5424 and r.message == "hello"


@pytest.mark.parametrize(
    ("line", "host", "app", "proc", "message"),
    [
        (
            "<38>Nov 26 18:00:00 web-1 sshd[811]: Accepted key",
            "web-1",
            "sshd",
            "811",
            "Accepted key",
        ),
        ("Nov 26 18:00:00 sshd[811]: Accepted key", None, "sshd", "811", "Accepted key"),
        ("<86>Nov  6 08:00:00 db cron: job done", "db", "cron", None, "job done"),
    ],
)
def test_rfc3164_variants(
    line: str, host: str | None, app: str, proc: str | None, message: str
) -> None:
    r = parse_line(line, received_at=RECEIVED)
    assert r.format is LineFormat.RFC3164
    assert (r.host, r.app_name, r.proc_id, r.message) == (host, app, proc, message)


def test_rfc3164_year_is_inferred_from_receipt() -> None:
    new_year = datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC).timestamp()
    r = parse_line("<13>Dec 31 23:59:59 h app: last of the year", received_at=new_year)
    assert r.timestamp == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def test_rfc3164_uses_configured_zone() -> None:
    zone = ZoneInfo("Europe/Paris")
    r = parse_line("<13>Nov 26 19:00:00 h app: hi", received_at=RECEIVED, default_tz=zone)
    assert r.timestamp == datetime(2026, 11, 26, 18, 0, tzinfo=UTC).timestamp()


def test_iso_dated_syslog_as_rsyslog_omkafka_default() -> None:
    line = "2026-11-26T18:00:00.123456+00:00 web-1 kernel: Out of memory: Killed process 42"
    r = parse_line(line, received_at=RECEIVED)
    assert r.format is LineFormat.ISO_SYSLOG
    assert (r.host, r.app_name, r.message) == (
        "web-1",
        "kernel",
        "Out of memory: Killed process 42",
    )
    assert r.timestamp == pytest.approx(
        datetime(2026, 11, 26, 18, tzinfo=UTC).timestamp() + 0.123456
    )


def test_plain_line_with_leading_date_and_level() -> None:
    r = parse_line("2026-11-26 18:00:01,250 ERROR [pool-3] query failed", received_at=RECEIVED)
    assert r.format is LineFormat.PLAIN
    assert r.level == "error"
    assert r.message == "ERROR [pool-3] query failed"
    assert r.timestamp == datetime(2026, 11, 26, 18, 0, 1, 250000, tzinfo=UTC).timestamp()


def test_plain_line_without_anything() -> None:
    r = parse_line("just some text", received_at=RECEIVED)
    assert (r.format, r.timestamp, r.level, r.host) == (LineFormat.PLAIN, None, None, None)


def test_level_word_in_message_wins_over_severity() -> None:
    r = parse_line("<14>Nov 26 18:00:00 h app: WARN pool almost full", received_at=RECEIVED)
    assert r.severity == 6 and r.level == "warning"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("INFO started", "info"),
        ("[main] WARN slow", "warning"),
        ("[error] boom", "error"),
        ("Fatal: boom", "critical"),
        ('ts=1 level=debug msg="x"', "debug"),
        ("the error rate is fine", None),
        ("information only", None),
        ("[Sun Dec 04 04:47:44 2005] [error] mod_jk child init", "error"),
        ("a b c d e f ERROR too far in", None),
    ],
)
def test_level_from_text(text: str, level: str | None) -> None:
    assert level_from_text(text) == level


# What rsyslog 8.2302 + omkafka wrote for lines `logger` sent as RFC 5424 and as RFC 3164.
FILE_FORMAT_OF_RFC5424 = "2026-11-26T21:41:58.919160+00:00 vm checkout0 order 17 settled in 40 ms"
PROTOCOL23_OF_RFC3164 = "<131>1 2026-11-26T21:41:58+00:00 vm checkout0 - - -  order 17 settled"


def test_rsyslog_file_format_tag_without_colon() -> None:
    r = parse_line(FILE_FORMAT_OF_RFC5424, received_at=RECEIVED)
    assert r.format is LineFormat.ISO_SYSLOG
    assert (r.host, r.app_name, r.proc_id, r.message) == (
        "vm",
        "checkout0",
        None,
        "order 17 settled in 40 ms",
    )
    assert r.timestamp == pytest.approx(datetime(2026, 11, 26, 21, 41, 58, 919160, UTC).timestamp())


@pytest.mark.parametrize(
    ("line", "host", "app", "proc", "message"),
    [
        # RFC 5424 input with a PROCID: rsyslog's tag is "APP-NAME[PROCID]", still no colon
        (
            "2026-11-26T18:00:00Z web-1 nginx[42] GET /cart 500",
            "web-1",
            "nginx",
            "42",
            "GET /cart 500",
        ),
        ("<30>2026-11-26T18:00:00-05:00 10.0.0.7 app", "10.0.0.7", "app", None, ""),
        # RSYSLOG_TraditionalFileFormat: the same tag after an RFC 3164 date
        (
            "Nov 26 18:00:00 vm checkout0 order 17 settled",
            "vm",
            "checkout0",
            None,
            "order 17 settled",
        ),
    ],
)
def test_tag_without_colon_after_a_host(
    line: str, host: str, app: str, proc: str | None, message: str
) -> None:
    r = parse_line(line, received_at=RECEIVED)
    assert (r.host, r.app_name, r.proc_id, r.message) == (host, app, proc, message)


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-26T18:00:00.123Z INFO server started on port 80",
        "2026-11-26T18:00:00.123Z main [error] boom",
        "2026-11-26T18:00:00.123Z host=web-1 msg=started",
        "2026-11-26T18:00:00.123 web-1 app started",  # no zone: not rsyslog's date
    ],
)
def test_plain_lines_with_an_iso_date_keep_their_words(line: str) -> None:
    r = parse_line(line, received_at=RECEIVED)
    assert r.format is LineFormat.PLAIN and r.app_name is None and r.host is None
    assert r.message == line.split(" ", 1)[1]


def test_rfc5424_message_loses_the_blank_rsyslog_keeps_after_a_colon() -> None:
    r = parse_line(PROTOCOL23_OF_RFC3164, received_at=RECEIVED)
    assert (r.host, r.app_name, r.level, r.message) == (
        "vm",
        "checkout0",
        "error",
        "order 17 settled",
    )
    # only one blank is framing: the rest of an indented message stays
    r = parse_line(
        "<14>1 2026-11-26T18:00:00Z h app - - - " + "   at Main.run", received_at=RECEIVED
    )
    assert r.message == "  at Main.run"
