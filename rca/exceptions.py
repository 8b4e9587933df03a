"""Errors raised by :mod:`rca`. Every one is an :class:`RcaError`."""

from __future__ import annotations


class RcaError(Exception):
    """Root of the errors of :mod:`rca`."""


class ConfigError(RcaError):
    """A topology, remediation or silence file (or settings block) is invalid.

    The message names the file, the rule or key, and the problem, so that start-up
    can stop with it as is.

    Parameters
    ----------
    source
        The file (or ``"<config>"`` / ``"<control>"`` for in-memory input).
    where
        The rule, silence or key at fault (empty when the whole document is wrong).
    problem
        What is wrong.
    """

    def __init__(self, source: str, where: str, problem: str) -> None:
        location = f"{source}: {where}" if where else source
        super().__init__(f"{location}: {problem}")
        self.source = source
        self.where = where
        self.problem = problem


class UnknownIncidentError(RcaError):
    """An operation names an incident the engine does not know."""


class UnknownActionError(RcaError):
    """An operation names an action the engine does not know."""


class InvalidTransitionError(RcaError):
    """An operation does not apply in the current state (e.g. approving a rejected action)."""


class StateError(RcaError):
    """Persisted engine state cannot be loaded (corrupt, or from an incompatible version)."""
