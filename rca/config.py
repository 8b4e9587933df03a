"""Settings of the incident engine: one frozen model per concern, composed in :class:`RcaConfig`.

Defaults are chosen for metrics sampled every few seconds and services that depend on
each other through request paths; every field can be set from the application's YAML
settings (the ``rca`` block) or from ``AIOPS_*`` variables, by the application.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from rca.model import Severity

DEFAULT_KIND_PATTERNS: dict[str, str] = {
    # Checked in order; the first regex that matches (searched, case-insensitive) wins.
    "errors": r"err|fail|5\d\d|exception|fault",
    "latency": r"lat(ency)?(_|$)|duration|response_time|rtt|_p\d\d",
    "cpu": r"cpu|throttl",
    "memory": r"mem|rss|heap|oom|swap",
    "traffic": r"lod|load|rps|qps|requests|throughput|traffic",
    "disk": r"disk|fs_|filesystem|iops|io_",
    "network": r"net|socket|tcp|bytes_(in|out|sent|recv)",
}


def span(seconds: float, samples: int, interval: float) -> float:
    """A window of ``seconds`` or ``samples`` intervals, whichever is longer.

    >>> span(300.0, 3, 1.0), span(300.0, 3, 300.0)
    (300.0, 900.0)
    """
    return max(seconds, samples * interval)


class CorrelationConfig(BaseModel, frozen=True, extra="forbid"):
    """How anomalies are grouped into incidents and how incidents live and die.

    Parameters
    ----------
    window_s, window_samples
        An anomaly joins an open incident if it comes at most this long, or this many
        sampling intervals of the incident's slowest series (whichever is longer), after
        the incident's latest anomaly record (and is related to it, see below). A series
        that stays off its baseline holds its incident open (see ``quiet_period_s``) but
        does not widen this window.
    spread_s, spread_samples
        A service that is not yet part of an open incident joins it only this long, or
        this many sampling intervals (whichever is longer), after the incident opened;
        later, its anomaly opens an incident of its own. A fault spreads to its neighbours
        within minutes; a later fault next to a lasting one is another problem.
    max_hops
        With a topology: services at most this many dependency edges apart (either
        direction) are related. Services absent from the topology are related by time only.
    confirm_s
        With raw metrics fed to the engine, a metric anomaly counts towards opening an
        incident only once its series has stayed off its baseline for this long (a blip
        that a detector flags but that does not last opens nothing). Anomalies without
        raw samples (logs, forecasts, unfed series) count at once.
    confirm_z, confirm_fraction
        "Off its baseline" means at least ``confirm_fraction`` of the samples since the
        onset deviate by ``confirm_z`` robust sigma or more (baseline: the samples before
        the onset, as for ranking).
    min_signals
        Confirmed signals (distinct fingerprints) needed to open an incident; they must be
        related and fall within ``corroboration_s`` of each other. Forecasts open alone.
    corroboration_s
        See ``min_signals``.
    max_pending
        Bound on anomalies waiting for confirmation.
    quiet_period_s, quiet_samples
        An incident resolves once it has had no new anomaly, and none of its series has
        been off its baseline, for this long or this many sampling intervals of its
        slowest series, whichever is longer.
    reopen_window_s
        A problem that comes back within this long after its incident resolved reopens
        that incident (flap protection) instead of opening a new one.
    learn_cooccurrence
        Without a topology, learn which services have anomalies together; once both
        services have ``min_support`` resolved incidents, they are related only if they
        shared at least ``min_cooccurrence`` of them.
    min_support, min_cooccurrence
        See ``learn_cooccurrence``.
    max_open_incidents
        Bound on tracked open incidents; beyond it the oldest is resolved first.
    max_signals
        Signals (fingerprints) an incident lists at most; the records of further signals
        still join it (and count in ``anomaly_count``) but are not listed, ranked or kept.
        An alert storm of thousands of signals stays one incident of bounded size.
    max_resolved_kept
        Resolved incidents kept in memory for reopening and operations.
    confirm_samples
        The confirmation lasts ``confirm_s`` or this many sampling intervals of the
        anomaly's series, whichever is longer (a series scraped every minute has no sample
        within 30 s of its onset).
    arrival_samples
        An anomaly is still considered this many sampling intervals of its series (on top
        of the corroboration and confirmation time) after its onset: detectors publish an
        onset a few points after it, so on a slow series the record comes minutes later.
    critical_z
        An incident whose peak robust deviation reaches this is critical.
    critical_services
        An incident spanning this many services is critical.
    predicted_severity
        Severity of an incident that rests on forecasts only.
    """

    window_s: float = Field(default=300.0, gt=0)
    window_samples: int = Field(default=3, ge=0)
    spread_s: float = Field(default=1800.0, gt=0)
    spread_samples: int = Field(default=6, ge=0)
    max_hops: int = Field(default=2, ge=0)
    confirm_s: float = Field(default=30.0, ge=0)
    confirm_z: float = Field(default=5.0, ge=0)
    confirm_fraction: float = Field(default=0.8, gt=0, le=1)
    confirm_samples: int = Field(default=3, ge=1)
    arrival_samples: int = Field(default=4, ge=0)
    min_signals: int = Field(default=1, ge=1)
    corroboration_s: float = Field(default=60.0, ge=0)
    max_pending: int = Field(default=10_000, ge=1)
    quiet_period_s: float = Field(default=600.0, gt=0)
    quiet_samples: int = Field(default=5, ge=0)
    reopen_window_s: float = Field(default=900.0, ge=0)
    learn_cooccurrence: bool = True
    min_support: int = Field(default=5, ge=1)
    min_cooccurrence: float = Field(default=0.2, ge=0, le=1)
    max_open_incidents: int = Field(default=1000, ge=1)
    max_signals: int = Field(default=200, ge=1)
    max_resolved_kept: int = Field(default=1000, ge=0)
    critical_z: float = Field(default=20.0, gt=0)
    critical_services: int = Field(default=3, ge=1)
    predicted_severity: Severity = Severity.WARNING


class RankingConfig(BaseModel, frozen=True, extra="forbid"):
    """How root-cause candidates are scored.

    The magnitude term follows BARO: each series is scaled by its own robust baseline
    (median and spread of the samples before the incident's onset), and a service counts
    with its most deviating series. Onset order, topology and log evidence adjust it.

    Parameters
    ----------
    baseline_samples
        Ring-buffer length per metric series (the samples kept to form a baseline). Memory
        is 12 bytes per sample: ``12 * baseline_samples * series``.
    max_series
        Bound on series kept for ranking; beyond it the series not updated for longest is
        dropped.
    min_baseline_samples
        Fewer samples than this before onset: the series is not scored from raw metrics.
    onset_guard_s
        Samples this close before the incident's onset are left out of the baseline
        (detectors fire a few samples after a change starts).
    relative_floor
        The spread of a series is at least this fraction of its median's magnitude, so
        that a constant series (zero spread) does not turn a tiny change into a huge score.
    absolute_floor
        Smallest spread used at all.
    top_k
        Candidates kept on the incident.
    weight_magnitude, weight_onset, weight_topology, weight_logs
        Weights of the evidence terms (scores are normalised to 0..1 after weighting).
        Magnitude dominates: the other terms can only reorder candidates whose
        deviations are within a few tens of percent of each other (e.g. a callee and its
        caller, where the topology says which one is the victim).
    rerank_interval_s
        Open incidents are re-ranked on ``tick`` at most this often; a new snapshot is
        published only when the top candidates change.
    healthy_z
        A service whose peak deviation stays below this counts as healthy (for the
        topology term).
    kind_patterns
        Signal kind by metric name: ordered ``kind -> regex``.
    """

    baseline_samples: int = Field(default=300, ge=8)
    max_series: int = Field(default=100_000, ge=1)
    min_baseline_samples: int = Field(default=30, ge=3)
    onset_guard_s: float = Field(default=0.0, ge=0)
    relative_floor: float = Field(default=0.01, ge=0)
    absolute_floor: float = Field(default=1e-9, gt=0)
    top_k: int = Field(default=5, ge=1)
    weight_magnitude: float = Field(default=1.0, ge=0)
    weight_onset: float = Field(default=0.1, ge=0)
    weight_topology: float = Field(default=0.3, ge=0)
    weight_logs: float = Field(default=0.1, ge=0)
    rerank_interval_s: float = Field(default=10.0, ge=0)
    healthy_z: float = Field(default=5.0, ge=0)
    kind_patterns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_KIND_PATTERNS))


class RemediationConfig(BaseModel, frozen=True, extra="forbid"):
    """Guardrails of remediation.

    Parameters
    ----------
    enabled
        Propose actions at all.
    dry_run
        Actions that would be dispatched are marked ``dry_run`` instead.
    default_cooldown_s
        After an action on a target, the same action on it waits this long (a rule may
        set its own ``cooldown_s``).
    max_actions
        At most this many actions dispatched or awaiting approval per ``window_s``.
    window_s
        See ``max_actions``.
    candidates
        Root-cause candidates (best first) that rules are matched against.
    settle_s
        No action is proposed before an incident is this old: the first minute's ranking
        moves as late evidence (slower partitions, slower detectors) arrives, and acting on
        a service that turns out to be a victim does harm.
    """

    enabled: bool = True
    dry_run: bool = False
    settle_s: float = Field(default=60.0, ge=0)
    default_cooldown_s: float = Field(default=900.0, ge=0)
    max_actions: int = Field(default=5, ge=0)
    window_s: float = Field(default=3600.0, gt=0)
    candidates: int = Field(default=1, ge=1)


class SilenceConfig(BaseModel, frozen=True, extra="forbid"):
    """Silences (maintenance windows).

    Parameters
    ----------
    max_silences
        Bound on stored silences (expired ones are dropped first).
    keep_expired_s
        Expired silences are forgotten after this long.
    """

    max_silences: int = Field(default=10_000, ge=1)
    keep_expired_s: float = Field(default=86_400.0, ge=0)


class RcaConfig(BaseModel, frozen=True, extra="forbid"):
    """All settings of :class:`rca.engine.IncidentEngine`."""

    correlation: CorrelationConfig = Field(default_factory=CorrelationConfig)
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    remediation: RemediationConfig = Field(default_factory=RemediationConfig)
    silences: SilenceConfig = Field(default_factory=SilenceConfig)
