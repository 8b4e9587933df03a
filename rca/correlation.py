"""Correlation: which incident an anomaly belongs to, and the evidence each incident keeps.

An anomaly joins an open incident when it comes within ``window_s`` of the incident's
latest anomaly and is *related* to it: same signal (fingerprint), same service, services
at most ``max_hops`` apart in the topology, or (without a topology, or for services it
does not know) services that learned co-occurrence does not tell apart. Otherwise a
recently resolved incident with the same signal or service reopens (flap protection), or
a new incident opens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly import Anomaly, SignalKind
from rca.config import CorrelationConfig, span
from rca.model import AnomalyRef, Incident
from rca.ranking import IncidentEvidence, ServiceSignals, service_signals
from rca.topology import CoOccurrence, Topology

_MAX_SEEN = 2000


def incident_id_for(anomaly: Anomaly) -> str:
    """Deterministic incident id from the anomaly that opened it.

    >>> from detectors.anomaly import Direction
    >>> a = Anomaly("carts", "cpu", SignalKind.METRIC, 100.0, 9.0, 0.99, Direction.SPIKE, "d")
    >>> incident_id_for(a) == incident_id_for(a), incident_id_for(a)[:4]
    (True, 'inc-')
    """
    digest = hashlib.blake2b(anomaly.anomaly_id.encode(), digest_size=8).hexdigest()
    return f"inc-{digest}"


def anomaly_labels(anomaly: Anomaly) -> dict[str, str]:
    """The label set silences are matched against."""
    labels = dict(anomaly.labels)
    labels.update(
        service=anomaly.service,
        signal=anomaly.signal,
        kind=str(anomaly.kind),
        direction=str(anomaly.direction),
    )
    if anomaly.host:
        labels["host"] = anomaly.host
    return labels


def anomaly_z(anomaly: Anomaly) -> float | None:
    """Robust deviation reported by the detector (``details["z"]``), if any."""
    z = anomaly.details.get("z") if anomaly.details else None
    try:
        return None if z is None else abs(float(z))
    except (TypeError, ValueError):
        return None


@dataclass
class TrackedIncident:
    """The engine's working state of one incident (the published part is ``incident``)."""

    incident: Incident
    last_anomaly_at: float
    refs: dict[str, AnomalyRef] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    predictions: dict[str, float] = field(default_factory=dict)
    alerts: dict[str, float] = field(default_factory=dict)  # firing, fingerprint -> onset
    seen: set[str] = field(default_factory=set)
    evidence: IncidentEvidence | None = None
    last_rank_at: float = float("-inf")
    held_at: float = float("-inf")
    """Latest time one of its series was seen off its baseline (holds it open)."""
    unlisted: int = 0
    """Records of signals beyond the incident's ``max_signals``: counted, not kept."""
    interval: float = 0.0
    """Sampling interval of its slowest metric series (0 if unknown)."""

    @property
    def active_at(self) -> float:
        """Latest sign of the problem: an anomaly record, or a series off its baseline."""
        return max(self.last_anomaly_at, self.held_at)

    @property
    def services(self) -> set[str]:
        """Services with anomalies in the incident."""
        return {ref.service for ref in self.refs.values()}

    def signals(self) -> dict[str, ServiceSignals]:
        """Per-service summary of the anomaly records, for the ranker."""
        return service_signals(
            (r.service, r.signal, r.kind, r.first_seen, r.peak_score, r.peak_z)
            for r in self.refs.values()
        )

    def fold(self, anomaly: Anomaly, max_signals: int | None = None) -> bool:
        """Add an anomaly record; False if this exact record was already folded in. A new
        signal beyond ``max_signals`` is only counted (:attr:`unlisted`)."""
        z = anomaly_z(anomaly)
        phase = anomaly.details.get("phase", "") if anomaly.details else ""
        token = f"{anomaly.anomaly_id}/{phase}/{z}"
        if token in self.seen:
            return False
        if len(self.seen) < _MAX_SEEN:
            self.seen.add(token)
        fp = anomaly.fingerprint
        ref = self.refs.get(fp)
        if ref is None and max_signals is not None and len(self.refs) >= max_signals:
            self.unlisted += 1
            self.last_anomaly_at = max(self.last_anomaly_at, anomaly.timestamp)
            return True
        if ref is None:
            self.refs[fp] = AnomalyRef(
                fingerprint=fp,
                service=anomaly.service,
                signal=anomaly.signal,
                kind=str(anomaly.kind),
                first_seen=anomaly.timestamp,
                last_seen=anomaly.timestamp,
                count=1,
                peak_score=anomaly.score,
                peak_z=z,
                direction=str(anomaly.direction),
            )
            self.labels[fp] = anomaly_labels(anomaly)
        else:
            peak_z = ref.peak_z if z is None else max(z, ref.peak_z or 0.0)
            self.refs[fp] = AnomalyRef(
                fingerprint=fp,
                service=ref.service,
                signal=ref.signal,
                kind=ref.kind,
                first_seen=min(ref.first_seen, anomaly.timestamp),
                last_seen=max(ref.last_seen, anomaly.timestamp),
                count=ref.count + 1,
                peak_score=max(ref.peak_score, anomaly.score),
                peak_z=peak_z,
                direction=str(anomaly.direction),
            )
        self.last_anomaly_at = max(self.last_anomaly_at, anomaly.timestamp)
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "incident": self.incident.to_dict(),
            "last_anomaly_at": self.last_anomaly_at,
            "labels": self.labels,
            "predictions": self.predictions,
            "alerts": self.alerts,
            "seen": sorted(self.seen),
            "evidence": None if self.evidence is None else self.evidence.to_dict(),
            "last_rank_at": None if self.last_rank_at == float("-inf") else self.last_rank_at,
            "held_at": None if self.held_at == float("-inf") else self.held_at,
            "unlisted": self.unlisted,
            "interval": self.interval,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackedIncident:
        """Inverse of :meth:`to_dict`."""
        incident = Incident.from_dict(data["incident"])
        evidence = data.get("evidence")
        last_rank = data.get("last_rank_at")
        held = data.get("held_at")
        return cls(
            incident=incident,
            last_anomaly_at=float(data["last_anomaly_at"]),
            refs={ref.fingerprint: ref for ref in incident.anomalies},
            labels={str(k): dict(v) for k, v in data.get("labels", {}).items()},
            predictions={str(k): float(v) for k, v in data.get("predictions", {}).items()},
            alerts={str(k): float(v) for k, v in data.get("alerts", {}).items()},
            seen=set(data.get("seen", [])),
            evidence=None if evidence is None else IncidentEvidence.from_dict(evidence),
            last_rank_at=float("-inf") if last_rank is None else float(last_rank),
            held_at=float("-inf") if held is None else float(held),
            interval=float(data.get("interval", 0.0)),
            unlisted=int(data.get("unlisted", 0)),
        )


