"""Remediation: rules that map root causes to actions, and the guardrails around them.

A rules file (YAML) lists rules; each matches a root-cause candidate by service (regex),
signal kind, signal (regex), minimum severity and minimum confidence, and names an action
(``restart``, ``scale_out``, ``rollback`` or ``custom`` with parameters) and a mode
(``suggest``, ``auto`` or ``approval``). The :class:`RemediationPlanner` applies the
guardrails: nothing for a resolved or silenced incident, one action per idempotency key,
a cooldown per target and action, a cap on actions per time window, and dry-run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from rca.config import RemediationConfig
from rca.exceptions import ConfigError
from rca.model import (
    ActionMode,
    ActionStatus,
    ActionType,
    Incident,
    RemediationAction,
    RootCauseCandidate,
    Severity,
)


class RuleMatch(BaseModel, frozen=True, extra="forbid"):
    """Which root causes a rule applies to.

    Parameters
    ----------
    service
        Regex, full match on the candidate's service.
    kind
        Signal kinds (``cpu``, ``memory``, ``latency``, ``errors``, ``new_template``, ...);
        empty means any.
    signal
        Regex, full match on the candidate's signal; None means any.
    min_severity
        The incident must be at least this severe.
    min_confidence
        The candidate's score must be at least this.
    """

    service: str = ".*"
    kind: tuple[str, ...] = ()
    signal: str | None = None
    min_severity: Severity = Severity.INFO
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("service", "signal")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regex {value!r}: {exc}") from exc
        return value

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def matches(self, candidate: RootCauseCandidate, severity: Severity) -> bool:
        """True if the rule applies to the candidate of an incident of this severity."""
        return (
            re.fullmatch(self.service, candidate.service) is not None
            and (not self.kind or candidate.kind in self.kind)
            and (self.signal is None or re.fullmatch(self.signal, candidate.signal) is not None)
            and severity.rank >= self.min_severity.rank
            and candidate.score >= self.min_confidence
        )


class RemediationRule(BaseModel, frozen=True, extra="forbid"):
    """One rule of the rules file.

    Parameters
    ----------
    name
        Unique name; appears in each action's ``rule`` and ``reason``.
    match
        See :class:`RuleMatch`.
    action
        What to do.
    target
        What to act on; ``{service}`` is replaced by the root-cause service (default).
    params
        Parameters passed with the action (``custom`` actions need a ``name``).
    mode
        Suggest, auto or approval.
    cooldown_s
        Overrides the default cooldown for this rule's target.
    """

    name: str = Field(min_length=1)
    match: RuleMatch = Field(default_factory=RuleMatch)
    action: ActionType
    target: str = "{service}"
    params: dict[str, Any] = Field(default_factory=dict)
    mode: ActionMode = ActionMode.SUGGEST
    cooldown_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _custom_has_name(self) -> RemediationRule:
        if self.action is ActionType.CUSTOM and not self.params.get("name"):
            raise ValueError("a custom action needs params.name")
        if "{" in self.target.replace("{service}", ""):
            raise ValueError("target may only use the placeholder {service}")
        return self


def parse_remediation_rules(doc: Any, *, source: str = "<config>") -> list[RemediationRule]:
    """Validate a parsed rules document: ``rules:`` followed by a list of rules."""
    if doc is None:
        return []
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rules"), list):
        raise ConfigError(source, "rules", "expected 'rules:' followed by a list of rules")
    unknown = set(doc) - {"rules"}
    if unknown:
        raise ConfigError(source, ", ".join(sorted(map(str, unknown))), "unknown key")
    rules: list[RemediationRule] = []
    names: set[str] = set()
    for index, raw in enumerate(doc["rules"]):
        where = f"rule #{index + 1}"
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
            where = f"rule '{raw['name']}'"
        try:
            rule = RemediationRule.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(_describe_error(err) for err in exc.errors())
            raise ConfigError(source, where, problems) from exc
        if rule.name in names:
            raise ConfigError(source, where, "duplicate rule name")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _describe_error(err: Any) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {msg}" if loc else msg


def load_remediation_rules(path: str | Path) -> list[RemediationRule]:
    """Read a rules file; raises :class:`~rca.exceptions.ConfigError` naming the file,
    the rule and the problem."""
    source = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML ({exc})") from exc
    return parse_remediation_rules(doc, source=source)


def _idempotency_key(incident: Incident, rule: RemediationRule, target: str) -> str:
    """Same action on the same target for the same incident episode: same key."""
    return f"{incident.id}/{incident.reopened}/{rule.name}/{rule.action}/{target}"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class RemediationPlanner:
    """Turns ranked incidents into actions, within the guardrails.

    Parameters
    ----------
    config
        Guardrail settings.
    rules
        Rules, first match per candidate wins.
    """

    def __init__(self, config: RemediationConfig, rules: Sequence[RemediationRule]) -> None:
        self.config = config
        self.rules = list(rules)
        self.last_dispatch: dict[str, float] = {}
        self.dispatched: deque[float] = deque()

    def has_new(self, incident: Incident, *, at: float) -> bool:
        """Whether :meth:`plan` would propose something now (no side effects)."""
        if not self.config.enabled or not incident.is_open or incident.silenced:
            return False
        if at - incident.opened_at < self.config.settle_s:
            return False
        known = {a.idempotency_key for a in incident.actions}
        for candidate in incident.root_causes[: self.config.candidates]:
            for rule in self.rules:
                if rule.match.matches(candidate, incident.severity):
                    target = rule.target.replace("{service}", candidate.service)
                    key = _idempotency_key(incident, rule, target)
                    if key not in known:
                        return True
                    break
        return False

    def plan(self, incident: Incident, *, at: float) -> list[RemediationAction]:
        """New actions for the incident's current root causes (none if already proposed)."""
        if not self.config.enabled or not incident.is_open or incident.silenced:
            return []
        if at - incident.opened_at < self.config.settle_s:
            return []
        known = {a.idempotency_key for a in incident.actions}
        actions: list[RemediationAction] = []
        for candidate in incident.root_causes[: self.config.candidates]:
            for rule in self.rules:
                if not rule.match.matches(candidate, incident.severity):
                    continue
                target = rule.target.replace("{service}", candidate.service)
                key = _idempotency_key(incident, rule, target)
                if key not in known:
                    known.add(key)
                    actions.append(self._new_action(incident, candidate, rule, target, key, at))
                break
        return actions

    def _new_action(
        self,
        incident: Incident,
        candidate: RootCauseCandidate,
        rule: RemediationRule,
        target: str,
        key: str,
        at: float,
    ) -> RemediationAction:
        action = RemediationAction(
            id=f"act-{_digest(key)}",
            idempotency_key=key,
            incident_id=incident.id,
            action=rule.action,
            target=target,
            params=dict(rule.params),
            reason=f"rule {rule.name}: {candidate.service} {candidate.kind} "
            f"({candidate.explanation})",
            confidence=candidate.score,
            mode=rule.mode,
            status=ActionStatus.SUGGESTED,
            rule=rule.name,
            created_at=at,
            dry_run=self.config.dry_run,
        )
        if rule.mode is ActionMode.SUGGEST:
            return action
        if rule.mode is ActionMode.APPROVAL:
            return _replace(action, status=ActionStatus.PENDING_APPROVAL)
        return self.dispatch(action, at=at)

    def dispatch(self, action: RemediationAction, *, at: float) -> RemediationAction:
        """Dispatch an action if the cooldown and the cap allow; else mark it suppressed."""
        cooldown = self._cooldown(action.rule)
        slot = f"{action.action}/{action.target}"
        last = self.last_dispatch.get(slot)
        if last is not None and at - last < cooldown:
            return _replace(
                action,
                status=ActionStatus.SUPPRESSED,
                reason=f"{action.reason}; cooldown on {slot} until {last + cooldown:.0f}",
            )
        while self.dispatched and self.dispatched[0] <= at - self.config.window_s:
            self.dispatched.popleft()
        if len(self.dispatched) >= self.config.max_actions:
            return _replace(
                action,
                status=ActionStatus.SUPPRESSED,
                reason=f"{action.reason}; cap of {self.config.max_actions} actions per "
                f"{self.config.window_s:.0f}s reached",
            )
        self.dispatched.append(at)
        self.last_dispatch[slot] = at
        status = ActionStatus.DRY_RUN if self.config.dry_run else ActionStatus.DISPATCHED
        return _replace(action, status=status, dry_run=self.config.dry_run)

    def _cooldown(self, rule_name: str) -> float:
        for rule in self.rules:
            if rule.name == rule_name and rule.cooldown_s is not None:
                return rule.cooldown_s
        return self.config.default_cooldown_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready guardrail state."""
        return {"last_dispatch": self.last_dispatch, "dispatched": list(self.dispatched)}

    def load(self, data: Mapping[str, Any]) -> None:
        """Restore state written by :meth:`to_dict`."""
        self.last_dispatch = {str(k): float(v) for k, v in data.get("last_dispatch", {}).items()}
        self.dispatched = deque(float(t) for t in data.get("dispatched", []))


def _replace(action: RemediationAction, **changes: Any) -> RemediationAction:
    return dataclasses.replace(action, **changes)


def rules_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[RemediationRule]:
    """Rules from in-memory mappings (same validation as the file)."""
    return parse_remediation_rules({"rules": list(items)})
