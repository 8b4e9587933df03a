"""Root-cause ranking: which service (and which of its signals) most likely started it.

Evidence, per candidate service:

* **magnitude** (dominant): the service's largest robust deviation against its own
  baseline, as in BARO. From raw metrics (:class:`IncidentEvidence`) when the engine is fed
  them, else from the ``z`` the detectors report in anomaly records;
* **onset order**: services whose anomalies began earlier rank higher;
* **topology**: a service whose dependencies are healthy while services that depend on it
  are anomalous ranks higher (a symptom propagates from callee to caller);
* **logs**: new log templates or error bursts in the service.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rca.baseline import MetricHistory, RobustBaseline, SampleRing, SeriesId, robust_baseline
from rca.config import RankingConfig
from rca.model import RootCauseCandidate
from rca.signals import KindClassifier
from rca.topology import Topology


@dataclass(slots=True)
class SeriesPeak:
    """Peak deviation of one series since the onset."""

    z: float
    value: float
    at: float


class IncidentEvidence:
    """Raw-metric evidence of one incident: frozen baselines and peak deviations.

    Parameters
    ----------
    onset
        Event time the incident began; baselines use samples before it.
    """

    def __init__(self, onset: float) -> None:
        self.onset = onset
        self.baselines: dict[str, RobustBaseline] = {}
        self.ids: dict[str, SeriesId] = {}
        self.peaks: dict[str, SeriesPeak] = {}
        self.tried: set[str] = set()  # series frozen or found without enough history

    def freeze(self, history: MetricHistory, config: RankingConfig) -> None:
        """Take every series' baseline from its samples before the onset, and its peak
        deviation from the samples since."""
        for sid, ring in history:
            self.freeze_one(sid, ring, config)

    def freeze_one(self, sid: SeriesId, ring: SampleRing, config: RankingConfig) -> None:
        """Freeze one series (also later, for a series whose samples arrive late)."""
        before = ring.values_between(-math.inf, self.onset - config.onset_guard_s)
        after = ring.values_between(self.onset, math.inf)
        if len(before) < config.min_baseline_samples:
            if len(after):  # its samples are past the onset: no more baseline will come
                self.tried.add(sid.key)
            return
        self.tried.add(sid.key)
        base = robust_baseline(
            before,
            relative_floor=config.relative_floor,
            absolute_floor=config.absolute_floor,
        )
        self.baselines[sid.key] = base
        self.ids[sid.key] = sid
        if len(after):
            peak = float(after[abs(after - base.median).argmax()])
            self.peaks[sid.key] = SeriesPeak(z=base.z(peak), value=peak, at=self.onset)

    def observe(self, key: str, at: float, value: float) -> None:
        """Update the peak of a series with a new sample (no-op for unknown series)."""
        base = self.baselines.get(key)
        if base is None or at < self.onset or not math.isfinite(value):
            return
        z = base.z(value)
        peak = self.peaks.get(key)
        if peak is None or z > peak.z:
            self.peaks[key] = SeriesPeak(z=z, value=value, at=at)

    def service_peaks(self) -> dict[str, tuple[float, str, float, float]]:
        """``service -> (z, metric, value, median)`` of its most deviating series."""
        best: dict[str, tuple[float, str, float, float]] = {}
        for key, peak in self.peaks.items():
            sid = self.ids[key]
            if sid.service not in best or peak.z > best[sid.service][0]:
                best[sid.service] = (peak.z, sid.metric, peak.value, self.baselines[key].median)
        return best

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "onset": self.onset,
            "series": [
                {
                    "key": key,
                    "service": self.ids[key].service,
                    "metric": self.ids[key].metric,
                    "median": base.median,
                    "spread": base.spread,
                    "peak": None
                    if key not in self.peaks
                    else [self.peaks[key].z, self.peaks[key].value, self.peaks[key].at],
                }
                for key, base in self.baselines.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IncidentEvidence:
        """Inverse of :meth:`to_dict`."""
        evidence = cls(float(data["onset"]))
        evidence.tried.update(str(item["key"]) for item in data.get("series", []))
        for item in data.get("series", []):
            key = str(item["key"])
            evidence.ids[key] = SeriesId(key=key, service=item["service"], metric=item["metric"])
            evidence.baselines[key] = RobustBaseline(float(item["median"]), float(item["spread"]))
            if item.get("peak") is not None:
                z, value, at = item["peak"]
                evidence.peaks[key] = SeriesPeak(float(z), float(value), float(at))
        return evidence


@dataclass(frozen=True, slots=True)
class ServiceSignals:
    """What the incident's anomaly records say about one service.

    Parameters
    ----------
    onset
        Earliest anomaly onset of the service.
    z, signal
        Largest detector-reported robust deviation and its signal (0 and "" if none).
    score, top_signal
        Largest detector score and its signal.
    log_score
        Largest score of a log anomaly (0 if none).
    log_signals
        Count of distinct log signals (templates, error rate) that were anomalous.
    alerts
        Alerts of other tools on the service.
    """

    onset: float
    z: float = 0.0
    signal: str = ""
    score: float = 0.0
    top_signal: str = ""
    log_score: float = 0.0
    log_signals: int = 0
    alerts: tuple[tuple[str, float], ...] = ()
    """Alerts of other tools on the service: ``(signal, onset)``, earliest first."""


@dataclass
class _Scored:
    service: str
    signal: str
    magnitude: float
    value: float | None = None
    median: float | None = None
    is_deviation: bool = True
    notes: list[str] = field(default_factory=list)


class RootCauseRanker:
    """Scores candidate services of an incident.

    Parameters
    ----------
    config
        Weights and baseline settings.
    topology
        Dependency graph, if known.
    """

    def __init__(self, config: RankingConfig, topology: Topology | None = None) -> None:
        self.config = config
        self.topology = topology
        self.kinds = KindClassifier(config.kind_patterns)

    def rank(
        self,
        *,
        signals: Mapping[str, ServiceSignals],
        evidence: IncidentEvidence | None = None,
    ) -> tuple[RootCauseCandidate, ...]:
        """Top candidates, best first.

        Candidates are the services with anomalies in the incident, plus (with raw
        metrics) services whose deviation reaches ``healthy_z`` and that a path of such
        services joins to them in the topology (any such service, without a topology).
        """
        cfg = self.config
        raw = evidence.service_peaks() if evidence is not None else {}
        raw_anomalous = {svc for svc, peak in raw.items() if peak[0] >= cfg.healthy_z}
        candidates = set(signals) | self._reachable(signals, raw_anomalous)
        if not candidates:
            return ()
        scored = [self._magnitude(svc, signals.get(svc), raw.get(svc)) for svc in candidates]
        top_mag = max(s.magnitude for s in scored) or 1.0
        onset_rank = self._onset_ranks(signals)
        anomalous = {s.service for s in scored if s.magnitude >= cfg.healthy_z} | set(signals)
        top_log = max((sig.log_score for sig in signals.values()), default=0.0) or 1.0
        total_w = cfg.weight_magnitude + cfg.weight_onset + cfg.weight_topology + cfg.weight_logs
        results = []
        for item in scored:
            sig = signals.get(item.service)
            mag = item.magnitude / top_mag
            onset = onset_rank.get(item.service, 0.0)
            topo = self._topology_term(item, anomalous)
            logs = (sig.log_score / top_log) if sig and sig.log_signals else 0.0
            if sig and sig.log_signals:
                item.notes.append(f"{sig.log_signals} anomalous log signal(s)")
            if onset == 1.0:
                item.notes.append("first to move")
            score = (
                cfg.weight_magnitude * mag
                + cfg.weight_onset * onset
                + cfg.weight_topology * topo
                + cfg.weight_logs * logs
            ) / (total_w or 1.0)
            results.append((score, item))
        results.sort(key=lambda r: (-r[0], -r[1].magnitude, r[1].service))
        for _, item in results[: cfg.top_k]:  # only the candidates shown are explained
            sig = signals.get(item.service)
            for signal, since in sig.alerts[:2] if sig else ():
                name = signal.removeprefix("alert:")
                item.notes.append(f"alert {name} firing since {_clock(since)}")
        return tuple(
            RootCauseCandidate(
                service=item.service,
                signal=item.signal,
                kind=self._kind(item.signal),
                score=round(score, 4),
                explanation=self._explain(item),
                magnitude=round(item.magnitude, 3) if item.is_deviation else None,
            )
            for score, item in results[: cfg.top_k]
        )

    def _reachable(self, seeds: Iterable[str], anomalous: set[str]) -> set[str]:
        """Anomalous services joined to the seeds by a path of anomalous services (a fault
        propagates along calls); services the topology does not know are all kept."""
        topo = self.topology
        if topo is None:
            return set(anomalous)
        found = {s for s in anomalous if not topo.knows(s)}
        frontier = [s for s in seeds if topo.knows(s)]
        seen = set(frontier)
        while frontier:
            node = frontier.pop()
            for nxt in topo.dependencies_of(node) | topo.dependents(node):
                if nxt in anomalous and nxt not in seen:
                    seen.add(nxt)
                    found.add(nxt)
                    frontier.append(nxt)
        return found

    def _magnitude(
        self,
        service: str,
        sig: ServiceSignals | None,
        raw: tuple[float, str, float, float] | None,
    ) -> _Scored:
        # Raw samples give one comparable scale for every series of every service; a
        # detector's own z is used only for services the engine has no samples of.
        if raw is not None:
            z, metric, value, median = raw
            return _Scored(service, metric, z, value=value, median=median)
        if sig is not None and sig.signal:
            return _Scored(service, sig.signal, sig.z)
        if sig is not None:
            # Only scores (e.g. log anomalies): keep them below any real deviation.
            return _Scored(service, sig.top_signal, sig.score, is_deviation=False)
        return _Scored(service, "", 0.0, is_deviation=False)

    def _onset_ranks(self, signals: Mapping[str, ServiceSignals]) -> dict[str, float]:
        order = {onset: i for i, onset in enumerate(sorted({s.onset for s in signals.values()}))}
        return {svc: 1.0 / (1 + order[sig.onset]) for svc, sig in signals.items()}

    def _topology_term(self, item: _Scored, anomalous: set[str]) -> float:
        topo = self.topology
        if topo is None or not topo.knows(item.service):
            return 0.0
        deps = topo.dependencies_of(item.service)
        sick_deps = sorted(deps & anomalous)
        if sick_deps:
            item.notes.append(f"dependency anomalous too ({', '.join(sick_deps[:3])})")
            return 0.0
        dependents = topo.dependents(item.service)
        sick_up = dependents & anomalous
        if dependents and sick_up:
            item.notes.append(
                f"dependencies healthy, {len(sick_up)}/{len(dependents)} callers anomalous"
            )
        elif deps:
            item.notes.append("dependencies healthy")
        share = len(sick_up) / len(dependents) if dependents else 0.0
        return 0.5 + 0.5 * share

    def _kind(self, signal: str) -> str:
        if signal.startswith("log:"):
            return "errors" if signal == "log:errors" else "log"
        return self.kinds.of_metric(signal) if signal else "other"

    def _explain(self, item: _Scored) -> str:
        if item.median is not None and item.value is not None:
            head = (
                f"{item.signal} at {item.value:.4g} vs baseline median {item.median:.4g} "
                f"({item.magnitude:.1f} robust sigma)"
            )
        elif item.signal and item.magnitude > 1.0:
            head = f"{item.signal} {item.magnitude:.1f} robust sigma off its baseline"
        elif item.signal:
            head = f"{item.signal} anomalous (score {item.magnitude:.2f})"
        else:
            head = "related by topology"
        return "; ".join([head, *item.notes])


def service_signals(
    records: Iterable[tuple[str, str, str, float, float, float | None]],
) -> dict[str, ServiceSignals]:
    """Fold ``(service, signal, kind, onset, score, z)`` rows into :class:`ServiceSignals`.

    ``kind`` is the anomaly's :class:`~detectors.anomaly.SignalKind` value.
    """
    acc: dict[str, dict[str, Any]] = {}
    for service, signal, kind, onset, score, z in records:
        a = acc.setdefault(
            service,
            {
                "onset": onset,
                "z": 0.0,
                "signal": "",
                "score": -1.0,
                "top_signal": "",
                "log_score": 0.0,
                "logs": set(),
                "alerts": {},
            },
        )
        a["onset"] = min(a["onset"], onset)
        if z is not None and z > a["z"]:
            a["z"], a["signal"] = z, signal
        if score > a["score"]:
            a["score"], a["top_signal"] = score, signal
        if kind == "log":
            a["logs"].add(signal)
            a["log_score"] = max(a["log_score"], score)
        if kind == "alert":
            a["alerts"][signal] = min(onset, a["alerts"].get(signal, onset))
    return {
        svc: ServiceSignals(
            onset=a["onset"],
            z=a["z"],
            signal=a["signal"],
            score=max(a["score"], 0.0),
            top_signal=a["top_signal"],
            log_score=a["log_score"],
            log_signals=len(a["logs"]),
            alerts=tuple(sorted(a["alerts"].items(), key=lambda item: item[1])),
        )
        for svc, a in acc.items()
    }


def _clock(at: float) -> str:
    """``HH:MM:SSZ`` of an epoch time (UTC).

    >>> _clock(1764756000.0)
    '10:00:00Z'
    """
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%SZ")
