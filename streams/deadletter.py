"""Dead letters: rejected input goes to a topic with its reason and origin, never lost.

The record's value is the original bytes (the whole message, or the one bad element of a
JSON array, re-encoded); the reason and origin travel in headers, the way Kafka Connect's
dead-letter queues carry them, so the record can be inspected and replayed as it was. The
source message's key, when it had one, travels as is in ``aiops.dlq.key``: the record's own
key names its source position, and a replay re-produces with the original key (and so to
the original key's partition).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.contract import EventError
from ingest.exceptions import DecodeError

TOO_MANY_ERRORS = "too_many_errors"
"""Reason of the one record that holds the rejected elements of a message past the limit."""

HEADER_PREFIX = "aiops.dlq."
KEY_HEADER = HEADER_PREFIX + "key"
"""Header holding the source message's key, raw bytes, present only when it had a key."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came from."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected message or element, ready to publish.

    ``count`` is how many rejected elements the record stands for: 1, except for the
    :data:`TOO_MANY_ERRORS` record of :func:`element_letters`.
    """

    origin: Origin
    reason: str
    detail: str
    original: bytes
    index: int | None = None
    key: bytes | None = None
    count: int = 1

    @classmethod
    def from_error(
        cls,
        origin: Origin,
        error: DecodeError,
        original: bytes,
        *,
        index: int | None = None,
        key: bytes | None = None,
    ) -> DeadLetter:
        return cls(origin, str(error.reason), error.detail, original, index, key)

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers carrying reason, origin and the source message's key.

        >>> letter = DeadLetter(Origin("telemetry.metrics", 2, 41), "invalid_json", "not JSON",
        ...                     b"{", key=b"web-7")
        >>> dict(letter.headers())["aiops.dlq.key"]
        b'web-7'
        >>> parse_headers(letter.headers())["key"]
        'web-7'
        """
        items = {
            "reason": self.reason,
            "detail": self.detail,
            "topic": self.origin.topic,
            "partition": str(self.origin.partition),
            "offset": str(self.origin.offset),
            "failed_at": f"{time.time():.3f}",
        }
        if self.index is not None:
            items["index"] = str(self.index)
        if self.count != 1:
            items["count"] = str(self.count)
        headers = [(HEADER_PREFIX + k, v.encode()) for k, v in items.items()]
        if self.key is not None:
            headers.append((KEY_HEADER, self.key))
        return headers

    def record_key(self) -> bytes:
        """Key of the dead-letter record: the source position, unique per rejected item."""
        suffix = f"#{self.index}" if self.index is not None else ""
        return f"{self.origin.topic}/{self.origin.partition}/{self.origin.offset}{suffix}".encode()


def element_letters(
    origin: Origin,
    errors: Sequence[EventError],
    *,
    key: bytes | None = None,
    limit: int = 100,
) -> list[DeadLetter]:
    """Dead letters of the rejected elements of one message, at most ``limit`` records.

    Each element gets a record of its own up to ``limit - 1``; when there are more, the
    rest go into one last record (reason :data:`TOO_MANY_ERRORS`, ``count`` the number of
    elements in it, ``index`` the first of them) whose value is their originals, one per
    line, and whose detail counts their reasons. A message of 100,000 bad elements thus
    costs ``limit`` records, not 100,000, and every element is still accounted for.

    >>> from ingest.exceptions import Reason
    >>> bad = [EventError(i, DecodeError(Reason.NOT_AN_EVENT, "not an object"), b"1")
    ...        for i in range(1, 6)]
    >>> letters = element_letters(Origin("m", 0, 7), bad, limit=3)
    >>> [(x.reason, x.index, x.count) for x in letters]
    [('not_an_event', 1, 1), ('not_an_event', 2, 1), ('too_many_errors', 3, 3)]
    >>> letters[-1].detail
    '3 more rejected elements of the message (from index 3 on), one per line: not_an_event 3'
    >>> letters[-1].original
    b'1\\n1\\n1'
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    single = errors if len(errors) <= limit else errors[: limit - 1]
    letters = [
        DeadLetter.from_error(origin, err.error, err.raw, index=err.index, key=key)
        for err in single
    ]
    rest = errors[len(single) :]
    if rest:
        reasons = Counter(str(err.error.reason) for err in rest)
        counted = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        first = rest[0].index
        where = f" (from index {first} on)" if first is not None else ""
        letters.append(
            DeadLetter(
                origin,
                TOO_MANY_ERRORS,
                f"{len(rest)} more rejected elements of the message{where}, "
                f"one per line: {counted}",
                b"\n".join(err.raw for err in rest),
                index=first,
                key=key,
                count=len(rest),
            )
        )
    return letters


def parse_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Dead-letter headers as a plain mapping without the prefix (for tools and tests).

    Bytes of a key that are not UTF-8 are shown as backslash escapes (``\\xff``); a
    replay takes the raw bytes of the ``aiops.dlq.key`` header instead.

    >>> parse_headers([("aiops.dlq.reason", b"empty"), ("aiops.dlq.key", b"id-\\xff\\xfe")])
    {'reason': 'empty', 'key': 'id-\\\\xff\\\\xfe'}
    """
    out = {}
    for name, value in headers or []:
        if name.startswith(HEADER_PREFIX):
            errors = "backslashreplace" if name == KEY_HEADER else "replace"
            out[name[len(HEADER_PREFIX) :]] = value.decode(errors=errors)
    return out
