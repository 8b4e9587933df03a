"""Errors raised by :mod:`notify`. Every one is a :class:`NotifyError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notify.slack.retry import CallOutcome


class NotifyError(Exception):
    """Root of the errors of :mod:`notify`."""


class NotifierUnavailable(NotifyError):
    """A receiver of incidents (Slack, PagerDuty, a webhook) did not take a delivery after
    every retry allowed; deliver the same snapshots again later."""


class SlackUnavailable(NotifierUnavailable):
    """Slack did not take a call after every retry allowed (5xx, 429, timeouts, no route).

    Retryable: call :meth:`notify.slack.delivery.SlackNotifier.deliver` again later with the
    same snapshots; what was delivered before the outage is recorded in the state store
    and is not sent twice.

    Parameters
    ----------
    method
        The Slack method (or ``"webhook"``) that failed.
    reason
        Why, e.g. ``"http 503"``, ``"ratelimited"``, ``"timeout"``.
    attempts
        Calls made before giving up.
    """

    def __init__(self, method: str, reason: str, attempts: int) -> None:
        super().__init__(f"{method}: {reason} after {attempts} attempt(s)")
        self.method = method
        self.reason = reason
        self.attempts = attempts


class PagerDutyUnavailable(NotifierUnavailable):
    """PagerDuty did not take an event after every retry allowed (5xx, 429, timeouts).

    Retryable: deliver the same snapshots again later; what was sent before is remembered.

    Parameters
    ----------
    action
        The event action (``trigger``, ``acknowledge``, ``resolve``).
    reason
        Why, e.g. ``"http 503"``, ``"timeout"``.
    attempts
        Calls made before giving up.
    """

    def __init__(self, action: str, reason: str, attempts: int) -> None:
        super().__init__(f"PagerDuty {action}: {reason} after {attempts} attempt(s)")
        self.action = action
        self.reason = reason
        self.attempts = attempts


class WebhookUnavailable(NotifierUnavailable):
    """The incident webhook did not take a snapshot after every retry allowed.

    Retryable: deliver the same snapshots again later; what was sent is not sent twice.
    """

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(f"webhook: {reason} after {attempts} attempt(s)")
        self.reason = reason
        self.attempts = attempts


class SlackRejected(NotifyError):
    """Slack refused a call in a way that retrying cannot fix (e.g. ``channel_not_found``).

    Parameters
    ----------
    method
        The Slack method (or ``"webhook"``) that was refused.
    reason
        Slack's error code (``invalid_auth``, ``channel_not_found``...) or ``"http <status>"``.
    status
        HTTP status of the answer.
    """

    def __init__(self, method: str, reason: str, status: int) -> None:
        super().__init__(f"{method}: {reason} (http {status})")
        self.method = method
        self.reason = reason
        self.status = status


class ChartError(NotifyError):
    """A chart cannot be drawn (e.g. no points)."""


class StateDecodeError(NotifyError):
    """Stored message state cannot be decoded."""


class SlackCallFailed(NotifyError):
    """One HTTP call to Slack did not succeed; :func:`notify.slack.retry.classify` decides.

    Raised by transports, handled by the notifier (which retries or gives up).

    Parameters
    ----------
    method
        The Slack method, ``"files.upload"`` for the upload URL, or ``"webhook"``.
    outcome
        A :class:`notify.slack.retry.CallOutcome`.
    """

    def __init__(self, method: str, outcome: CallOutcome) -> None:
        super().__init__(f"{method}: {outcome}")
        self.method = method
        self.outcome = outcome


class UnsupportedOperation(NotifyError):
    """The transport cannot do this (an incoming webhook cannot update, reply or upload)."""
