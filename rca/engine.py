"""The incident engine: correlation, lifecycle, ranking, remediation and silences, pure.

The streaming layer calls :meth:`IncidentEngine.on_anomaly` for every anomaly,
:meth:`IncidentEngine.on_metric` for raw metric samples (optional, for BARO-style
ranking), and :meth:`IncidentEngine.tick` every second. Each returns an :class:`Outcome`:
the incident snapshots to publish on ``aiops.incidents`` (keyed by ``incident.id``) and
the action records to publish on ``aiops.actions``. Time is event time throughout, so a
replay gives the same incidents, ids and versions.

>>> from detectors.anomaly import Direction, SignalKind
>>> engine = IncidentEngine()
>>> cpu = Anomaly("carts", "cpu", SignalKind.METRIC, 100.0, 95.0, 0.99,
...               Direction.SPIKE, "robust", details={"z": 40.0})
>>> lat = Anomaly("front-end", "latency_p99", SignalKind.METRIC, 104.0, 2.5, 0.97,
...               Direction.SPIKE, "robust", details={"z": 12.0})
>>> inc = engine.on_anomaly(cpu).incidents[0]
>>> inc.state.value, inc.version, inc.title
('opened', 1, 'carts: cpu anomaly (1 signal)')
>>> inc = engine.on_anomaly(lat).incidents[0]
>>> inc.state.value, inc.version, [c.service for c in inc.root_causes]
('updated', 2, ['carts', 'front-end'])
>>> engine.tick(104.0 + 600.0).incidents[0].state.value
'resolved'
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from detectors.anomaly import Anomaly, SignalKind
from detectors.events import MetricEvent
from rca import operations
from rca.baseline import MetricHistory
from rca.config import RcaConfig, span
from rca.confirmation import ConfirmationGate, series_key_of
from rca.correlation import (
    Correlator,
    TrackedIncident,
    alert_phase,
    incident_id_for,
    is_prediction,
)
from rca.exceptions import StateError, UnknownActionError, UnknownIncidentError
from rca.model import (
    ActionStatus,
    Incident,
    IncidentState,
    RemediationAction,
    RootCauseCandidate,
    Severity,
    TimelineEvent,
    TimelineKind,
)
from rca.ranking import IncidentEvidence, RootCauseRanker
from rca.remediation import RemediationPlanner, RemediationRule
from rca.silences import Matcher, MatchOp, Silence, SilenceSet
from rca.topology import CoOccurrence, Topology

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """What changed: incident snapshots and action records to publish, in order."""

    incidents: tuple[Incident, ...] = ()
    actions: tuple[RemediationAction, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.incidents or self.actions)

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(self.incidents + other.incidents, self.actions + other.actions)


class IncidentEngine:
    """Turns anomalies into incidents, root causes and remediation actions.

    Parameters
    ----------
    config
        All settings (:class:`~rca.config.RcaConfig`).
    topology
        Service dependency graph (:func:`~rca.topology.load_topology`); without one,
        co-occurrence is learned.
    rules
        Remediation rules (:func:`~rca.remediation.load_remediation_rules`).
    silences
        Silences from configuration (:func:`~rca.silences.load_silences`).
    """

    def __init__(
        self,
        *,
        config: RcaConfig | None = None,
        topology: Topology | None = None,
        rules: Sequence[RemediationRule] = (),
        silences: Iterable[Silence] = (),
    ) -> None:
        self.config = config or RcaConfig()
        cc = self.config.correlation
        self.topology = topology
        self.cooccurrence = CoOccurrence(
            min_support=cc.min_support, min_cooccurrence=cc.min_cooccurrence
        )
        self.correlator = Correlator(
            cc, topology, self.cooccurrence if cc.learn_cooccurrence else None
        )
        self.ranker = RootCauseRanker(self.config.ranking, topology)
        self.planner = RemediationPlanner(self.config.remediation, rules)
        self.silences = SilenceSet(silences, max_silences=self.config.silences.max_silences)
        self.history = MetricHistory(
            self.config.ranking.baseline_samples, max_series=self.config.ranking.max_series
        )
        self.gate = ConfirmationGate(cc, self.config.ranking)
        self._candidates: list[Anomaly] = []
        self._open: dict[str, TrackedIncident] = {}
        self._resolved: OrderedDict[str, TrackedIncident] = OrderedDict()
        self._action_owner: dict[str, str] = {}
        self.now = float("-inf")

    # ------------------------------------------------------------------ inputs

    def on_anomaly(self, anomaly: Anomaly) -> Outcome:
        """Fold one anomaly into its open incident, or hold it until it is confirmed and
        corroborated (see :class:`~rca.config.CorrelationConfig`), then open or reopen one."""
        self.now = max(self.now, anomaly.timestamp)
        if is_prediction(anomaly) and anomaly.details.get("phase") == "withdrawn":
            return self._withdraw(anomaly)
        if alert_phase(anomaly) == "resolved":
            return self._end_alert(anomaly)
        tracked = self.correlator.match(anomaly, self._open.values())
        if tracked is not None:
            return self._fold(tracked, anomaly)
        item = self.gate.add(anomaly, self.history)
        if item is None:
            return Outcome()
        return self._consider([item.anomaly], at=anomaly.timestamp)

    def on_metric(self, event: MetricEvent) -> None:
        """Remember a raw sample (bounded ring per series) and update open incidents'
        peak deviations; needed only for BARO-style magnitude ranking."""
        sid = self.history.add(event)
        self.gate.observe(sid.key, event.timestamp, event.value)
        cc = self.config.correlation
        for tracked in self._open.values():
            evidence = tracked.evidence
            if evidence is None:
                continue
            spread = span(cc.spread_s, cc.spread_samples, tracked.interval)
            if event.timestamp > evidence.onset + spread and sid.service not in tracked.services:
                # past the spread a service that is not part of the incident cannot join
                # it, and what its series does then is another problem's evidence
                continue
            if sid.key not in evidence.tried and event.timestamp >= evidence.onset:
                # the first sample past the onset: every earlier sample of this series is in
                # (one series comes in order), so its baseline can be frozen now if the
                # incident opened before this series' partition had caught up
                evidence.freeze_one(sid, self.history.rings[sid.key], self.config.ranking)
            evidence.observe(sid.key, event.timestamp, event.value)

    def tick(self, now: float) -> Outcome:
        """Time-based work at event time ``now``: resolve quiet incidents, re-rank open
        ones, follow silences that start or end, forget old state."""
        self.now = max(self.now, now)
        out = self._consider([p.anomaly for p in self.gate.due(now)], at=now)
        cc = self.config.correlation
        for tracked in list(self._open.values()):
            # a firing alert says itself when it stops (see _end_alert)
            quiet = span(cc.quiet_period_s, cc.quiet_samples, tracked.interval)
            if now - tracked.active_at >= quiet and not tracked.alerts:
                # Detectors report an episode once: a series that still deviates means the
                # problem goes on, so quiet counts from the last time it was off baseline.
                off_at = self._last_off_baseline(tracked, now, quiet)
                if off_at is not None and now - off_at < quiet:
                    tracked.held_at = off_at
                else:
                    out += self._resolve(tracked, now, f"quiet for {quiet:.0f}s")
                    continue
            rerank_due = now - tracked.last_rank_at >= self.config.ranking.rerank_interval_s
            silenced_changed = self._silence_state(tracked, now) != tracked.incident.silenced
            if rerank_due or silenced_changed:
                out += self._publish(tracked, at=now, events=[], rerank=rerank_due, quiet=True)
        self._forget(now)
        return out

    def _last_off_baseline(
        self, tracked: TrackedIncident, now: float, quiet: float
    ) -> float | None:
        """Latest time within the quiet period at which a metric series of the incident
        still deviated from its pre-onset baseline: ``confirm_fraction`` of its samples in
        the minute (or ``confirm_s``) before were ``confirm_z`` robust sigma off."""
        evidence = tracked.evidence
        if evidence is None:
            return None
        cc = self.config.correlation
        signals = {(r.service, r.signal) for r in tracked.refs.values() if r.kind == "metric"}
        window = max(cc.confirm_s, 60.0)
        latest: float | None = None
        for key, sid in evidence.ids.items():
            ring = self.history.rings.get(key)
            if ring is None or (sid.service, sid.metric) not in signals:
                continue
            times, values = ring.samples_between(now - quiet, math.inf)
            if not len(times):
                continue
            base = evidence.baselines[key]
            off = np.abs(values - base.median) / base.spread >= cc.confirm_z
            counts = np.concatenate(([0], np.cumsum(off)))
            first = np.searchsorted(times, times - window, side="left")
            idx = np.arange(len(times))
            share = (counts[idx + 1] - counts[first]) / (idx + 1 - first)
            hits = times[off & (share >= cc.confirm_fraction)]
            if len(hits) and (latest is None or hits[-1] > latest):
                latest = float(hits[-1])
        return latest

    # ------------------------------------------------------------ operations

    def add_silence(self, silence: Silence, *, at: float | None = None) -> Outcome:
        """Add (or replace) a silence, e.g. from the control topic; re-checks open incidents."""
        self.silences.add(silence)
        return self._recheck_silences(self._at(at))

    def expire_silence(self, silence_id: str, *, at: float | None = None) -> Outcome:
        """End a silence now; re-checks open incidents."""
        at = self._at(at)
        if not self.silences.expire(silence_id, at):
            return Outcome()
        return self._recheck_silences(at)

    def silence_incident(
        self,
        incident_id: str,
        *,
        until: float,
        user: str,
        at: float | None = None,
        comment: str = "",
    ) -> Outcome:
        """Silence an incident's services until ``until`` (a silence is created for them)."""
        at = self._at(at)
        tracked = self._get(incident_id)
        services = sorted(tracked.services)
        regex = "|".join(_escape(s) for s in services)
        self.silences.add(
            Silence(
                id=f"incident-{incident_id}",
                matchers=(Matcher("service", MatchOp.RE, regex),),
                starts_at=at,
                ends_at=until,
                created_by=user,
                comment=comment or f"silenced from incident {incident_id}",
            )
        )
        return self._recheck_silences(at)

    def acknowledge(self, incident_id: str, user: str, *, at: float | None = None) -> Outcome:
        """Record that ``user`` took the incident."""
        tracked = self._get(incident_id)
        tracked.incident = operations.acknowledge(tracked.incident, user=user, at=self._at(at))
        return Outcome(incidents=(tracked.incident,))

    def resolve(self, incident_id: str, user: str, *, at: float | None = None) -> Outcome:
        """Resolve an open incident by hand (a person says it is over); pending approvals
        are cancelled as on a quiet resolution. A resolved incident is left as it is."""
        tracked = self._get(incident_id)
        if not tracked.incident.is_open:
            return Outcome()
        return self._resolve(tracked, self._at(at), f"resolved by {user}")

    def approve(self, action_id: str, user: str, *, at: float | None = None) -> Outcome:
        """Approve a pending action; it is dispatched if the guardrails allow."""
        return self._decide(action_id, user, approve=True, at=self._at(at))

    def reject(self, action_id: str, user: str, *, at: float | None = None) -> Outcome:
        """Reject a pending action."""
        return self._decide(action_id, user, approve=False, at=self._at(at))

    # ---------------------------------------------------------------- queries

    @property
    def open_incidents(self) -> tuple[Incident, ...]:
        """Current snapshots of the open incidents, oldest first."""
        return tuple(t.incident for t in self._open.values())

    def get(self, incident_id: str) -> Incident:
        """Current snapshot of an incident (open or recently resolved)."""
        return self._get(incident_id).incident

    @property
    def memory_bytes(self) -> int:
        """Approximate memory of the raw-metric rings (the bulk of the state)."""
        return self.history.nbytes

    # ------------------------------------------------------------- persistence

    def dump_state(self, *, include_history: bool = True) -> bytes:
        """Everything needed to carry on after a restart, as JSON bytes.

        The metric rings are most of the size (about 2 kB per series with the defaults);
        with ``include_history=False`` they are left out and refill from the live stream
        after a restart (ranking falls back to detector-reported deviations meanwhile).
        """
        return orjson.dumps(
            {
                "state_version": STATE_VERSION,
                "now": None if self.now == float("-inf") else self.now,
                "open": [t.to_dict() for t in self._open.values()],
                "resolved": [t.to_dict() for t in self._resolved.values()],
                "silences": [s.to_dict() for s in self.silences],
                "planner": self.planner.to_dict(),
                "cooccurrence": self.cooccurrence.to_dict(),
                "history": self.history.to_dict() if include_history else {},
                "pending": self.gate.to_dict(),
                "candidates": [a.to_dict() for a in self._candidates],
            }
        )

    @classmethod
    def load_state(
        cls,
        data: bytes,
        *,
        config: RcaConfig | None = None,
        topology: Topology | None = None,
        rules: Sequence[RemediationRule] = (),
        silences: Iterable[Silence] = (),
    ) -> IncidentEngine:
        """An engine restored from :meth:`dump_state`; ``silences`` from configuration
        replace stored ones with the same id."""
        engine = cls(config=config, topology=topology, rules=rules)
        try:
            state = orjson.loads(data)
            if state.get("state_version") != STATE_VERSION:
                raise StateError(f"unsupported state version {state.get('state_version')!r}")
            engine.now = float("-inf") if state.get("now") is None else float(state["now"])
            for item in state.get("open", []):
                tracked = TrackedIncident.from_dict(item)
                engine._open[tracked.incident.id] = tracked
            for item in state.get("resolved", []):
                tracked = TrackedIncident.from_dict(item)
                engine._resolved[tracked.incident.id] = tracked
            for item in state.get("silences", []):
                engine.silences.add(Silence.from_dict(item))
            engine.planner.load(state.get("planner", {}))
            engine.cooccurrence.load(state.get("cooccurrence", {}))
            engine.history.load(state.get("history", {}))
            engine.gate.load(state.get("pending", []))
            engine._candidates = [Anomaly.from_dict(a) for a in state.get("candidates", [])]
        except StateError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(f"cannot load engine state: {exc}") from exc
        for silence in silences:
            engine.silences.add(silence)
        for tracked in [*engine._open.values(), *engine._resolved.values()]:
            for action in tracked.incident.actions:
                engine._action_owner[action.id] = tracked.incident.id
        return engine

    # --------------------------------------------------------------- internals

    def _at(self, at: float | None) -> float:
        if at is not None:
            return at
        return self.now if math.isfinite(self.now) else 0.0

    def _get(self, incident_id: str) -> TrackedIncident:
        tracked = self._open.get(incident_id) or self._resolved.get(incident_id)
        if tracked is None:
            raise UnknownIncidentError(f"unknown incident {incident_id}")
        return tracked

    def _open_new(self, anomaly: Anomaly) -> TrackedIncident:
        incident = Incident(
            id=incident_id_for(anomaly),
            version=0,
            state=IncidentState.OPENED,
            severity=Severity.WARNING,
            title="",
            services=(anomaly.service,),
            opened_at=anomaly.timestamp,
            updated_at=anomaly.timestamp,
        )
        tracked = TrackedIncident(incident=incident, last_anomaly_at=anomaly.timestamp)
        self._fold_into(tracked, anomaly)
        if self.history.rings:
            evidence = IncidentEvidence(onset=anomaly.timestamp)
            evidence.freeze(self.history, self.config.ranking)
            tracked.evidence = evidence
        self._open[incident.id] = tracked
        return tracked

    def _fold(self, tracked: TrackedIncident, anomaly: Anomaly) -> Outcome:
        unlisted = tracked.unlisted
        if not self._fold_into(tracked, anomaly):
            return Outcome()
        if tracked.unlisted > unlisted:  # past max_signals: counted in the next snapshot
            return Outcome()
        phase = anomaly.details.get("phase") if anomaly.details else None
        kind = TimelineKind.ESCALATED if phase == "escalation" else TimelineKind.ANOMALY
        self._note_prediction(tracked, anomaly)
        event = TimelineEvent(kind, anomaly.timestamp, _describe(anomaly))
        return self._publish(tracked, at=anomaly.timestamp, events=[event], rerank=True)

    def _note_prediction(self, tracked: TrackedIncident, anomaly: Anomaly) -> None:
        """Remember what stays in force after its record: a forecast's crossing time, a
        firing alert."""
        if is_prediction(anomaly):
            crossing = anomaly.details.get("crossing_time")
            if isinstance(crossing, int | float):
                tracked.predictions[anomaly.fingerprint] = float(crossing)
        elif alert_phase(anomaly) == "firing":
            tracked.alerts[anomaly.fingerprint] = anomaly.timestamp

    def _consider(self, confirmed: list[Anomaly], *, at: float) -> Outcome:
        """Route confirmed anomalies: join an open incident, reopen a resolved one, or
        wait for corroboration; then open incidents for corroborated groups."""
        out = Outcome()
        for anomaly in confirmed:
            tracked = self.correlator.match(anomaly, self._open.values())
            if tracked is not None:
                out += self._fold(tracked, anomaly)
                continue
            tracked = self.correlator.match_resolved(anomaly, self._resolved.values())
            if tracked is not None:
                out += self._reopen(tracked, anomaly, at=at)
                continue
            self._candidates.append(anomaly)
        self._candidates = [a for a in self._candidates if at - a.timestamp <= self._lifetime(a)]
        while (group := self._find_group()) is not None:
            out += self._open_group(group, at=at)
        return out + self._enforce_open_limit()

    def _lifetime(self, anomaly: Anomaly) -> float:
        """How long after its onset an anomaly may still open or join a group: the
        corroboration and confirmation time, and ``arrival_samples`` intervals of its series
        (an onset record comes a few samples after the onset)."""
        cc = self.config.correlation
        interval = self._interval(anomaly)
        return (
            cc.corroboration_s
            + self.gate.window(interval)
            + max(1.0, cc.arrival_samples * interval)
        )

    def _interval(self, anomaly: Anomaly) -> float:
        """Sampling interval of a metric anomaly's series (0 if unknown)."""
        if anomaly.kind is not SignalKind.METRIC:
            return 0.0
        ring = self.history.rings.get(series_key_of(anomaly))
        return ring.interval() if ring is not None else 0.0

    def _fold_into(self, tracked: TrackedIncident, anomaly: Anomaly) -> bool:
        """Fold an anomaly into an incident, which takes on its series' interval."""
        if not tracked.fold(anomaly, self.config.correlation.max_signals):
            return False
        tracked.interval = max(tracked.interval, self._interval(anomaly))
        return True

    def _find_group(self) -> list[Anomaly] | None:
        cc = self.config.correlation
        ordered = sorted(self._candidates, key=lambda a: (a.timestamp, a.anomaly_id))
        for i, seed in enumerate(ordered):
            members = [seed]
            for other in ordered[i + 1 :]:
                if other.timestamp - seed.timestamp > cc.corroboration_s:
                    break
                if self.correlator.distance(other.service, {m.service for m in members}) is None:
                    continue
                members.append(other)
            signals = {m.fingerprint for m in members}
            if len(signals) >= cc.min_signals or any(is_prediction(m) for m in members):
                ids = {id(m) for m in members}
                self._candidates = [a for a in self._candidates if id(a) not in ids]
                return members
        return None

    def _open_group(self, group: list[Anomaly], *, at: float) -> Outcome:
        first, rest = group[0], group[1:]
        tracked = self._open_new(first)
        self._note_prediction(tracked, first)
        events = [TimelineEvent(TimelineKind.OPENED, first.timestamp, _describe(first))]
        for anomaly in rest:
            if self._fold_into(tracked, anomaly):
                self._note_prediction(tracked, anomaly)
                events.append(
                    TimelineEvent(TimelineKind.ANOMALY, anomaly.timestamp, _describe(anomaly))
                )
        return self._publish(tracked, at=max(at, first.timestamp), events=events, rerank=True)

    def _reopen(self, tracked: TrackedIncident, anomaly: Anomaly, *, at: float) -> Outcome:
        del self._resolved[tracked.incident.id]
        self._open[tracked.incident.id] = tracked
        self._fold_into(tracked, anomaly)
        self._note_prediction(tracked, anomaly)
        event = TimelineEvent(
            TimelineKind.REOPENED, anomaly.timestamp, f"reopened: {_describe(anomaly)}"
        )
        return self._publish(
            tracked,
            at=max(at, anomaly.timestamp),
            events=[event],
            rerank=True,
            state=IncidentState.UPDATED,
            resolved_at=None,
            reopened=tracked.incident.reopened + 1,
        )

    def _withdraw(self, anomaly: Anomaly) -> Outcome:
        fp = anomaly.fingerprint
        for tracked in self._open.values():
            if fp not in tracked.predictions:
                continue
            del tracked.predictions[fp]
            text = f"forecast for {anomaly.service} {anomaly.signal} withdrawn"
            only_forecasts = all(r.kind == str(SignalKind.PREDICTED) for r in tracked.refs.values())
            if only_forecasts and not tracked.predictions:
                return self._resolve(tracked, anomaly.timestamp, text)
            event = TimelineEvent(TimelineKind.ANOMALY, anomaly.timestamp, text)
            return self._publish(tracked, at=anomaly.timestamp, events=[event], rerank=False)
        return Outcome()

    def _end_alert(self, anomaly: Anomaly) -> Outcome:
        """A firing alert stopped: it no longer holds its incident open. The incident
        resolves now if nothing else of it happened within the quiet period; otherwise
        the end goes on its timeline and the quiet period decides. The record is not
        evidence: it neither opens nor reopens an incident."""
        fp = anomaly.fingerprint
        emitted = anomaly.details.get("emitted_at")
        at = anomaly.timestamp  # the onset; the record says when the alert stopped
        if isinstance(emitted, int | float) and math.isfinite(emitted):
            at = max(at, float(emitted))
        self.now = max(self.now, at)
        self._candidates = [a for a in self._candidates if a.fingerprint != fp]
        for tracked in self._open.values():
            if tracked.alerts.pop(fp, None) is None:
                continue
            text = f"{anomaly.service} {anomaly.signal} stopped firing"
            cc = self.config.correlation
            quiet = span(cc.quiet_period_s, cc.quiet_samples, tracked.interval)
            if at - tracked.active_at >= quiet and not tracked.alerts:
                return self._resolve(tracked, at, text)
            event = TimelineEvent(TimelineKind.ANOMALY, at, text)
            return self._publish(tracked, at=at, events=[event], rerank=False)
        return Outcome()

    def _resolve(self, tracked: TrackedIncident, at: float, why: str) -> Outcome:
        incident = tracked.incident
        actions = []
        for action in incident.actions:
            if action.status is ActionStatus.PENDING_APPROVAL:
                actions.append(dataclasses.replace(action, status=ActionStatus.CANCELLED))
        all_actions = incident.actions
        for action in actions:
            all_actions = operations.replace_action(all_actions, action)
        tracked.incident = dataclasses.replace(
            incident,
            version=incident.version + 1,
            state=IncidentState.RESOLVED,
            updated_at=at,
            resolved_at=at,
            actions=all_actions,
            time_left=None,
            timeline=(*incident.timeline, TimelineEvent(TimelineKind.RESOLVED, at, why)),
        )
        del self._open[incident.id]
        self._resolved[incident.id] = tracked
        self.cooccurrence.observe(tracked.services)
        return Outcome(incidents=(tracked.incident,), actions=tuple(actions))

    def _enforce_open_limit(self) -> Outcome:
        out = Outcome()
        while len(self._open) > self.config.correlation.max_open_incidents:
            oldest = min(self._open.values(), key=lambda t: t.active_at)
            out += self._resolve(oldest, self._at(None), "too many open incidents")
        return out

    def _forget(self, now: float) -> None:
        keep_s = self.config.correlation.reopen_window_s
        for tracked in list(self._resolved.values()):
            resolved_at = tracked.incident.resolved_at or now
            if now - resolved_at > keep_s:
                tracked.evidence = None
        while len(self._resolved) > self.config.correlation.max_resolved_kept:
            _, dropped = self._resolved.popitem(last=False)
            for action in dropped.incident.actions:
                self._action_owner.pop(action.id, None)
        self.silences.prune(now, self.config.silences.keep_expired_s)

    def _silence_state(self, tracked: TrackedIncident, at: float) -> bool:
        if not tracked.labels:
            return False
        return all(
            self.silences.muting(labels, at) is not None for labels in tracked.labels.values()
        )

    def _recheck_silences(self, at: float) -> Outcome:
        out = Outcome()
        for tracked in list(self._open.values()):
            if self._silence_state(tracked, at) != tracked.incident.silenced:
                out += self._publish(tracked, at=at, events=[], rerank=False)
        return out

    def _decide(self, action_id: str, user: str, *, approve: bool, at: float) -> Outcome:
        incident_id = self._action_owner.get(action_id)
        if incident_id is None:
            raise UnknownActionError(f"unknown action {action_id}")
        tracked = self._get(incident_id)
        incident, action = operations.decide_action(
            tracked.incident, action_id, approve=approve, user=user, at=at
        )
        if approve:
            if incident.silenced:
                action = dataclasses.replace(
                    action,
                    status=ActionStatus.SUPPRESSED,
                    reason=f"{action.reason}; incident silenced",
                )
            else:
                action = self.planner.dispatch(action, at=at)
            incident = dataclasses.replace(
                incident, actions=operations.replace_action(incident.actions, action)
            )
        tracked.incident = incident
        return Outcome(incidents=(incident,), actions=(action,))

    def _rank(self, tracked: TrackedIncident, at: float) -> tuple[RootCauseCandidate, ...]:
        tracked.last_rank_at = at
        return self.ranker.rank(signals=tracked.signals(), evidence=tracked.evidence)

    def _severity(self, tracked: TrackedIncident, predicted: bool) -> Severity:
        cc = self.config.correlation
        if predicted:
            return cc.predicted_severity
        refs = [r for r in tracked.refs.values() if r.kind != str(SignalKind.PREDICTED)]
        if all(r.kind == str(SignalKind.LOG) for r in refs) and not any(
            r.signal == "log:errors" for r in refs
        ):
            return Severity.INFO
        if any(r.kind == str(SignalKind.ALERT) and r.peak_score >= 1.0 for r in refs):
            return Severity.CRITICAL  # a critical alert of another tool
        peak_z = max((r.peak_z or 0.0 for r in refs), default=0.0)
        if tracked.evidence is not None:
            services = tracked.services
            peaks = tracked.evidence.service_peaks()
            peak_z = max([peak_z, *(p[0] for s, p in peaks.items() if s in services)])
        if peak_z >= cc.critical_z or len(tracked.services) >= cc.critical_services:
            return Severity.CRITICAL
        return Severity.WARNING

    def _publish(
        self,
        tracked: TrackedIncident,
        *,
        at: float,
        events: list[TimelineEvent],
        rerank: bool,
        quiet: bool = False,
        **changes: Any,
    ) -> Outcome:
        """Recompute the derived fields; publish a new version if anything changed (a
        ``quiet`` refresh publishes only when root causes, severity or silencing change)."""
        old = tracked.incident
        root_causes = self._rank(tracked, at) if rerank else old.root_causes
        refs = sorted(tracked.refs.values(), key=lambda r: (r.first_seen, r.fingerprint))
        predicted = all(r.kind == str(SignalKind.PREDICTED) for r in refs)
        time_left = None
        if tracked.predictions:
            time_left = max(0.0, min(tracked.predictions.values()) - at)
        severity = self._severity(tracked, predicted)
        silenced = self._silence_state(tracked, at)
        timeline = list(events)
        if [(c.service, c.signal) for c in root_causes[:1]] != [
            (c.service, c.signal) for c in old.root_causes[:1]
        ] and root_causes:
            top = root_causes[0]
            timeline.append(
                TimelineEvent(
                    TimelineKind.RANKING,
                    at,
                    f"top root cause: {top.service} {top.signal} ({top.explanation})",
                )
            )
        if old.version and severity is not old.severity:
            timeline.append(
                TimelineEvent(TimelineKind.SEVERITY, at, f"severity {old.severity} -> {severity}")
            )
        if old.version and silenced != old.silenced:
            timeline.append(
                TimelineEvent(
                    TimelineKind.SILENCED, at, "silenced" if silenced else "no longer silenced"
                )
            )
        if (
            quiet
            and not timeline
            and _same_ranking(root_causes, old.root_causes)
            and not self.planner.has_new(old, at=at)  # e.g. the settle time just ended
        ):
            return Outcome()
        silence = None
        if silenced:
            silence = max(
                (
                    s
                    for labels in tracked.labels.values()
                    if (s := self.silences.muting(labels, at)) is not None
                ),
                key=lambda s: s.ends_at,
            )
        state = changes.pop(
            "state", IncidentState.OPENED if not old.version else IncidentState.UPDATED
        )
        incident = dataclasses.replace(
            old,
            version=old.version + 1,
            state=state,
            severity=severity,
            title=_title(root_causes, tracked),
            services=tuple(sorted(tracked.services)),
            updated_at=max(old.updated_at, at),
            anomalies=tuple(refs),
            anomaly_count=sum(r.count for r in refs) + tracked.unlisted,
            root_causes=root_causes,
            predicted=predicted,
            time_left=time_left,
            silenced=silenced,
            silenced_until=silence.ends_at if silence else None,
            silenced_by=(silence.created_by or silence.id) if silence else None,
            timeline=(*old.timeline, *timeline),
            **changes,
        )
        new_actions = self.planner.plan(incident, at=at)
        if new_actions:
            incident = dataclasses.replace(
                incident,
                actions=(*incident.actions, *new_actions),
                timeline=(
                    *incident.timeline,
                    *(
                        TimelineEvent(TimelineKind.ACTION, at, f"{a.action} {a.target}: {a.status}")
                        for a in new_actions
                    ),
                ),
            )
            for action in new_actions:
                self._action_owner[action.id] = incident.id
        tracked.incident = incident
        return Outcome(incidents=(incident,), actions=tuple(new_actions))


