"""Learn the header of a stream's raw lines from the lines themselves.

A stream of raw lines from one program shares one header layout (a date, a time, a pid, a
level, a logger name) before the message. :class:`HeaderLearner` finds it without being
told, from the *shapes* of the leading tokens of a stream's first lines:

1. **Tokens.** A line's leading tokens are split at blanks, a bracketed group
   (``[Sun Dec 04 04:47:44 2005]``, ``[main]``) being one token.
2. **Shapes.** Each token gets one of a few shapes: a level word (``INFO``, ``[error]``), a
   number, a date or time (digits with separators, month and weekday names), a bracketed
   group, punctuation (``-``), a tag (ends with ``:`` and is not a plain word:
   ``sshd[811]:``, ``dfs.DataNode$PacketResponder:``), a plain word (letters only, the
   stuff of messages), or anything else (``node-246``, ``unix.hw``).
3. **Consistent positions.** Over the first ``sample_lines`` lines of a stream, a leading
   position is consistent when at least ``min_share`` of the lines have its most common
   shape there; only the leading run of consistent positions can be header.
4. **Where the header ends.** At the first level word of that run, then through a tag
   that follows it (the logger name) and any bracketed groups and punctuation around
   them; without a level, at the first tag; without either, after the leading positions
   that are neither plain words nor tags (numbers, dates, names), if one of them is a number
   or a date. A plain word ends the header in every case (a message starts with words).

Once learnt, a line whose leading tokens have the learnt shapes (at most one position
differing) is split: the level and tag are read from the header and the rest is the
message. A line that does not fit keeps its whole text as the message, as before, and is
counted. The learner is pure and bounded: ``max_streams`` streams, the least recently seen
forgotten first.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from ingest.contract import normalise_level

LEVEL, NUMBER, TIME, GROUP, PUNCT, TAG, WORD, OTHER = "L", "N", "T", "B", "P", "C", "W", "X"

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CALENDAR = frozenset((*_MONTHS, "mon", "tue", "wed", "thu", "fri", "sat", "sun"))
_NUMBER = re.compile(r"^[+-]?\d+$")
_TIME = re.compile(r"^\d+(?:[-/:.,T]\d+)+(?:Z|[+-]\d\d:?\d\d)?[,.]?$")
_PUNCT = re.compile(r"^[^\w\s]+$")
_WORD = re.compile(r"^[A-Za-z]+[,.;:!?]?$")
_OPENERS = {"[": "]", "(": ")", "<": ">", "{": "}"}


def tokens(line: str, limit: int) -> list[tuple[str, int]]:
    """The first ``limit`` tokens of ``line`` and the offset after each.

    >>> [t for t, _ in tokens("[Sun Dec 04 04:47:44 2005] [notice] init ok", 3)]
    ['[Sun Dec 04 04:47:44 2005]', '[notice]', 'init']
    """
    out: list[tuple[str, int]] = []
    i, n = 0, len(line)
    while i < n and len(out) < limit:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        closer = _OPENERS.get(line[i])
        if closer is not None:
            depth = 0
            while i < n:
                if line[i] == line[start]:
                    depth += 1
                elif line[i] == closer:
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
            while i < n and not line[i].isspace():  # "sshd[811]:" and the like
                i += 1
        else:
            while i < n and not line[i].isspace():
                i += 1
        out.append((line[start:i], i))
    return out


def shape(token: str) -> str:
    """The shape of one token (see the module's description).

    >>> [shape(t) for t in ["INFO", "[error]", "148", "04:47:44", "Dec", "[main]", "-",
    ...                     "sshd[811]:", "Change:", "block", "node-246"]]
    ['L', 'L', 'N', 'T', 'T', 'B', 'P', 'C', 'W', 'W', 'X']
    """
    bare = token.strip("[]()<>{}:")
    if bare and normalise_level(bare) is not None and bare.isalpha():
        return LEVEL
    if _NUMBER.match(token):
        return NUMBER
    if _TIME.match(token.strip("[]()")) or token.strip("[](),").lower() in _CALENDAR:
        return TIME
    if token[0] in _OPENERS and token[-1] == _OPENERS[token[0]]:
        return GROUP
    if _PUNCT.match(token):
        return PUNCT
    if _WORD.match(token):
        return WORD
    if token.endswith(":"):
        return TAG
    return OTHER


@dataclass(frozen=True, slots=True)
class Header:
    """A learnt header layout: the shapes of its tokens."""

    shapes: tuple[str, ...]

    def split(self, line: str) -> tuple[str, str | None, str | None] | None:
        """``(message, level, tag)`` of a line that fits, else None."""
        found = tokens(line, len(self.shapes) + 1)
        if len(found) <= len(self.shapes):
            return None
        head = found[: len(self.shapes)]
        misses = sum(shape(t) != s for (t, _), s in zip(head, self.shapes, strict=True))
        if misses > max(1, len(self.shapes) // 3):
            return None
        level = tag = None
        for (token, _), want in zip(head, self.shapes, strict=True):
            if want == LEVEL and level is None:
                level = normalise_level(token.strip("[]()<>{}:"))
            elif want == TAG and tag is None:
                tag = token.rstrip(":")
        message = line[head[-1][1] :].lstrip()
        return (message, level, tag) if message else None


def learn_header(
    lines: list[str], *, min_share: float = 0.9, max_tokens: int = 10
) -> Header | None:
    """The header layout the lines share, or None (see the module's description).

    >>> learn_header(["081109 203615 148 INFO dfs.DataNode: Receiving block blk_1",
    ...               "081109 203616 150 WARN dfs.FSNamesystem: BLOCK* ask 10.0.0.1",
    ...               "081109 203617 148 INFO dfs.DataNode: PacketResponder 1 ended"])
    Header(shapes=('N', 'N', 'N', 'L', 'C'))
    """
    if not lines:
        return None
    shapes = [[shape(t) for t, _ in tokens(line, max_tokens)] for line in lines]
    consistent: list[str] = []
    for i in range(max_tokens):
        counts = Counter(s[i] for s in shapes if len(s) > i)
        if not counts:
            break
        modal, count = counts.most_common(1)[0]
        if count < min_share * len(lines):
            break
        consistent.append(modal)
    end = _header_end(consistent)
    return Header(tuple(consistent[:end])) if end else None


def _header_end(run: list[str]) -> int:
    """How many positions of the consistent run ``run`` are header (0: none)."""
    words = run.index(WORD) if WORD in run else len(run)
    run = run[:words]  # a plain word ends the header
    anchor = None
    if LEVEL in run:
        anchor = run.index(LEVEL)
        after = anchor + 1
        while after < len(run) and run[after] in (GROUP, PUNCT):
            after += 1
        if after < len(run) and run[after] == TAG:
            anchor = after
    elif TAG in run:
        anchor = run.index(TAG)
    if anchor is None:
        plain = run.index(TAG) if TAG in run else len(run)
        return plain if any(s in (NUMBER, TIME) for s in run[:plain]) else 0
    end = anchor + 1
    while end < len(run) and run[end] in (GROUP, PUNCT):
        end += 1
    return end


@dataclass(slots=True)
class _Stream:
    sample: list[str] = field(default_factory=list)
    header: Header | None = None
    learning: bool = True
    unfit: int = 0


class HeaderLearner:
    """Per-stream learnt headers of raw lines (see the module's description).

    The layout is learnt from a stream's first line at once, and learnt again from the
    lines so far whenever more than ``1 - min_share`` of the first ``sample_lines`` do not
    fit it; after those it stays.

    Parameters
    ----------
    sample_lines
        Lines of a stream the layout may still be learnt again from.
    min_share
        Share of those lines a position's shape must have to be consistent.
    max_streams
        Streams remembered; the least recently seen is forgotten first.

    >>> learner = HeaderLearner()
    >>> learner.split("hadoop", "2015-10-18 18:01:47,978 INFO [main] o.a.h.App: Created app")
    ('Created app', 'info', 'o.a.h.App')
    >>> learner.split("hadoop", "2015-10-18 18:02:00,001 ERROR [IPC] o.a.h.Job: Lost task 3")
    ('Lost task 3', 'error', 'o.a.h.Job')
    """

    def __init__(
        self, *, sample_lines: int = 50, min_share: float = 0.9, max_streams: int = 10_000
    ) -> None:
        self.sample_lines = sample_lines
        self.min_share = min_share
        self.max_streams = max_streams
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self.split_lines = 0
        self.unfit_lines = 0

    def header(self, stream: str) -> Header | None:
        """The layout learnt for ``stream`` (None until learnt, or if it has none)."""
        found = self._streams.get(stream)
        return None if found is None else found.header

    def split(self, stream: str, line: str) -> tuple[str, str | None, str | None] | None:
        """``(message, level, tag)`` of ``line`` by its stream's header; None for a
        stream without a header and for a line that does not fit it."""
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _Stream()
            while len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        else:
            self._streams.move_to_end(stream)
        if state.learning:
            state.sample.append(line)
            if state.header is None or state.header.split(line) is None:
                state.unfit += 1
            if len(state.sample) == 1 or state.unfit > (1.0 - self.min_share) * len(state.sample):
                state.header = learn_header(state.sample, min_share=self.min_share)
                state.unfit = (
                    0
                    if state.header is None
                    else sum(state.header.split(x) is None for x in state.sample)
                )
            if len(state.sample) >= self.sample_lines:
                state.sample = []
                state.learning = False
        if state.header is None:
            return None
        parts = state.header.split(line)
        if parts is None:
            self.unfit_lines += 1
        else:
            self.split_lines += 1
        return parts
