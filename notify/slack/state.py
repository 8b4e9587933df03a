"""What has been delivered for each incident: the message reference kept across restarts."""

from __future__ import annotations

import dataclasses
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Protocol

import orjson

from notify.exceptions import StateDecodeError


@dataclass(frozen=True, slots=True)
class MessageRef:
    """The Slack message of one incident and how far its delivery went.

    Parameters
    ----------
    incident_id
        The incident.
    channel
        Channel the message was posted to (updates and replies go there too).
    ts
        Slack's message timestamp (its id); empty for webhook messages, which have none.
    last_version
        Latest incident version the message shows.
    timeline_len
        Timeline entries already considered for thread replies.
    chart_posted
        True once the chart was uploaded into the thread.
    services
        Services already shown or announced (a new one gets a thread reply).

    >>> ref = MessageRef("inc-1", "C1", "1700000000.000100", 3, 5, False, ("api",))
    >>> MessageRef.from_bytes(ref.to_bytes()) == ref
    True
    """

    incident_id: str
    channel: str
    ts: str
    last_version: int
    timeline_len: int
    chart_posted: bool = False
    services: tuple[str, ...] = ()

    def replace(self, **changes: object) -> MessageRef:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_bytes(self) -> bytes:
        """JSON encoding, for a Faust table or a compacted topic."""
        data = dataclasses.asdict(self)
        data["services"] = list(self.services)
        return orjson.dumps(data)

    @classmethod
    def from_bytes(cls, raw: bytes) -> MessageRef:
        """Inverse of :meth:`to_bytes`; raises :class:`~notify.exceptions.StateDecodeError`."""
        try:
            data = orjson.loads(raw)
            return cls(
                incident_id=str(data["incident_id"]),
                channel=str(data["channel"]),
                ts=str(data["ts"]),
                last_version=int(data["last_version"]),
                timeline_len=int(data["timeline_len"]),
                chart_posted=bool(data.get("chart_posted", False)),
                services=tuple(str(s) for s in data.get("services") or ()),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateDecodeError(f"bad message state: {exc}") from exc


class MessageStateStore(Protocol):
    """Where message references live; the worker backs it with a Faust table."""

    def get(self, incident_id: str) -> MessageRef | None:
        """The reference of an incident's message, if one was posted."""
        ...

    def put(self, ref: MessageRef) -> None:
        """Record (or replace) a reference; called after every successful Slack call."""
        ...


class InMemoryStateStore:
    """A :class:`MessageStateStore` in a dict (tests, demo, single process).

    >>> store = InMemoryStateStore()
    >>> store.put(MessageRef("inc-1", "C1", "1.0", 1, 1))
    >>> store.get("inc-1").ts, store.get("inc-2")
    ('1.0', None)
    """

    def __init__(self) -> None:
        self.refs: dict[str, MessageRef] = {}

    def get(self, incident_id: str) -> MessageRef | None:
        """See :class:`MessageStateStore`."""
        return self.refs.get(incident_id)

    def put(self, ref: MessageRef) -> None:
        """See :class:`MessageStateStore`."""
        self.refs[ref.incident_id] = ref


class MappingStateStore:
    """A :class:`MessageStateStore` over any ``MutableMapping[str, bytes]``, e.g. a Faust
    table (changelog-backed, so references survive restarts and rebalances).

    >>> table: dict[str, bytes] = {}
    >>> store = MappingStateStore(table)
    >>> store.put(MessageRef("inc-1", "C1", "1.0", 1, 1))
    >>> store.get("inc-1").channel, sorted(table)
    ('C1', ['inc-1'])
    """

    def __init__(self, mapping: MutableMapping[str, bytes]) -> None:
        self.mapping = mapping

    def get(self, incident_id: str) -> MessageRef | None:
        """See :class:`MessageStateStore`; an undecodable entry counts as absent."""
        raw = self.mapping.get(incident_id)
        if raw is None:
            return None
        try:
            return MessageRef.from_bytes(raw)
        except StateDecodeError:
            return None

    def put(self, ref: MessageRef) -> None:
        """See :class:`MessageStateStore`."""
        self.mapping[ref.incident_id] = ref.to_bytes()
