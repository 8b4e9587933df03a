"""Header layouts learnt from a stream's own raw lines."""

from __future__ import annotations

from ingest.header import HeaderLearner, learn_header
from ingest.logs import LogIngestConfig, decode_log_message

JAVA = [
    "2026-11-26 18:00:01.250 [worker-3] WARN  com.acme.Billing: card declined for 42",
    "2026-11-26 18:00:02.001 [worker-1] INFO  com.acme.Cart: added item 7 to cart 9",
    "2026-11-26 18:00:02.310 [main] ERROR com.acme.Billing: gateway timeout after 30s",
]


def decode(line: str, headers: HeaderLearner | None, stream: str = "s") -> tuple:
    event = decode_log_message(
        line.encode(),
        config=LogIngestConfig(),
        max_bytes=65536,
        received_at=1.7e9,
        headers=headers,
        stream=stream,
    ).events[0]
    return event.message, event.level, dict(event.attributes)


def test_a_java_style_header_is_learnt_and_split_off() -> None:
    headers = HeaderLearner()
    out = [decode(line, headers) for line in JAVA]
    assert [m for m, _, _ in out] == [
        "card declined for 42",
        "added item 7 to cart 9",
        "gateway timeout after 30s",
    ]
    assert [level for _, level, _ in out] == ["warning", "info", "error"]
    assert out[0][2]["format"] == "learned"
    assert out[0][2]["logger"] == "com.acme.Billing"


def test_without_learning_the_header_stays_in_the_message() -> None:
    message, _, attributes = decode(JAVA[0], None)
    assert message.startswith("[worker-3] WARN")  # only the leading date was recognised
    assert attributes["format"] == "plain"


def test_a_numeric_header_without_level_or_logger() -> None:
    lines = [f"{1000 + i} node-{i % 7} {1700000000 + i} 1 link {i % 3} went down" for i in range(5)]
    headers = HeaderLearner()
    assert [decode(line, headers)[0] for line in lines][-1] == "link 1 went down"
    assert learn_header(lines) is not None


def test_lines_that_start_with_words_have_no_header() -> None:
    headers = HeaderLearner()
    lines = ["Starting payment service", "Listening on port 8080", "Ready to serve"]
    assert [decode(line, headers)[0] for line in lines] == lines
    assert headers.header("s") is None


def test_a_line_that_does_not_fit_keeps_its_whole_text_and_is_counted() -> None:
    headers = HeaderLearner(sample_lines=3)
    for line in JAVA:
        decode(line, headers)
    odd = "Exception in thread main java.lang.IllegalStateException: boom"
    assert decode(odd, headers)[0] == odd
    assert headers.unfit_lines == 1


def test_a_banner_first_is_learnt_past_within_the_sample() -> None:
    headers = HeaderLearner(sample_lines=20)
    banner = "Starting up the billing service"
    first = decode(banner, headers)[0]
    assert first == banner
    later = [decode(line, headers)[0] for line in JAVA * 3]
    assert later[-1] == "gateway timeout after 30s"


def test_streams_learn_apart_and_are_bounded() -> None:
    headers = HeaderLearner(max_streams=2)
    decode(JAVA[0], headers, "java")
    decode("Ready to serve", headers, "words")
    assert headers.header("java") is not None and headers.header("words") is None
    decode(JAVA[0], headers, "third")
    assert headers.header("java") is None  # the least recently seen was forgotten
    assert decode(JAVA[1], headers, "third")[0] == "added item 7 to cart 9"


def test_syslog_framing_is_not_touched() -> None:
    headers = HeaderLearner()
    line = "<38>Nov 26 18:00:00 bastion sshd[811]: Failed password for root"
    message, _, attributes = decode(line, headers)
    assert message == "Failed password for root" and attributes["format"] == "rfc3164"
    assert headers.header("s") is None


def test_hostile_lines_neither_crash_nor_lose_text() -> None:
    headers = HeaderLearner()
    for line in ["[[[[[[[[", "]]]] ::: ---", "12345", "[unclosed bracket at the start", "x" * 5000]:
        message, _, _ = decode(line, headers)
        assert message
