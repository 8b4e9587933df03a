"""Event time for time-driven work (log buckets, incident resolution)."""

from __future__ import annotations

import time
from collections.abc import Callable


class EventClock:
    """The latest event time seen, advanced by wall time since it was seen.

    Detectors and the incident engine run on event time so that replays are
    deterministic; when input pauses, time still moves on, so quiet incidents resolve.

    >>> clock = EventClock(wall=lambda: 100.0)
    >>> clock.now() is None
    True
    >>> clock.observe(5000.0)
    >>> clock.now()
    5000.0
    """

    def __init__(self, wall: Callable[[], float] = time.monotonic) -> None:
        self._wall = wall
        self._event: float | None = None
        self._seen_at = 0.0

    def observe(self, event_time: float) -> None:
        """Note the time of an event (older events do not move the clock back)."""
        if self._event is None or event_time > self._event:
            self._event = event_time
            self._seen_at = self._wall()

    def now(self) -> float | None:
        """Current event time, or None before any event."""
        if self._event is None:
            return None
        return self._event + max(0.0, self._wall() - self._seen_at)
