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
from dataclasses import dataclass

from ingest.exceptions import DecodeError

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
    """One rejected message or element, ready to publish."""

    origin: Origin
    reason: str
    detail: str
    original: bytes
    index: int | None = None
    key: bytes | None = None

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
        headers = [(HEADER_PREFIX + k, v.encode()) for k, v in items.items()]
        if self.key is not None:
            headers.append((KEY_HEADER, self.key))
        return headers

    def record_key(self) -> bytes:
        """Key of the dead-letter record: the source position, unique per rejected item."""
        suffix = f"#{self.index}" if self.index is not None else ""
        return f"{self.origin.topic}/{self.origin.partition}/{self.origin.offset}{suffix}".encode()


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
