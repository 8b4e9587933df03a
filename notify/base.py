"""What every receiver of incidents (Slack, PagerDuty, a webhook) offers the worker.

The worker reads ``aiops.incidents`` as a durable outbox for each of them the same way
(``streams.app``): a batch of snapshots is handed to :meth:`IncidentNotifier.deliver`, and
only acknowledged once it returns; when it raises
:class:`~notify.exceptions.NotifierUnavailable` the same batch is delivered again later. A
new integration is a new class of this shape, not a new pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rca.model import Incident

Counts = dict[tuple[str, str], int]
"""``(call, outcome) -> count`` of one delivery, for the worker's metrics."""


class Delivery(Protocol):
    """What one delivery did."""

    def counts(self) -> Counts:
        """Its calls, by ``(call, outcome)``."""
        ...


class IncidentNotifier(Protocol):
    """A receiver of incident snapshots."""

    name: str
    """Short name for logs and metrics (``slack``, ``pagerduty``, ``webhook``)."""

    async def deliver(self, snapshots: Sequence[Incident]) -> Delivery:
        """Deliver what is new in a batch (any order, duplicates allowed); raise
        :class:`~notify.exceptions.NotifierUnavailable` when the receiver stays unreachable.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
