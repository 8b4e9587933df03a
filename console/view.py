"""What the console shows, folded from the service's own topics; pure (no Kafka, no HTTP).

The console never decides anything about an incident: it reads the compacted
``aiops.incidents`` topic (every snapshot version), ``aiops.actions``, ``aiops.anomalies``
(for the evidence of each signal: values, bands, log templates and examples),
``aiops.series`` (recent points of the series with a recent anomaly, for charts) and
``aiops.control`` (for the silences operators created), and answers queries over them.
Any number of console processes that read the same topics show the same thing, and a
restarted one rebuilds its view by reading them again.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from detectors.anomaly import Anomaly
from rca.correlation import anomaly_labels
from rca.model import ActionStatus, Incident, RemediationAction
from rca.silences import Matcher, Silence, SilenceSet, silence_of

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


class ViewError(ValueError):
    """A record on a topic that the view cannot use (the reason says why)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: the items, how many matched in all, and the next offset."""

    items: tuple[Any, ...]
    total: int
    next_offset: int | None


@dataclass(frozen=True, slots=True)
class Change:
    """What a subscriber hears: an incident changed (its latest snapshot)."""

    incident: Incident


def summary(incident: Incident, *, now: float | None = None) -> dict[str, Any]:
    """The fields of an incident that a list shows, JSON-ready.

    >>> from rca.model import IncidentState, Severity
    >>> inc = Incident(id="i", version=2, state=IncidentState.UPDATED, title="t",
    ...                severity=Severity.WARNING, services=("a",), opened_at=0.0, updated_at=5.0)
    >>> summary(inc)["top_cause"] is None, summary(inc)["state"]
    (True, 'updated')
    """
    top = incident.root_causes[0] if incident.root_causes else None
    return {
        "id": incident.id,
        "version": incident.version,
        "state": str(incident.state),
        "severity": str(incident.severity),
        "title": incident.title,
        "services": list(incident.services),
        "opened_at": incident.opened_at,
        "updated_at": incident.updated_at,
        "resolved_at": incident.resolved_at,
        "acknowledged": incident.acknowledged,
        "acknowledged_by": incident.acknowledged_by,
        "silenced": incident.silenced,
        "predicted": incident.predicted,
        "pending_actions": sum(
            1 for a in incident.actions if a.status is ActionStatus.PENDING_APPROVAL
        ),
        "top_cause": None
        if top is None
        else {"service": top.service, "signal": top.signal, "explanation": top.explanation},
    }


def _order(incident: Incident) -> tuple[int, int, float, str]:
    """Open first, then most severe, then newest."""
    return (
        0 if incident.is_open else 1,
        _SEVERITY_ORDER.get(str(incident.severity), 3),
        -incident.opened_at,
        incident.id,
    )


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """The recent points of one series, as the worker last published them."""

    fingerprint: str
    label: str
    onset: float | None
    band: tuple[float, float] | None
    times: np.ndarray
    values: np.ndarray


class ConsoleView:
    """Incidents, their versions, actions, anomaly evidence and silences, as the topics say.

    Parameters
    ----------
    max_versions
        Snapshot versions kept per incident for its history (the oldest go first).
    max_incidents
        Incidents kept; beyond it, the resolved incidents updated longest ago go first.
    max_anomalies
        Anomaly records kept for evidence (the oldest go first).
    max_series
        Series windows kept for charts (the least recently updated go first).
    """

    def __init__(
        self,
        *,
        max_versions: int = 200,
        max_incidents: int = 100_000,
        max_anomalies: int = 50_000,
        max_series: int = 5_000,
        silences: Iterable[Silence] = (),
    ) -> None:
        self.max_versions = max_versions
        self.max_incidents = max_incidents
        self._versions: dict[str, deque[Incident]] = {}
        self._sorted: list[tuple[tuple[int, int, float, str], str]] | None = None
        self._actions: dict[str, RemediationAction] = {}
        self._anomalies: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._max_anomalies = max_anomalies
        self._series: OrderedDict[str, SeriesRecord] = OrderedDict()
        self._max_series = max_series
        self.silences = SilenceSet(silences)
        self.now = 0.0
        self._listeners: list[Callable[[Change], None]] = []
        self.skipped = 0

    # ---------------------------------------------------------------- feeding

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener`` on every incident change; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def apply_incident(self, value: bytes | None, key: bytes | None = None) -> Incident | None:
        """Fold one record of the incidents topic; an older or repeated version changes
        nothing, a tombstone (no value) forgets the incident. Returns the new snapshot."""
        if value is None:
            if key is not None:
                self._forget(key.decode(errors="replace"))
            return None
        try:
            incident = Incident.from_dict(orjson.loads(value))
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            self.skipped += 1
            raise ViewError(f"not an incident snapshot: {exc}") from exc
        versions = self._versions.get(incident.id)
        if versions is None:
            versions = self._versions[incident.id] = deque(maxlen=self.max_versions)
        elif versions and incident.version <= versions[-1].version:
            return None  # a redelivery or an older version
        versions.append(incident)
        self._trim_incidents()
        for action in incident.actions:
            self._actions[action.id] = action
        self.now = max(self.now, incident.updated_at)
        self._sorted = None
        for listener in list(self._listeners):
            listener(Change(incident))
        return incident

    def apply_action(self, value: bytes) -> RemediationAction:
        """Fold one record of the actions topic (the latest status of an action wins)."""
        try:
            action = RemediationAction.from_dict(orjson.loads(value))
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            self.skipped += 1
            raise ViewError(f"not an action record: {exc}") from exc
        self._actions[action.id] = action
        return action

    def apply_anomaly(self, value: bytes) -> None:
        """Keep the latest record of each signal (by fingerprint) as its evidence."""
        try:
            data = orjson.loads(value)
            fingerprint = str(data["fingerprint"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self.skipped += 1
            raise ViewError(f"not an anomaly record: {exc}") from exc
        self._anomalies.pop(fingerprint, None)
        self._anomalies[fingerprint] = data
        while len(self._anomalies) > self._max_anomalies:
            self._anomalies.popitem(last=False)

    def apply_series(self, value: bytes | None, key: bytes | None = None) -> None:
        """Keep the latest points of a series (a record of the series topic)."""
        if value is None:
            if key is not None:
                self._series.pop(key.decode(errors="replace"), None)
            return
        try:
            data = orjson.loads(value)
            record = SeriesRecord(
                fingerprint=str(data["fingerprint"]),
                label=str(data.get("label") or ""),
                onset=None if data.get("onset") is None else float(data["onset"]),
                band=None
                if not data.get("band")
                else (float(data["band"][0]), float(data["band"][1])),
                times=np.asarray(data["t"], dtype=np.float64),
                values=np.asarray(data["v"], dtype=np.float64),
            )
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            self.skipped += 1
            raise ViewError(f"not a series record: {exc}") from exc
        if len(record.times) == 0 or len(record.times) != len(record.values):
            self.skipped += 1
            raise ViewError("not a series record: no points, or times and values differ")
        self._series.pop(record.fingerprint, None)
        self._series[record.fingerprint] = record
        while len(self._series) > self._max_series:
            self._series.popitem(last=False)

    def series(self, fingerprint: str) -> SeriesRecord | None:
        """The latest points of a series with a recent anomaly, if the view has them."""
        return self._series.get(fingerprint)

    def apply_control(self, value: bytes, at: float) -> None:
        """Follow the silences created and expired on the control topic, as the engine does;
        other commands are the engine's business."""
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            self.skipped += 1
            raise ViewError(f"not a JSON command: {exc}") from exc
        if not isinstance(data, dict):
            return
        self.now = max(self.now, at)
        kind = data.get("type")
        if kind == "silence":
            try:
                self.silences.add(silence_of(data))
            except ValueError as exc:
                self.skipped += 1
                raise ViewError(str(exc)) from exc
        elif kind == "expire_silence":
            self.silences.expire(str(data.get("id")), at)
        elif kind == "silence_incident":
            incident = self.get(str(data.get("incident_id")))
            if incident is not None:
                duration = float(data.get("duration_s", 3600))
                regex = "|".join(_regex_escape(s) for s in incident.services)
                self.silences.add(
                    Silence(
                        id=f"incident-{incident.id}",
                        matchers=(Matcher.parse(f"service=~{regex}"),),
                        starts_at=at,
                        ends_at=at + duration,
                        created_by=str(data.get("user") or ""),
                        comment=str(data.get("comment") or "")
                        or f"silenced from incident {incident.id}",
                    )
                )

    # ---------------------------------------------------------------- queries

    def __len__(self) -> int:
        return len(self._versions)

    def get(self, incident_id: str) -> Incident | None:
        """The latest snapshot of an incident, or None."""
        versions = self._versions.get(incident_id)
        return versions[-1] if versions else None

    def history(self, incident_id: str) -> tuple[Incident, ...]:
        """Every kept version of an incident, oldest first (empty if unknown)."""
        return tuple(self._versions.get(incident_id, ()))

    def incidents(
        self,
        *,
        state: str | None = None,
        service: str | None = None,
        since: float | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page:
        """Incidents, open first, then by severity, newest first; ``state`` is ``open`` or
        ``resolved``; ``since`` keeps those updated at or after it."""
        matched = [i for i in self._in_order() if _keep(i, state, service, since)]
        items = tuple(matched[offset : offset + limit])
        more = offset + limit < len(matched)
        return Page(items, len(matched), offset + limit if more else None)

    def actions(self, *, state: str | None = None) -> tuple[RemediationAction, ...]:
        """Actions, newest first; ``state`` filters by status (``pending`` is awaiting
        approval)."""
        wanted = "pending_approval" if state == "pending" else state
        found = [a for a in self._actions.values() if wanted is None or str(a.status) == wanted]
        return tuple(sorted(found, key=lambda a: (-a.created_at, a.id)))

    def action(self, action_id: str) -> RemediationAction | None:
        """One action's latest known status."""
        return self._actions.get(action_id)

    def evidence(self, incident: Incident) -> list[dict[str, Any]]:
        """The latest anomaly record of each signal of the incident, in its order."""
        return [
            self._anomalies[ref.fingerprint]
            for ref in incident.anomalies
            if ref.fingerprint in self._anomalies
        ]

    def anomalies(
        self, *, service: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The latest record of each signal, newest first."""
        out: list[dict[str, Any]] = []
        for data in reversed(self._anomalies.values()):
            if service is not None and data.get("service") != service:
                continue
            if since is not None and float(data.get("timestamp") or 0) < since:
                continue
            out.append(data)
            if len(out) >= limit:
                break
        return out

    def silence_list(self) -> list[Silence]:
        """The silences, the active and future ones first, then the ended ones."""
        at = self.now
        return sorted(self.silences, key=lambda s: (s.ends_at <= at, -s.ends_at, s.id))

    def would_mute(self, matchers: Iterable[Matcher]) -> list[Incident]:
        """The open incidents that a silence with these matchers would mute now: as in the
        engine, those whose every signal it matches."""
        rules = tuple(matchers)
        return [
            incident
            for incident in self._in_order()
            if incident.is_open
            and all(all(m.matches(labels) for m in rules) for labels in self.label_sets(incident))
        ]

    def label_sets(self, incident: Incident) -> list[Mapping[str, str]]:
        """The label sets the engine matches silences against, one per signal: from the
        signal's anomaly record when the view has it, else from the incident's summary."""
        out: list[Mapping[str, str]] = []
        for ref in incident.anomalies:
            data = self._anomalies.get(ref.fingerprint)
            try:
                if data is not None:
                    out.append(anomaly_labels(Anomaly.from_dict(data)))
                    continue
            except (KeyError, ValueError, TypeError):
                pass
            out.append(
                {
                    "service": ref.service,
                    "signal": ref.signal,
                    "kind": ref.kind,
                    "direction": ref.direction,
                }
            )
        return out or [{"service": s} for s in incident.services]

    def latest(self) -> Iterator[Incident]:
        """Every incident's latest snapshot, in list order."""
        return iter(self._in_order())

    # --------------------------------------------------------------- internals

    def _in_order(self) -> list[Incident]:
        if self._sorted is None:
            self._sorted = sorted((_order(v[-1]), k) for k, v in self._versions.items() if v)
        return [self._versions[k][-1] for _, k in self._sorted]

    def _forget(self, incident_id: str) -> None:
        if self._versions.pop(incident_id, None) is not None:
            self._sorted = None

    def _trim_incidents(self) -> None:
        if len(self._versions) <= self.max_incidents:
            return
        resolved = sorted(
            (v[-1].updated_at, k) for k, v in self._versions.items() if v and not v[-1].is_open
        )
        drop = len(self._versions) - self.max_incidents
        for _, key in resolved[:drop]:
            del self._versions[key]
        self._sorted = None


def _keep(incident: Incident, state: str | None, service: str | None, since: float | None) -> bool:
    if state == "open" and not incident.is_open:
        return False
    if state == "resolved" and incident.is_open:
        return False
    if service is not None and service not in incident.services:
        return False
    return since is None or incident.updated_at >= since


def _regex_escape(text: str) -> str:
    return re.escape(text)
