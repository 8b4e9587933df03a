"""How alarming a log line looks on its own: its level and its failure words."""

from __future__ import annotations

import re
from collections.abc import Iterable

LEVEL_WEIGHTS: dict[str | None, float] = {
    "emergency": 1.0,
    "alert": 1.0,
    "critical": 1.0,
    "error": 0.8,
    "warning": 0.5,
    "notice": 0.3,
    "info": 0.2,
    "debug": 0.1,
    "trace": 0.1,
    None: 0.3,
}
"""Weight of each normalised level (unknown levels weigh as ``None``)."""

ERROR_LEVELS = frozenset({"error", "critical", "alert", "emergency"})
"""Levels counted in the ``log:errors`` signal."""

_LEVEL_SHARE = 0.6
_WORD_SHARE = 0.4


class SeverityScorer:
    """Scores a line 0..1 from its level (60%) and the presence of failure words (40%).

    Parameters
    ----------
    failure_words
        Words or short phrases, matched case-insensitively as whole words.

    Examples
    --------
    >>> scorer = SeverityScorer(["failed", "timed out"])
    >>> scorer.score("Connection timed out after <*>", "error")
    0.88
    >>> scorer.score("User logged in", "info")
    0.12
    """

    def __init__(self, failure_words: Iterable[str]) -> None:
        words = sorted({w.strip().lower() for w in failure_words if w.strip()}, key=len)
        alternation = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in reversed(words))
        self._words = re.compile(rf"\b(?:{alternation})\b", re.IGNORECASE) if words else None

    def has_failure_word(self, text: str) -> bool:
        """Whether the text holds one of the failure words."""
        return self._words is not None and self._words.search(text) is not None

    def score(self, text: str, level: str | None) -> float:
        """Severity of a line (or template) with the given normalised level."""
        weight = LEVEL_WEIGHTS.get(level, LEVEL_WEIGHTS[None])
        words = 1.0 if self.has_failure_word(text) else 0.0
        return round(_LEVEL_SHARE * weight + _WORD_SHARE * words, 6)