class Correlator:
    """Decides whether two services' anomalies belong to the same problem.

    Parameters
    ----------
    config
        Correlation settings.
    topology
        Dependency graph, if known.
    cooccurrence
        Learned co-occurrence, used for services the topology does not know.
    """

    def __init__(
        self,
        config: CorrelationConfig,
        topology: Topology | None = None,
        cooccurrence: CoOccurrence | None = None,
    ) -> None:
        self.config = config
        self.topology = topology
        self.cooccurrence = cooccurrence

    def distance(self, service: str, others: Iterable[str]) -> int | None:
        """Relatedness of a service to a set: 0 same service, hops in the topology, or
        ``max_hops + 1`` for services related only by time; None if unrelated."""
        best: int | None = None
        for other in others:
            d = self._pair(service, other)
            if d is not None and (best is None or d < best):
                best = d
                if d == 0:
                    break
        return best

    def _pair(self, a: str, b: str) -> int | None:
        if a == b:
            return 0
        topo = self.topology
        if topo is not None and topo.knows(a) and topo.knows(b):
            d = topo.distance(a, b, limit=self.config.max_hops)
            return d if d is not None and d <= self.config.max_hops else None
        if self.cooccurrence is not None and not self.cooccurrence.related(a, b):
            return None
        return self.config.max_hops + 1

    def match(
        self, anomaly: Anomaly, open_incidents: Iterable[TrackedIncident]
    ) -> TrackedIncident | None:
        """The open incident the anomaly joins, if any (closest relation, then latest):
        within the window (``window_s``) of its last anomaly record, or at any time while
        one of its alerts fires; a service new to the incident only within the spread
        (``spread_s``) of its opening."""
        cc = self.config
        fp = anomaly.fingerprint
        best: tuple[int, float, TrackedIncident] | None = None
        for tracked in open_incidents:
            if fp in tracked.refs:
                return tracked
            window = span(cc.window_s, cc.window_samples, tracked.interval)
            live = bool(tracked.alerts)  # an alert still firing: the problem goes on
            if not live and anomaly.timestamp > tracked.last_anomaly_at + window:
                continue
            opened = tracked.incident.opened_at
            if anomaly.timestamp < opened - window:
                continue
            services = tracked.services
            spread = span(cc.spread_s, cc.spread_samples, tracked.interval)
            if anomaly.service not in services and anomaly.timestamp > opened + spread:
                continue
            d = self.distance(anomaly.service, services)
            if d is None:
                continue
            key = (d, -tracked.last_anomaly_at)
            if best is None or key < best[:2]:
                best = (d, -tracked.last_anomaly_at, tracked)
        return None if best is None else best[2]

    def match_resolved(
        self, anomaly: Anomaly, resolved: Iterable[TrackedIncident]
    ) -> TrackedIncident | None:
        """A recently resolved incident the anomaly reopens (same signal, else service)."""
        by_service: TrackedIncident | None = None
        for tracked in resolved:
            resolved_at = tracked.incident.resolved_at
            if resolved_at is None or anomaly.timestamp > resolved_at + self.config.reopen_window_s:
                continue
            if anomaly.fingerprint in tracked.refs:
                return tracked
            if by_service is None and anomaly.service in tracked.services:
                by_service = tracked
        return by_service


def is_prediction(anomaly: Anomaly) -> bool:
    """True for forecast records."""
    return anomaly.kind is SignalKind.PREDICTED


def alert_phase(anomaly: Anomaly) -> str | None:
    """``"firing"`` or ``"resolved"`` for a stateful alert (an SLO burn-rate alert, an
    alert of another tool), which fires and says when it stops; ``None`` for any other
    record."""
    if anomaly.kind not in (SignalKind.METRIC, SignalKind.ALERT) or not anomaly.details:
        return None
    phase = anomaly.details.get("phase")
    return phase if phase in ("firing", "resolved") else None
