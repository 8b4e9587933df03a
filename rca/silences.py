"""Silences and maintenance windows, in the manner of Alertmanager.

A :class:`Silence` has label matchers and a time range. A label set is muted when some
active silence has every matcher matching it. The engine gives each anomaly the labels
``service``, ``signal``, ``kind``, ``host`` (when known) and the anomaly's own labels; an
incident is silenced while every anomaly in it is muted, so a silence never hides a
problem that also shows somewhere it does not cover. A silenced incident is still
recorded and published (with ``silenced: true``), but not notified and not acted on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from rca.exceptions import ConfigError

_MATCHER_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


class MatchOp(StrEnum):
    """Matcher operator, as in Alertmanager."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition; regex matchers are anchored (full match).

    >>> Matcher.parse('service=~"cart.*"').matches({"service": "carts"})
    True
    >>> Matcher.parse("service!=carts").matches({"service": "carts"})
    False
    """

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op in (MatchOp.RE, MatchOp.NRE):
            re.compile(self.value)  # fail early on a bad pattern

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """From ``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``."""
        found = _MATCHER_RE.match(text)
        if not found:
            raise ValueError(f"not a matcher: {text!r} (expected name=value, =~, != or !~)")
        name, op, value = found.groups()
        try:
            return cls(name=name, op=MatchOp(op), value=value)
        except re.error as exc:
            raise ValueError(f"bad regex in {text!r}: {exc}") from exc

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if the label set satisfies the condition (a missing label is ``""``)."""
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op is MatchOp.RE else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class Silence:
    """Mute matching incidents between ``starts_at`` and ``ends_at`` (epoch seconds).

    >>> s = Silence(id="m1", matchers=(Matcher.parse("service=carts"),),
    ...             starts_at=100.0, ends_at=200.0)
    >>> s.mutes({"service": "carts"}, at=150.0), s.mutes({"service": "carts"}, at=250.0)
    (True, False)
    """

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    def active(self, at: float) -> bool:
        """True if the silence applies at event time ``at``."""
        return self.starts_at <= at < self.ends_at

    def mutes(self, labels: Mapping[str, str], at: float) -> bool:
        """True if active and every matcher matches."""
        return self.active(at) and all(m.matches(labels) for m in self.matchers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, also accepted on the control topic."""
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<control>") -> Silence:
        """Validate one silence (see :func:`load_silences` for the accepted forms)."""
        return parse_silence(data, source=source, index=0)


class SilenceSet:
    """The current silences; answers whether a label set is muted at a time.

    Parameters
    ----------
    silences
        Initial silences.
    max_silences
        Bound; when exceeded, the silences that end first are dropped.
    """

    def __init__(self, silences: Iterable[Silence] = (), *, max_silences: int = 10_000) -> None:
        self.max_silences = max_silences
        self._by_id: dict[str, Silence] = {}
        for silence in silences:
            self.add(silence)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Any:
        return iter(self._by_id.values())

    def add(self, silence: Silence) -> None:
        """Add or replace (by id) a silence."""
        self._by_id[silence.id] = silence
        if len(self._by_id) > self.max_silences:
            first = min(self._by_id.values(), key=lambda s: s.ends_at)
            del self._by_id[first.id]

    def expire(self, silence_id: str, at: float) -> bool:
        """End a silence now; False if unknown."""
        silence = self._by_id.get(silence_id)
        if silence is None:
            return False
        self._by_id[silence_id] = Silence(
            id=silence.id,
            matchers=silence.matchers,
            starts_at=min(silence.starts_at, at),
            ends_at=at,
            created_by=silence.created_by,
            comment=silence.comment,
        )
        return True

    def muting(self, labels: Mapping[str, str], at: float) -> Silence | None:
        """The active silence that mutes the label set (the one that lasts longest), if any."""
        hits = [s for s in self._by_id.values() if s.mutes(labels, at)]
        return max(hits, key=lambda s: (s.ends_at, s.id)) if hits else None

    def prune(self, at: float, keep_expired_s: float) -> None:
        """Forget silences that ended more than ``keep_expired_s`` before ``at``."""
        self._by_id = {k: s for k, s in self._by_id.items() if s.ends_at + keep_expired_s >= at}


def _time(value: Any, *, source: str, where: str, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(source, where, f"'{key}' must be a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return dt.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(source, where, f"'{key}' is not an RFC 3339 time: {value!r}") from exc
        return _time(dt, source=source, where=where, key=key)
    raise ConfigError(source, where, f"'{key}' must be epoch seconds or an RFC 3339 time")


_SILENCE_KEYS = {"id", "matchers", "starts_at", "ends_at", "created_by", "comment"}


def parse_silence(data: Any, *, source: str, index: int) -> Silence:
    """Validate one silence mapping; errors name the silence (its id or position)."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, f"silence #{index + 1}", "expected a mapping")
    where = f"silence '{data['id']}'" if "id" in data else f"silence #{index + 1}"
    unknown = set(data) - _SILENCE_KEYS
    if unknown:
        raise ConfigError(source, where, f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    for key in ("id", "matchers", "starts_at", "ends_at"):
        if key not in data:
            raise ConfigError(source, where, f"missing '{key}'")
    raw = data["matchers"]
    items: list[str]
    if isinstance(raw, Mapping):
        items = [f"{k}={v}" for k, v in raw.items()]
    elif isinstance(raw, list) and all(isinstance(m, str) for m in raw):
        items = list(raw)
    else:
        raise ConfigError(source, where, "'matchers' must be a list of 'name=value' strings")
    if not items:
        raise ConfigError(source, where, "'matchers' is empty (it would mute everything)")
    try:
        matchers = tuple(Matcher.parse(m) for m in items)
    except ValueError as exc:
        raise ConfigError(source, where, str(exc)) from exc
    starts = _time(data["starts_at"], source=source, where=where, key="starts_at")
    ends = _time(data["ends_at"], source=source, where=where, key="ends_at")
    if ends <= starts:
        raise ConfigError(source, where, "'ends_at' must be after 'starts_at'")
    return Silence(
        id=str(data["id"]),
        matchers=matchers,
        starts_at=starts,
        ends_at=ends,
        created_by=str(data.get("created_by") or ""),
        comment=str(data.get("comment") or ""),
    )


def load_silences(path: str | Path) -> list[Silence]:
    """Read a silences file: ``silences:`` followed by a list of silences.

    Each silence has ``id``, ``matchers`` (a list such as ``['service=carts',
    'env=~"prod|staging"']``, or a mapping for plain equality), ``starts_at`` and
    ``ends_at`` (RFC 3339 or epoch seconds), optional ``created_by`` and ``comment``.
    Raises :class:`~rca.exceptions.ConfigError` naming the file, the silence and the problem.
    """
    source = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML ({exc})") from exc
    if doc is None:
        return []
    if not isinstance(doc, Mapping) or not isinstance(doc.get("silences", []), list):
        raise ConfigError(source, "silences", "expected 'silences:' followed by a list")
    silences = [parse_silence(s, source=source, index=i) for i, s in enumerate(doc["silences"])]
    seen: set[str] = set()
    for silence in silences:
        if silence.id in seen:
            raise ConfigError(source, f"silence '{silence.id}'", "duplicate id")
        seen.add(silence.id)
    return silences


def silence_of(data: dict[str, Any]) -> Silence:
    """The silence a ``silence`` command carries (its fields beside ``type`` and ``user``).

    >>> silence_of({"type": "silence", "id": "s1", "matchers": ["service=carts"],
    ...             "starts_at": 0, "ends_at": 60, "user": "ana"}).created_by
    'ana'
    """
    fields = {k: v for k, v in data.items() if k not in ("type", "user")}
    if "user" in data and not fields.get("created_by"):
        fields["created_by"] = str(data["user"])
    return parse_silence(fields, source="control topic", index=0)
