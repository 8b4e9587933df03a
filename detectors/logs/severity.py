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


# "label ........ value": a line of a register or settings dump, whatever its label says
# (leaders are dot runs of any length, aligning the values in a column).
_FIELD_DUMP = re.compile(r"\.{2,}\S+$|\.{4,}\s+\S+$")
# "no error", "without failure", "not failed": the word is there, the failure is not.
_NEGATION = re.compile(r"\b(?:no|not|without|never)\s+(?:\S+\s+)?$", re.IGNORECASE)


def _phrases(items: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({w.strip().lower() for w in items if w.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternation = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return re.compile(rf"\b(?:{alternation})\b", re.IGNORECASE)


class SeverityScorer:
    """Scores a line 0..1 from its level (60%) and its failure words (40%).

    The failure-word share is withheld from lines that report a caller's mistake rather
    than a fault of the system (``No such file or directory``, ``Permission denied``: the
    errno texts of ENOENT, EACCES and kin, the 4xx of a log line) and from lines of a
    field dump (``machine check enable........0``), whose label names a register, not an
    event. A negated failure word (``no error``) does not count.

    Parameters
    ----------
    failure_words
        Words or short phrases, matched case-insensitively as whole words.
    caller_errors
        Phrases that mark a caller's mistake.

    Examples
    --------
    >>> scorer = SeverityScorer(["failed", "timed out"], ["permission denied"])
    >>> scorer.score("Connection timed out after <*>", "error")
    0.88
    >>> scorer.score("User logged in", "info")
    0.12
    >>> scorer.score("open <*> failed: Permission denied", "error")
    0.48
    """

    def __init__(self, failure_words: Iterable[str], caller_errors: Iterable[str] = ()) -> None:
        self._words = _phrases(failure_words)
        self._caller = _phrases(caller_errors)

    def has_failure_word(self, text: str) -> bool:
        """Whether the text holds one of the failure words, not negated.

        >>> scorer = SeverityScorer(["error"])
        >>> scorer.has_failure_word("No temperature error."), scorer.has_failure_word("I/O error")
        (False, True)
        """
        if self._words is None:
            return False
        for m in self._words.finditer(text):
            if _NEGATION.search(text, max(0, m.start() - 40), m.start()) is None:
                return True
        return False

    def reports_fault(self, text: str) -> bool:
        """Whether the text holds a failure word and is neither a caller error nor a dump."""
        if not self.has_failure_word(text):
            return False
        if self._caller is not None and self._caller.search(text) is not None:
            return False
        return _FIELD_DUMP.search(text) is None

    def score(self, text: str, level: str | None) -> float:
        """Severity of a line (or template) with the given normalised level."""
        weight = LEVEL_WEIGHTS.get(level, LEVEL_WEIGHTS[None])
        words = 1.0 if self.reports_fault(text) else 0.0
        return round(_LEVEL_SHARE * weight + _WORD_SHARE * words, 6)
