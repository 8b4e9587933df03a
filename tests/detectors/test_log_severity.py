"""Severity: level and failure words, without caller errors, dumps or negations."""

from __future__ import annotations

import pytest

from detectors.logs import LogDetectionConfig, SeverityScorer

CFG = LogDetectionConfig()
SCORER = SeverityScorer(CFG.failure_words, CFG.caller_errors)


@pytest.mark.parametrize(
    ("text", "level", "alert"),
    [
        ("Lustre mount FAILED : <*> : point <*>", "critical", True),
        ("ciod: LOGIN chdir(<*>) failed: Input/output error", "critical", True),
        ("upstream connect error or disconnect/reset before headers", "error", True),
        ("data TLB error interrupt", "critical", True),
        # a caller's mistake, not a fault of the system
        ("open(<*>) failed: No such file or directory", "critical", False),
        ("Error loading <*>: Permission denied", "error", False),
        ("GET <*> failed: 404 Not Found", "error", False),
        # a line of a register dump
        ("program interrupt: illegal instruction......<*>", "critical", False),
        ("machine check enable...<*>", "critical", False),
        # negated
        ("self test passed, no errors", "error", False),
        ("completed without failure", "critical", False),
        # no failure word, or a low level
        ("node card is not fully functional", "critical", False),
        ("instruction cache parity error corrected", "info", False),
    ],
)
def test_alert_lines(text: str, level: str, alert: bool) -> None:
    assert (SCORER.score(text, level) >= CFG.alert_severity) is alert


def test_severity_orders_levels_and_words() -> None:
    assert SCORER.score("disk failed", "critical") > SCORER.score("disk failed", "warning")
    assert SCORER.score("disk failed", "warning") > SCORER.score("disk ok", "warning")
    assert SCORER.score("x", None) == SCORER.score("x", "not-a-level")
    assert 0 <= SCORER.score("", None) <= 1
