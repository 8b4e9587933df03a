"""What the agents do with a message: decode, dead-letter the bad, detect, correlate.

The :class:`Pipeline` holds the pure stages (decoders, detectors, incident engine), a
:class:`Publisher` for the output topics and a :class:`CheckpointStore` for detector state,
so the Faust agents stay thin and the same code runs in benchmarks without Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import orjson

from detectors.anomaly import Anomaly, SignalKind
from detectors.events import AlertEvent, LogEvent, MetricEvent
from detectors.forecast import ForecastMonitor
from detectors.forecast import StateError as ForecastStateError
from detectors.logs import LogMonitor
from detectors.logs.exceptions import StateError as LogStateError
from detectors.metric import MetricMonitor
from detectors.metric import StateError as MetricStateError
from ingest.alerts import AlertSource, alert_anomaly, decode_alert_message
from ingest.contract import Decoded
from ingest.exceptions import DecodeError
from ingest.formats.cumulative import CumulativeState
from ingest.logs import decode_log_message
from ingest.metrics import decode_metric_message
from notify.chart import SeriesWindow, series_record
from rca.engine import IncidentEngine, Outcome
from rca.exceptions import StateError as EngineStateError
from rca.remediation import load_remediation_rules
from rca.silences import load_silences
from rca.topology import load_topology
from streams.clock import Watermark
from streams.config import Settings
from streams.control import InvalidCommand, apply_command_checked
from streams.deadletter import DeadLetter, Origin, element_letters
from streams.observability import (
    ACTIONS,
    ANOMALIES,
    EVENTS_ACCEPTED,
    EVENTS_DEADLETTERED,
    INCIDENT_CHANGES,
    INCIDENTS_OPEN,
    LOG_LINES_UNMINED,
    LOG_SERVICES_TRACKED,
    MESSAGES_CONSUMED,
    PROCESSING_SECONDS,
    SERIES_REJECTED,
    SERIES_RESTORED,
    SERIES_TRACKED,
)
from streams.records import InputRecord
from streams.topics import correlation_topic

log = logging.getLogger(__name__)

E = TypeVar("E", MetricEvent, LogEvent, AlertEvent)

ENGINE_KEY = "engine"
SOURCE_IDLE_S = 30.0  # a source not reported for this long no longer holds time back
ENGINE_FEED_MAX = 500_000
SLICE_BYTES = 256 * 1024
"""A batch of input records is decoded and handled in slices of about this many bytes,
with the event loop let in between, so that a batch of large messages (1,000 events each)
does not hold up the worker's timers, web requests and heartbeats for seconds."""
ENGINE_FEED_SLICE = 5_000  # samples fed to the engine between two yields to the loop
QUIET_LOG_STREAM_S = 5.0
CHECKPOINT_SLICE = 2_000  # series checkpoints written per batch or tick


class Publisher(Protocol):
    """Where the pipeline's output goes (Kafka topics in the worker)."""

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Hand a dead letter to the producer."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Hand a record for an output topic to the producer."""

    async def flush(self) -> None:
        """Wait until the broker has everything handed over so far (the input offsets are
        committed after this)."""


class CheckpointStore(Protocol):
    """Durable detector state by key (a changelog-backed table in the worker)."""

    def get(self, store: str, key: str) -> bytes | None: ...

    def put(self, store: str, key: str, value: bytes, partition: int) -> None: ...

    def delete(self, store: str, key: str, partition: int) -> None: ...


def _slices(records: Sequence[InputRecord], size: int) -> list[Sequence[InputRecord]]:
    """``records`` cut into runs of about ``size`` bytes of values (at least one record each).

    >>> from streams.records import InputRecord
    >>> rs = [InputRecord(i, None, b"x" * 100) for i in range(5)]
    >>> [len(s) for s in _slices(rs, 250)]
    [3, 2]
    """
    out: list[Sequence[InputRecord]] = []
    start = total = 0
    for i, record in enumerate(records):
        total += len(record.value or b"")
        if total >= size:
            out.append(records[start : i + 1])
            start, total = i + 1, 0
    if start < len(records):
        out.append(records[start:])
    return out


