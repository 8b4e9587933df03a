"""From anomalies to incidents: correlation, lifecycle, root cause, remediation, silences.

Pure (no Kafka, no HTTP): the streaming layer feeds :class:`IncidentEngine` and publishes
the :class:`Outcome` it returns. See ``docs/incidents.md`` for the published schemas.
"""

from __future__ import annotations

from rca.config import (
    CorrelationConfig,
    RankingConfig,
    RcaConfig,
    RemediationConfig,
    SilenceConfig,
)
from rca.engine import IncidentEngine, Outcome
from rca.exceptions import (
    ConfigError,
    InvalidTransitionError,
    RcaError,
    StateError,
    UnknownActionError,
    UnknownIncidentError,
)
from rca.model import (
    ActionMode,
    ActionStatus,
    ActionType,
    AnomalyRef,
    Incident,
    IncidentState,
    RemediationAction,
    RootCauseCandidate,
    Severity,
    TimelineEvent,
    TimelineKind,
)
from rca.remediation import RemediationRule, load_remediation_rules
from rca.silences import Matcher, Silence, load_silences
from rca.topology import Topology, load_topology

__all__ = [
    "ActionMode",
    "ActionStatus",
    "ActionType",
    "AnomalyRef",
    "ConfigError",
    "CorrelationConfig",
    "Incident",
    "IncidentEngine",
    "IncidentState",
    "InvalidTransitionError",
    "Matcher",
    "Outcome",
    "RankingConfig",
    "RcaConfig",
    "RcaError",
    "RemediationAction",
    "RemediationConfig",
    "RemediationRule",
    "RootCauseCandidate",
    "Severity",
    "Silence",
    "SilenceConfig",
    "StateError",
    "TimelineEvent",
    "TimelineKind",
    "Topology",
    "UnknownActionError",
    "UnknownIncidentError",
    "load_remediation_rules",
    "load_silences",
    "load_topology",
]
