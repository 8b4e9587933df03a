"""Dead letters: rejected input goes to a topic with its reason and origin, never lost.

The record's value is the original bytes (the whole message, or the one bad element of a
JSON array, re-encoded); the reason and origin travel in headers, the way Kafka Connect's
dead-letter queues carry them, so the record can be inspected and replayed as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ingest.exceptions import DecodeError

HEADER_PREFIX = "aiops.dlq."


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
        """Kafka headers carrying reason and origin."""
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
        return [(HEADER_PREFIX + k, v.encode()) for k, v in items.items()]

    def record_key(self) -> bytes:
        """Key of the dead-letter record: the source position, unique per rejected item."""
        suffix = f"#{self.index}" if self.index is not None else ""
        return f"{self.origin.topic}/{self.origin.partition}/{self.origin.offset}{suffix}".encode()


def parse_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Dead-letter headers as a plain mapping without the prefix (for tools and tests)."""
    out = {}
    for name, value in headers or []:
        if name.startswith(HEADER_PREFIX):
            out[name[len(HEADER_PREFIX) :]] = value.decode(errors="replace")
    return out