class Pipeline:
    """Decoding, detection and correlation for one worker.

    Parameters
    ----------
    settings
        The worker's settings.
    publisher
        Output side.
    checkpoints
        Where detector and engine state is saved so a restarted worker resumes.
    engine
        The incident engine (built from the settings when not given).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        publisher: Publisher,
        checkpoints: CheckpointStore,
        engine: IncidentEngine | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.checkpoints = checkpoints
        self.max_bytes = settings.worker.max_message_bytes
        self.max_dead_letters = settings.worker.max_dead_letters_per_message
        det = settings.detection
        self.metrics = MetricMonitor(det.metrics)
        self.forecasts = ForecastMonitor(det.forecast)
        self.logs = LogMonitor(det.logs)
        inc = settings.incidents
        self.config_silences = load_silences(inc.silences_file) if inc.silences_file else []
        self.engine = engine or IncidentEngine(
            config=inc.engine,
            topology=load_topology(inc.topology_file) if inc.topology_file else None,
            rules=load_remediation_rules(inc.remediation_file) if inc.remediation_file else (),
            silences=self.config_silences,
        )
        self.cumulative = CumulativeState()
        self.headers = settings.ingest.logs.header_learner()
        self.clock = Watermark()  # over every input partition
        # Progress of every input partition, as reported on the correlation stream by the
        # worker that owns it: source -> (event time, wall time of the report).
        self._progress: dict[str, tuple[float, float]] = {}
        self.correlation_topic = correlation_topic(settings)
        # Raw samples for the engine's baselines, fed in step with the anomalies it sees
        # (the engine must not see a series' future before the anomaly that starts it).
        # One queue per input partition: partitions run at different speeds, and each
        # must be fed up to the same event time.
        self._engine_feed: dict[int, deque[MetricEvent]] = {}
        self._series_partition: dict[str, int] = {}
        # Forecast and SLO states by the input partition they are fed from. A burn-rate
        # tracker sums the series of one service, which share a partition when the input is
        # keyed by service (as recommended); its checkpoint follows them.
        self._forecast_partition: dict[str, int] = {}
        self._service_partition: dict[str, int] = {}
        self._log_seen: dict[str, tuple[float, float]] = {}  # service -> (event time, wall)
        self._engine_partition: int | None = None
        self._last_checkpoint = time.monotonic()
        self._checkpoint_queue: list[str] = []  # series whose checkpoint is due
        self._rejected_seen = 0
        self._unmined_seen = {"template_cap": 0, "service_cap": 0}
        self.accepted: dict[str, int] = {}
        self.positions: dict[tuple[str, int], int] = {}  # next offset to process, per input
        self.window = SeriesWindow(settings.slack.chart)  # recent points for charts
        self._series_sent: dict[str, float] = {}  # fingerprint -> its latest point published
        self._series_due = time.monotonic()

    def health(self) -> dict[str, Any]:
        return {
            "accepted": dict(self.accepted),
            "series": self.metrics.stats.series,
            "log_services": len(self.logs.services()),
            "open_incidents": len(self.engine.open_incidents),
        }

    # -- input ---------------------------------------------------------------------------

    async def _dead_letter(self, letter: DeadLetter) -> None:
        EVENTS_DEADLETTERED.labels(letter.origin.topic, letter.reason).inc(letter.count)
        log.debug("dead letter %s: %s", letter.record_key(), letter.detail)
        await self.publisher.dead_letter(letter)

    async def _decode_records(
        self,
        topic: str,
        partition: int,
        records: Sequence[InputRecord],
        decode: Callable[[InputRecord], Decoded[E]],
    ) -> list[E]:
        """Decode records in order; dead-letter what is bad, count and return the rest."""
        events: list[E] = []
        for record in records:
            try:
                decoded = decode(record)
            except DecodeError as exc:
                origin = Origin(topic, partition, record.offset)
                letter = DeadLetter.from_error(origin, exc, record.value or b"", key=record.key)
                await self._dead_letter(letter)
                continue
            if decoded.errors:
                origin = Origin(topic, partition, record.offset)
                for letter in element_letters(
                    origin, decoded.errors, key=record.key, limit=self.max_dead_letters
                ):
                    await self._dead_letter(letter)
            events.extend(decoded.events)
        if events:
            EVENTS_ACCEPTED.labels(topic).inc(len(events))
            self.accepted[topic] = self.accepted.get(topic, 0) + len(events)
        return events

    def _decode_metrics(self, record: InputRecord) -> Decoded[MetricEvent]:
        return decode_metric_message(
            record.value or b"",
            config=self.settings.ingest.metrics,
            max_bytes=self.max_bytes,
            state=self.cumulative,
        )

    def _decode_logs(self, record: InputRecord) -> Decoded[LogEvent]:
        # a stream of raw lines: one producer's key (unkeyed lines are one stream)
        key = record.key.decode("utf-8", "replace") if record.key else ""
        return decode_log_message(
            record.value or b"",
            config=self.settings.ingest.logs,
            max_bytes=self.max_bytes,
            received_at=record.timestamp,
            headers=self.headers,
            stream=key,
        )

    async def on_metrics_records(
        self, topic: str, partition: int, records: Sequence[InputRecord]
    ) -> None:
        """Handle consecutive records of one partition of the metrics topic."""
        await self._on_records(topic, partition, records, self._decode_metrics, self.on_metrics)

    def _decode_alerts(self, record: InputRecord) -> Decoded[AlertEvent]:
        return decode_alert_message(
            record.value or b"",
            config=self.settings.ingest.alerts,
            max_bytes=self.max_bytes,
            received_at=record.timestamp if record.timestamp is not None else time.time(),
        )

    async def on_alerts_records(
        self, topic: str, partition: int, records: Sequence[InputRecord]
    ) -> None:
        """Handle consecutive records of one partition of the alerts topic."""
        await self._on_records(topic, partition, records, self._decode_alerts, self.on_alerts)

    async def on_alerts(self, events: Sequence[AlertEvent], partition: int) -> None:
        """Alerts of other tools: each becomes an alert record of the incident engine."""
        window = self.settings.incidents.engine.correlation.window_s
        await self._publish_anomalies(alert_anomaly(e, window_s=window) for e in events)
        if events:
            self.clock.observe(f"alerts/{partition}", max(e.received_at for e in events))

    def check_alerts(self, body: bytes, source: AlertSource) -> Decoded[AlertEvent]:
        """Decode a webhook body as the alerts agent will (raises :class:`DecodeError`)."""
        return decode_alert_message(
            body,
            config=self.settings.ingest.alerts,
            max_bytes=self.settings.worker.max_request_bytes,
            received_at=time.time(),
            source=source,
        )

    async def on_logs_records(
        self, topic: str, partition: int, records: Sequence[InputRecord]
    ) -> None:
        """Handle consecutive records of one partition of the logs topic."""
        await self._on_records(topic, partition, records, self._decode_logs, self.on_logs)

    async def _on_records(
        self,
        topic: str,
        partition: int,
        records: Sequence[InputRecord],
        decode: Callable[[InputRecord], Decoded[E]],
        handle: Callable[[list[E], int], Awaitable[None]],
    ) -> None:
        if not records:
            return
        MESSAGES_CONSUMED.labels(topic).inc(len(records))
        with PROCESSING_SECONDS.labels(topic).time():
            for part in _slices(records, SLICE_BYTES):
                events = await self._decode_records(topic, partition, part, decode)
                await handle(events, partition)
                if len(part) < len(records):
                    await asyncio.sleep(0)  # a large batch lets timers and requests in
            await self.publisher.flush()
        self.positions[(topic, partition)] = records[-1].offset + 1
        await asyncio.sleep(0)  # let timers and web requests in between batches

    # -- detection -----------------------------------------------------------------------

    def _resume_series(self, key: str) -> None:
        state = self.checkpoints.get("metrics", key)
        if state is not None:
            before = self.metrics.stats
            try:
                self.metrics.restore(key, state)
                SERIES_RESTORED.inc()
            except MetricStateError as exc:
                log.warning("series %s starts afresh: unreadable checkpoint (%s)", key, exc)
                return
            after = self.metrics.stats
            if after.rewarmed > before.rewarmed:
                log.warning(
                    "series %s: its checkpoint is of robust_likelihood with other parameters; "
                    "it starts a new warm-up as the ensemble",
                    key,
                )
            elif after.upgraded > before.upgraded and after.upgraded == 1:
                log.info(
                    "series checkpointed by robust_likelihood go on as the ensemble, keeping "
                    "their baselines (first: %s)",
                    key,
                )

    def _resume_forecast(self, key: str, partition: int) -> None:
        """Restore a predictor or burn-rate tracker before its first event since it was
        last in memory; its checkpoints go to ``partition``, the input it is fed from."""
        state = self.checkpoints.get("forecast", key)
        if state is not None:
            try:
                self.forecasts.restore(key, state)
            except ForecastStateError as exc:
                log.warning("forecast %s starts afresh: %s", key, exc)
        self._forecast_partition[key] = partition

    async def on_metrics(self, events: Sequence[MetricEvent], partition: int) -> None:
        """Valid metric events, in order: detect, forecast, remember for ranking."""
        found: list[Anomaly] = []
        known = self._series_partition
        feed = self._engine_feed.get(partition)
        if feed is None:
            feed = self._engine_feed[partition] = deque(maxlen=ENGINE_FEED_MAX)
        monitor = self.metrics
        refused_before = monitor.stats.rejected_by_cap
        new_keys = []
        for event in events:
            key = event.series_key
            if key not in known and not monitor.at_capacity:
                self._resume_series(key)
                known[key] = partition
                new_keys.append(key)
        found.extend(monitor.process_many(events))
        if monitor.stats.rejected_by_cap > refused_before:
            # series refused at max_series go no further: nothing about them is kept, so
            # memory stays bounded by the cap whatever the number of series sent
            for key in new_keys:
                if not monitor.tracks(key):
                    del known[key]
            events = [e for e in events if e.series_key in known]
        forecasts = self.forecasts
        if forecasts.config.rules or forecasts.config.burn_rates:
            for event in events:
                for fkey in forecasts.unloaded_keys(event):
                    self._resume_forecast(fkey, partition)
                found.extend(forecasts.process(event))
        feed.extend(events)
        observe = self.window.observe
        for event in events:
            observe(event)
        if events:
            self.clock.observe(f"metrics/{partition}", max(e.timestamp for e in events))
        await self._publish_anomalies(found)
        self._maybe_checkpoint()

    async def on_logs(self, events: Sequence[LogEvent], partition: int) -> None:
        """Valid log events, in order: templates, novelty, rates, bursts."""
        found: list[Anomaly] = []
        for event in events:
            if event.service not in self._service_partition:
                if not self.logs.keeps(event.service):  # past max_services: counted there
                    found.extend(self.logs.process(event))
                    continue
                state = self.checkpoints.get("logs", event.service)
                if state is not None:
                    try:
                        self.logs.restore(event.service, state)
                    except LogStateError as exc:
                        log.warning("log stream %s starts afresh: %s", event.service, exc)
                self._service_partition[event.service] = partition
            self._log_seen[event.service] = (event.timestamp, time.monotonic())
            found.extend(self.logs.process(event))
        if events:
            self.clock.observe(f"logs/{partition}", max(e.timestamp for e in events))
        await self._publish_anomalies(found)
        self._maybe_checkpoint()

    async def _publish_anomalies(self, anomalies: Iterable[Anomaly]) -> None:
        for anomaly in anomalies:
            ANOMALIES.labels(str(anomaly.kind), anomaly.detector).inc()
            if anomaly.kind is SignalKind.METRIC:
                self.window.mark(anomaly)
            record = orjson.dumps(anomaly.to_dict())
            await self.publisher.publish("anomalies", anomaly.service.encode(), record)
            await self.publisher.publish("correlate", anomaly.service.encode(), record)

    # -- correlation ---------------------------------------------------------------------

    def on_partitions_revoked(self, revoked: Iterable[tuple[str, int]]) -> None:
        """Forget the engine when its partition moves to another worker: if it comes back,
        the engine is restored from the changelog, which is then newer than ours."""
        if self._engine_partition is not None and (
            (self.correlation_topic, self._engine_partition) in set(revoked)
        ):
            self._engine_partition = None

    def _resume_engine(self, partition: int) -> None:
        if self._engine_partition == partition:
            return
        state = self.checkpoints.get("engine", f"{ENGINE_KEY}-{partition}")
        if state is not None:
            try:
                self.engine = IncidentEngine.load_state(
                    state,
                    config=self.engine.config,
                    topology=self.engine.topology,
                    rules=self.engine.planner.rules,
                    silences=self.config_silences,
                )
            except EngineStateError as exc:
                log.error("incident engine starts afresh: unreadable checkpoint (%s)", exc)
        self._engine_partition = partition

    async def on_correlate_record(self, payload: bytes, partition: int, offset: int = -1) -> None:
        """One record of the correlation stream: an anomaly, or a worker's progress report.

        Every worker writes its anomalies and then, each tick, how far it has read each of
        its input partitions, into the same stream. Read in order, a progress report
        promises that the reporter's anomalies up to that time are already in: the engine
        time is the slowest partition's progress, whichever worker owns it.
        """
        self._resume_engine(partition)
        try:
            data = orjson.loads(payload)
            if data.get("type") == "progress":
                wall = time.monotonic()
                for source, at in data["sources"].items():
                    self._progress[str(source)] = (float(at), wall)
                now = self.engine_time()
                if now is not None:
                    await self._advance_engine(now, partition)
                    await self.publisher.flush()
                return
            anomaly = Anomaly.from_dict(data)
        except (orjson.JSONDecodeError, AttributeError, KeyError, ValueError, TypeError) as exc:
            origin = Origin(self.correlation_topic, partition, offset)
            reason = "invalid_json" if isinstance(exc, orjson.JSONDecodeError) else "not_an_event"
            await self._dead_letter(
                DeadLetter(origin, reason, f"unreadable correlation record: {exc}", payload)
            )
            return
        await self._feed_engine(up_to=anomaly.timestamp)
        await self._publish_outcome(self.engine.on_anomaly(anomaly), partition)
        await self.publisher.flush()

    def engine_time(self) -> float | None:
        """Event time up to which every input partition's anomalies have arrived."""
        wall = time.monotonic()
        reports = list(self._progress.values())
        if not reports:
            return None
        active = [at for at, seen in reports if wall - seen < SOURCE_IDLE_S]
        return min(active) if active else max(at for at, _ in reports)

    async def on_control_record(self, payload: bytes, partition: int, offset: int = -1) -> None:
        """One command of the control topic (silence, acknowledge, approve, reject, …); one
        the engine cannot apply is dead-lettered with the reason."""
        self._resume_engine(partition)
        try:
            outcome = apply_command_checked(self.engine, payload, now=self.engine_time())
        except InvalidCommand as exc:
            log.warning("control command not applied, dead-lettered: %s", exc)
            origin = Origin(self.settings.topics.control, partition, offset)
            await self._dead_letter(DeadLetter(origin, exc.reason, exc.detail, payload))
            return
        await self._publish_outcome(outcome, partition)
        await self.publisher.flush()

    async def _publish_outcome(self, outcome: Outcome, partition: int | None) -> None:
        for incident in outcome.incidents:
            INCIDENT_CHANGES.labels(str(incident.state)).inc()
            await self.publisher.publish(
                "incidents", incident.id.encode(), orjson.dumps(incident.to_dict())
            )
        for action in outcome.actions:
            ACTIONS.labels(str(action.action), str(action.mode)).inc()
            await self.publisher.publish(
                "actions", action.incident_id.encode(), orjson.dumps(action.to_dict())
            )
        INCIDENTS_OPEN.set(len(self.engine.open_incidents))
        if outcome and partition is not None:
            self.checkpoints.put(
                "engine",
                f"{ENGINE_KEY}-{partition}",
                # the raw-sample rings are rebuilt from live data; a checkpoint without them
                # stays small enough to write on every change
                self.engine.dump_state(include_history=False),
                partition,
            )

    # -- time ------------------------------------------------------------------------------

    def now(self) -> float | None:
        """Event time of this worker's inputs (the slowest active partition)."""
        return self.clock.now()

    async def tick(self) -> None:
        """Time-driven work: log buckets, progress report, idle series, checkpoints."""
        now = self.now()
        if now is None:
            return
        await self._publish_anomalies(self._tick_quiet_log_streams())
        await self._report_progress()
        for key in self.metrics.evict_idle(now):
            partition = self._series_partition.pop(key, None)
            if partition is not None:
                self.checkpoints.delete("metrics", key, partition)
        gone, closing = self.forecasts.evict_idle(now)
        for key in gone:
            partition = self._forecast_partition.pop(key, None)
            if partition is not None:
                self.checkpoints.delete("forecast", key, partition)
        await self._publish_anomalies(closing)
        stats = self.metrics.stats
        SERIES_TRACKED.set(stats.series)
        if stats.rejected_by_cap > self._rejected_seen:
            SERIES_REJECTED.inc(stats.rejected_by_cap - self._rejected_seen)
            self._rejected_seen = stats.rejected_by_cap
        logs = self.logs.stats
        LOG_SERVICES_TRACKED.set(logs.services)
        for cause, total in (
            ("template_cap", logs.template_cap_hits),
            ("service_cap", logs.services_rejected),
        ):
            if total > self._unmined_seen[cause]:
                LOG_LINES_UNMINED.labels(cause).inc(total - self._unmined_seen[cause])
                self._unmined_seen[cause] = total
        await self._publish_series()
        self._maybe_checkpoint()
        await self.publisher.flush()

    async def _publish_series(self) -> None:
        """Every ``series_interval_s``, the points of each series with a recent anomaly that
        gained points since it was last published, keyed by its fingerprint: consoles draw
        from them the chart that the Slack thread gets."""
        wall = time.monotonic()
        if wall < self._series_due:
            return
        self._series_due = wall + self.settings.worker.series_interval_s
        marked = self.window.marked()
        sent = self._series_sent
        for fingerprint in marked:
            series = self.window.points(fingerprint)
            if series is None or sent.get(fingerprint) == series.times[-1]:
                continue
            sent[fingerprint] = float(series.times[-1])
            value = orjson.dumps(series_record(fingerprint, series))
            await self.publisher.publish("series", fingerprint.encode(), value)
        if len(sent) > 2 * len(marked):
            keep = set(marked)
            self._series_sent = {fp: t for fp, t in sent.items() if fp in keep}

    async def _advance_engine(self, now: float, partition: int) -> None:
        """Bring the engine to ``now`` in event-time steps, feeding the raw samples of each
        step before it: a worker catching up on a backlog (or a replay) makes the same
        decisions, at the same event times, as one that kept up live."""
        step = self.settings.incidents.step_s
        at = self.engine.now + step if math.isfinite(self.engine.now) else now
        while at < now:
            await self._feed_engine(up_to=at)
            await self._publish_outcome(self.engine.tick(at), partition)
            at += step
        await self._feed_engine(up_to=now)
        await self._publish_outcome(self.engine.tick(now), partition)

    def _tick_quiet_log_streams(self) -> list[Anomaly]:
        """Close the buckets of log streams that went quiet, on their own clock (their last
        line's time plus the wall time since). Streams still sending close their buckets
        themselves: a global clock would close them early when partitions run at
        different speeds (a backlog, a replay)."""
        wall = time.monotonic()
        found: list[Anomaly] = []
        for service, (last, seen_at) in self._log_seen.items():
            idle = wall - seen_at
            if idle >= QUIET_LOG_STREAM_S:
                found.extend(self.logs.tick(last + idle, services=[service]))
        return found

    async def _feed_engine(self, up_to: float) -> None:
        fed = 0
        for feed in self._engine_feed.values():
            while feed and feed[0].timestamp <= up_to:
                self.engine.on_metric(feed.popleft())
                fed += 1
                if fed % ENGINE_FEED_SLICE == 0:
                    await asyncio.sleep(0)  # a long backlog must not hold the loop

    async def _report_progress(self) -> None:
        """Tell the correlation stream how far this worker has read its input partitions
        (after the anomalies it published, so the order says they are all in)."""
        sources = {
            source: at
            for source, clock in self.clock.clocks.items()
            if clock.idle_for() < SOURCE_IDLE_S and (at := clock.now()) is not None
        }
        if sources:
            record = orjson.dumps({"type": "progress", "sources": sources})
            await self.publisher.publish("correlate", b"progress", record)

    def _maybe_checkpoint(self, force: bool = False) -> None:
        interval = self.settings.detection.checkpoint_interval_s
        if force or time.monotonic() - self._last_checkpoint >= interval:
            self.checkpoint()
        elif self._checkpoint_queue:
            self._write_series_checkpoints(CHECKPOINT_SLICE)

    def checkpoint(self) -> None:
        """Save the state of every series and log stream changed since the last one.

        Metric series are written in slices of :data:`CHECKPOINT_SLICE`, one slice per
        batch or tick, so that a worker with many series does not stop for seconds to
        write them all at once.
        """
        self._last_checkpoint = time.monotonic()
        self._checkpoint_queue.extend(self.metrics.take_dirty())
        self._write_series_checkpoints(CHECKPOINT_SLICE)
        for service, state in self.logs.dirty_states():
            self.checkpoints.put("logs", service, state, self._service_partition.get(service, 0))
        for key, state in self.forecasts.dirty_states():
            self.checkpoints.put("forecast", key, state, self._forecast_partition.get(key, 0))

    def _write_series_checkpoints(self, limit: int | None = None) -> None:
        queue = self._checkpoint_queue
        take = len(queue) if limit is None else min(limit, len(queue))
        for key in queue[len(queue) - take :]:
            state = self.metrics.state_of(key)
            partition = self._series_partition.get(key)
            if state is not None and partition is not None:
                self.checkpoints.put("metrics", key, state, partition)
        del queue[len(queue) - take :]

    def flush_checkpoints(self) -> None:
        """Write every pending checkpoint now (on a clean stop)."""
        self.checkpoint()
        self._write_series_checkpoints()
