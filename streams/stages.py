"""What the agents do with a message: decode, dead-letter the bad, detect on the good.

The pipeline holds the pure stages (decoders, detectors, incident engine) and a
:class:`Publisher` for the output topics, so it can be driven by the Faust agents or by a
benchmark without Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from detectors.events import LogEvent, MetricEvent
from ingest.contract import Decoded, decode_logs, decode_metrics
from ingest.exceptions import DecodeError
from streams.config import Settings
from streams.deadletter import DeadLetter, Origin
from streams.observability import (
    EVENTS_ACCEPTED,
    EVENTS_DEADLETTERED,
    MESSAGES_CONSUMED,
)

log = logging.getLogger(__name__)


class Publisher:
    """Where the pipeline's output goes (Kafka topics in the worker)."""

    async def dead_letter(self, letter: DeadLetter) -> None:
        raise NotImplementedError

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        raise NotImplementedError


class Pipeline:
    """Decoding and detection for one worker.

    Parameters
    ----------
    settings
        The worker's settings.
    publisher
        Output side; set by the app when it is created.
    """

    def __init__(self, *, settings: Settings, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.publisher = publisher or Publisher()
        self.max_bytes = settings.worker.max_message_bytes
        self._accepted = {settings.topics.metrics: 0, settings.topics.logs: 0}

    def health(self) -> dict[str, Any]:
        return {"accepted": dict(self._accepted)}

    async def _route_errors(self, decoded: Decoded[Any], origin: Origin, key: bytes | None) -> None:
        for err in decoded.errors:
            await self._dead_letter(
                DeadLetter.from_error(origin, err.error, err.raw, index=err.index, key=key)
            )

    async def _dead_letter(self, letter: DeadLetter) -> None:
        EVENTS_DEADLETTERED.labels(letter.origin.topic, letter.reason).inc()
        log.debug(
            "dead letter from %s/%s/%s: %s",
            letter.origin.topic,
            letter.origin.partition,
            letter.origin.offset,
            letter.detail,
        )
        await self.publisher.dead_letter(letter)

    async def on_metrics_message(
        self, payload: bytes | None, origin: Origin, key: bytes | None
    ) -> None:
        """Handle one message of the metrics topic."""
        MESSAGES_CONSUMED.labels(origin.topic).inc()
        try:
            decoded = decode_metrics(payload or b"", max_bytes=self.max_bytes)
        except DecodeError as exc:
            await self._dead_letter(DeadLetter.from_error(origin, exc, payload or b"", key=key))
            return
        await self._route_errors(decoded, origin, key)
        if decoded.events:
            EVENTS_ACCEPTED.labels(origin.topic).inc(len(decoded.events))
            self._accepted[origin.topic] = self._accepted.get(origin.topic, 0) + len(decoded.events)
            await self.on_metrics(decoded.events, origin)

    async def on_logs_message(
        self, payload: bytes | None, origin: Origin, key: bytes | None
    ) -> None:
        """Handle one message of the logs topic."""
        MESSAGES_CONSUMED.labels(origin.topic).inc()
        try:
            decoded = decode_logs(payload or b"", max_bytes=self.max_bytes)
        except DecodeError as exc:
            await self._dead_letter(DeadLetter.from_error(origin, exc, payload or b"", key=key))
            return
        await self._route_errors(decoded, origin, key)
        if decoded.events:
            EVENTS_ACCEPTED.labels(origin.topic).inc(len(decoded.events))
            self._accepted[origin.topic] = self._accepted.get(origin.topic, 0) + len(decoded.events)
            await self.on_logs(decoded.events, origin)

    async def on_metrics(self, events: Sequence[MetricEvent], origin: Origin) -> None:
        """Valid metric events, in order; detection plugs in here."""

    async def on_logs(self, events: Sequence[LogEvent], origin: Origin) -> None:
        """Valid log events, in order; detection plugs in here."""
