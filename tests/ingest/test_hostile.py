"""The decoders against the hostile corpus, in process: every message as the contract says."""

from __future__ import annotations

from collections import Counter

import pytest

from ingest.alerts import AlertIngestConfig, decode_alert_message
from ingest.contract import Decoded
from ingest.exceptions import DecodeError
from ingest.logs import LogIngestConfig, decode_log_message
from ingest.metrics import MetricIngestConfig, decode_metric_message
from streams.deadletter import Origin, element_letters
from tests.hostile import DEAD_LETTER_LIMIT, MAX_BYTES, Case, corpus, every_kind


def _decode(case: Case) -> Decoded:  # type: ignore[type-arg]
    if case.role == "metrics":
        return decode_metric_message(case.payload, config=MetricIngestConfig(), max_bytes=MAX_BYTES)
    if case.role == "logs":
        return decode_log_message(
            case.payload, config=LogIngestConfig(), max_bytes=MAX_BYTES, received_at=1.7e9
        )
    return decode_alert_message(
        case.payload, config=AlertIngestConfig(), max_bytes=MAX_BYTES, received_at=1.7e9
    )


def outcome(case: Case) -> tuple[int, Counter[str], int]:
    """Accepted events, dead-letter reasons and rejected elements, as the worker computes them."""
    try:
        decoded = _decode(case)
    except DecodeError as exc:
        return 0, Counter([str(exc.reason)]), 1
    letters = element_letters(Origin("t", 0, 0), decoded.errors, limit=DEAD_LETTER_LIMIT)
    return (
        len(decoded.events),
        Counter(letter.reason for letter in letters),
        sum(letter.count for letter in letters),
    )


@pytest.mark.parametrize("case", list(every_kind()), ids=lambda c: f"{c.role}-{c.kind}")
def test_every_kind_of_hostile_message(case: Case) -> None:
    accepted, reasons, rejected = outcome(case)
    assert (accepted, reasons, rejected) == (case.accepted, Counter(case.letters), case.rejected)


def test_a_mixed_corpus_is_accounted_for() -> None:
    for role in ("metrics", "logs", "alerts"):
        cases = corpus(role, 600, seed=7)
        assert len(cases) == 600
        for case in cases:
            accepted, reasons, rejected = outcome(case)
            assert accepted == case.accepted and rejected == case.rejected, case.kind
            assert reasons == Counter(case.letters), case.kind