def _same_ranking(a: tuple[RootCauseCandidate, ...], b: tuple[RootCauseCandidate, ...]) -> bool:
    return [(c.service, c.signal) for c in a] == [(c.service, c.signal) for c in b]


def _title(root_causes: tuple[RootCauseCandidate, ...], tracked: TrackedIncident) -> str:
    services = tracked.services
    if root_causes:
        head = f"{root_causes[0].service}: {root_causes[0].kind} anomaly"
        others = len(services - {root_causes[0].service})
    else:
        first = min(tracked.refs.values(), key=lambda r: r.first_seen)
        head = f"{first.service}: {first.signal} anomaly"
        others = len(services - {first.service})
    signals = len(tracked.refs)
    if others:
        return f"{head} ({signals} signals in {others + 1} services)"
    return f"{head} ({signals} signal{'s' if signals > 1 else ''})"


def _describe(anomaly: Anomaly) -> str:
    if anomaly.kind is SignalKind.ALERT:
        details = anomaly.details or {}
        summary = f": {details['summary']}" if details.get("summary") else ""
        return (
            f"{anomaly.service} alert {details.get('alert', anomaly.signal)} "
            f"{details.get('phase', 'firing')} ({details.get('severity', 'warning')}, "
            f"{details.get('source', anomaly.detector)}){summary}"
        )
    z = anomaly.details.get("z") if anomaly.details else None
    extra = f", z={float(z):.1f}" if isinstance(z, int | float) else ""
    return (
        f"{anomaly.service} {anomaly.signal} {anomaly.direction} "
        f"(score {anomaly.score:.2f}{extra}, {anomaly.detector})"
    )


def _escape(text: str) -> str:
    return re.escape(text)
