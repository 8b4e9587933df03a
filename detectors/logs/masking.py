"""Masking of variable parts of a log line before template mining.

One compiled regular-expression alternation replaces every variable-looking span (IP
addresses, UUIDs, hex, paths, URLs, durations, sizes, numbers, and any word that carries a
digit) by the parameter marker, in one C-level pass. Masking before mining is what makes the
miner fast and accurate on its own: two lines that differ only in values become the same
string, so a cache keyed by the masked line skips the tree search for most lines.
"""

from __future__ import annotations

import re

PARAM = "<*>"
"""The parameter marker, as in Drain."""

# Order matters: longer, more specific forms first, so an IP is not eaten as numbers.
_PATTERNS: tuple[str, ...] = (
    # URLs with a scheme.
    r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s,;\"'()\[\]{}<>]+",
    # UUIDs.
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    # Times of day: 07:07:00, 09:21:58.929, 00:02.
    r"\d{1,2}:\d\d(?::\d\d)?(?:[.,]\d+)?(?![\w:])",
    # IPv4 (optionally with a port) and IPv6-looking runs of hex groups.
    r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])",
    r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])",
    # MAC addresses.
    r"\b[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\b",
    # Absolute file paths (at least two segments, or one with an extension).
    r"(?<![\w/])(?:/[\w.\-@~%+]+){2,}/?|(?<![\w/])/[\w\-@~%+]+\.[\w\-.]+",
    # Sizes with a unit: '5.2 KB', '128MiB' (one value, whatever its unit).
    r"(?<![\w.])\d+(?:\.\d+)?\s?(?:[KMGTPE]i?B|B)\b",
    # Windows paths.
    r"[A-Za-z]:\\[^\s\"'<>|]*",
    # Hex numbers.
    r"\b0[xX][0-9a-fA-F]+\b",
    # Any word containing a digit: numbers, durations (12ms), sizes (3.5GB), ids
    # (blk_-123, attempt_01_02), hex hashes with a digit, versions, timestamps.
    # A run of dots is a leader ("enable......0"), not part of the value.
    r"(?![A-Za-z]{2,}\d(?![\w.\-]))[-+]?(?:[\w\-]+\.)*[\w\-]*\d[\w\-]*(?:\.[\w\-]+)*",
)

# Every variable span starts a token (not inside a word, but possibly after a dot leader)
# and its token holds a digit or a (back)slash; checking that first lets the engine skip
# most positions at once (3x faster).
_GATE = r"(?<![\w\-])(?<!(?<!\.)\.)(?=[\w\-+.\[(/\\:]*?[\d/\\])"
_MASK_RE = re.compile(_GATE + "(?:" + "|".join(f"(?:{p})" for p in _PATTERNS) + ")")
# A run of parameters is one parameter: lists of ids or readings vary in length. A value
# in parentheses on its own is an optional rendering of a neighbour ("5174 bytes (5.05 KB)").
_RUN_RE = re.compile(r"(?<![^\s(\[{,;])<\*>(?:[\s,;]+<\*>)+(?![^\s)\]},;.:])| \(<\*>\)(?=[\s,;]|$)")


def mask(line: str) -> str:
    """Replace the variable parts of a log line by ``<*>``.

    Parameters
    ----------
    line
        The message body (no syslog header).

    Examples
    --------
    >>> mask("Connection from 10.0.0.12:5432 closed after 1.5s")
    'Connection from <*> closed after <*>'
    >>> mask("Deleting block blk_-1608999687919862906 file /data/dfs/blk_1")
    'Deleting block <*> file <*>'
    >>> mask("user 6b2c0d4e-1f9a-4c3e-9a57-0d8e0b5f6a21 logged in")
    'user <*> logged in'
    >>> mask("Fan speeds ( 3552 3534 3375 3515 )")
    'Fan speeds ( <*> )'
    >>> mask("sent 5174 bytes (5.05 KB) in 00:02")
    'sent <*> bytes in <*>'
    """
    masked = _MASK_RE.sub(PARAM, line)
    if "<*> " in masked or "<*>," in masked or "<*>;" in masked or " (<*>)" in masked:
        masked = _RUN_RE.sub(_collapse, masked)
    return masked


def _collapse(match: re.Match[str]) -> str:
    return "" if match.group().startswith(" (") else PARAM


def tokenize(masked: str) -> list[str]:
    """Split a masked line into the tokens the miner compares.

    >>> tokenize("Finished task <*> in stage <*>")
    ['Finished', 'task', '<*>', 'in', 'stage', '<*>']
    """
    return masked.split()
