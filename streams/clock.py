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

    def idle_for(self) -> float:
        """Wall seconds since the clock last moved forward."""
        return self._wall() - self._seen_at if self._event is not None else float("inf")


class Watermark:
    """Event time up to which every input has been processed: the slowest active input.

    Inputs are named freely (one per topic partition in the worker) and appear when first
    observed. Inputs idle for longer than ``idle_s`` (wall time) do not hold the others back.

    >>> wall = [0.0]
    >>> mark = Watermark(idle_s=30, wall=lambda: wall[0])
    >>> mark.observe("metrics/0", 1000.0); mark.observe("metrics/1", 400.0)
    >>> mark.now()
    400.0
    >>> wall[0] = 60.0; mark.observe("metrics/0", 1060.0)
    >>> mark.now()  # partition 1 went quiet: it no longer holds time back
    1060.0
    """

    def __init__(self, *, idle_s: float = 30.0, wall: Callable[[], float] = time.monotonic) -> None:
        self.clocks: dict[str, EventClock] = {}
        self.idle_s = idle_s
        self._wall = wall

    def observe(self, source: str, event_time: float) -> None:
        clock = self.clocks.get(source)
        if clock is None:
            clock = self.clocks[source] = EventClock(self._wall)
        clock.observe(event_time)

    def now(self) -> float | None:
        """The watermark, or None before any event."""
        readings = [(c.now(), c.idle_for()) for c in self.clocks.values()]
        seen = [(t, idle) for t, idle in readings if t is not None]
        if not seen:
            return None
        active = [t for t, idle in seen if idle < self.idle_s]
        return min(active) if active else max(t for t, _ in seen)
