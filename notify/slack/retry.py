"""Whether a failed Slack call is worth another try, and how long to wait (pure).

Like Alertmanager's notifiers: 5xx, 429, timeouts and connection errors are retryable;
other 4xx and Slack's ``ok: false`` errors (``channel_not_found``, ``invalid_auth``...)
are not, except the few Slack documents as transient.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from notify.config import RetryConfig

TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "timeout",
    }
)
"""Slack error codes that mean "try again later" even with a 2xx or 4xx status."""


class Verdict(StrEnum):
    """What to do after a call."""

    OK = "ok"
    RETRY = "retry"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What came back from one HTTP call.

    Parameters
    ----------
    status
        HTTP status, or ``None`` when nothing came back (timeout, connection refused).
    error
        Slack's error code (``ok: false`` body, or a webhook's text body), if any.
    retry_after
        ``Retry-After`` header in seconds, if any.
    failure
        For ``status=None``: ``"timeout"`` or ``"connection"``.
    """

    status: int | None
    error: str | None = None
    retry_after: float | None = None
    failure: str = ""


def classify(outcome: CallOutcome) -> tuple[Verdict, str]:
    """The verdict and a short reason for the logs.

    >>> classify(CallOutcome(200))
    (<Verdict.OK: 'ok'>, 'ok')
    >>> classify(CallOutcome(429, "ratelimited", 3.0))
    (<Verdict.RETRY: 'retry'>, 'ratelimited (http 429)')
    >>> classify(CallOutcome(503))
    (<Verdict.RETRY: 'retry'>, 'http 503')
    >>> classify(CallOutcome(200, "channel_not_found"))
    (<Verdict.REJECT: 'reject'>, 'channel_not_found')
    >>> classify(CallOutcome(None, failure="timeout"))
    (<Verdict.RETRY: 'retry'>, 'timeout')
    """
    if outcome.status is None:
        return Verdict.RETRY, outcome.failure or "no answer"
    status, error = outcome.status, outcome.error
    if status == 429:
        return Verdict.RETRY, f"{error or 'ratelimited'} (http 429)"
    if status >= 500:
        return Verdict.RETRY, f"{error} (http {status})" if error else f"http {status}"
    if error:
        if error in TRANSIENT_ERRORS:
            return Verdict.RETRY, error
        return Verdict.REJECT, error if status < 300 else f"{error} (http {status})"
    if 200 <= status < 300:
        return Verdict.OK, "ok"
    return Verdict.REJECT, f"http {status}"


def backoff_s(
    attempt: int,
    config: RetryConfig,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    A 429's ``Retry-After`` is honoured (capped at ``max_backoff_s``); otherwise the
    wait doubles from ``backoff_s`` with up to 10 % jitter.

    >>> cfg = RetryConfig(backoff_s=1.0, max_backoff_s=30.0)
    >>> backoff_s(1, cfg, rng=random.Random(0)) >= 1.0, backoff_s(3, cfg, retry_after=7.0)
    (True, 7.0)
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), config.max_backoff_s)
    base = min(config.backoff_s * 2 ** (attempt - 1), config.max_backoff_s)
    jitter = (rng or random).uniform(0.0, 0.1 * base)
    return min(base + jitter, config.max_backoff_s)
