"""The Faust application: topics, agents and web views, wired in one place.

Agents stay thin: decode with :mod:`ingest`, hand events to the pure stages in
:mod:`streams.stages`, publish what comes back.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, cast

import faust
import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from ingest.alerts import AlertSource, split_alert_body
from ingest.exceptions import DecodeError
from notify.base import Counts, IncidentNotifier
from notify.exceptions import NotifierUnavailable
from notify.pagerduty import PagerDutyNotifier
from notify.slack.delivery import SlackNotifier
from notify.slack.interactions import InteractionHandler
from notify.slack.state import MappingStateStore
from notify.webhook import WebhookNotifier
from rca.model import Incident
from streams.config import Settings
from streams.control import slack_command
from streams.deadletter import DeadLetter, Origin
from streams.kafka_clients import ssl_context
from streams.observability import (
    CONSUMER_LAG,
    EVENTS_DEADLETTERED,
    NOTIFICATIONS,
    REGISTRY,
    SLACK_DELIVERIES,
)
from streams.records import InputRecord
from streams.stages import Pipeline
from streams.topics import correlation_topic
from streams.transport import Consumer as TransportConsumer
from streams.transport import batch_records

log = logging.getLogger(__name__)

STRANDED_CHECK_S = 10.0
"""How often the consumer looks for fetched input records that never reached a stream."""

NOTIFY_BATCH = 200
LAG_INTERVAL_S = 10.0
NOTIFY_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)


async def deliver_until_done(notifier: IncidentNotifier, snapshots: list[Incident]) -> None:
    """Deliver a batch, waiting out the receiver's outages (nothing is acknowledged
    meanwhile); count its calls in ``aiops_notifications_total`` (and Slack's in
    ``aiops_slack_deliveries_total``)."""
    attempt = 0
    while True:
        try:
            report = await notifier.deliver(snapshots)
        except NotifierUnavailable as exc:
            delay = NOTIFY_RETRY_S[min(attempt, len(NOTIFY_RETRY_S) - 1)]
            log.warning("%s unavailable (%s); retrying in %.0fs", notifier.name, exc, delay)
            _count(notifier.name, {("any", "unavailable"): 1})
            attempt += 1
            await asyncio.sleep(delay)
            continue
        _count(notifier.name, report.counts())
        return


def _count(name: str, counts: Counts) -> None:
    for (call, outcome), count in counts.items():
        NOTIFICATIONS.labels(name, call, outcome).inc(count)
        if name == "slack":
            SLACK_DELIVERIES.labels(call, outcome).inc(count)


def outbox_agent(notifier: IncidentNotifier) -> Callable[[faust.StreamT], Awaitable[None]]:
    """An agent that hands batches of incident snapshots to ``notifier``."""

    async def agent(stream: faust.StreamT) -> None:
        async for batch in stream.take(NOTIFY_BATCH, within=1.0):
            snapshots = [Incident.from_dict(orjson.loads(value)) for value in batch]
            await deliver_until_done(notifier, snapshots)

    return agent


def _broker_url(settings: Settings) -> str:
    hosts = ";".join(h.strip() for h in settings.kafka.bootstrap.split(","))
    return f"aiops://{hosts}"  # streams.transport: Faust's driver with a short fetch wait


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=ssl_context(kafka),
        )
    context = ssl_context(kafka)
    return faust.SSLCredentials(context) if context is not None else None


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic whose keys and values are bytes, passed through as they are."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def manual_acks(stream: faust.StreamT) -> faust.StreamT:
    """The same stream, acknowledged by the agent (``Stream.noack``, not in ``StreamT``)."""
    return cast(faust.Stream[Any], stream).noack()


def batch_agent(
    handle: Callable[[str, int, list[InputRecord]], Awaitable[None]],
) -> Callable[[faust.StreamT], Awaitable[None]]:
    """An agent for an input topic that arrives as record batches (streams.transport).

    Each batch is acknowledged as soon as it is processed (Faust would only do it when the
    next one arrives), so a clean stop commits everything done and nothing is read twice.
    """

    async def agent(stream: faust.StreamT) -> None:
        batches = manual_acks(stream)
        async for event in batches.events():
            msg = event.message
            await handle(msg.topic, msg.partition, batch_records(msg))
            await batches.ack(event)

    return agent


class FaustPublisher:
    """Publishes to the output topics through the app's producer.

    Sends are handed to the producer at once and awaited together in :meth:`flush`, which
    the pipeline calls before its input is acknowledged: one broker round trip per batch,
    not per record.
    """

    def __init__(self, app: faust.App, settings: Settings) -> None:
        t = settings.topics
        self._pending: list[Any] = []
        self.deadletter_topic = raw_topic(app, t.deadletter)
        self.anomalies_topic = raw_topic(app, t.anomalies)
        self.incidents_topic = raw_topic(app, t.incidents)
        self.actions_topic = raw_topic(app, t.actions)
        self.control_topic = raw_topic(app, t.control)
        self.series_topic = raw_topic(app, t.series)
        self.correlate_topic = raw_topic(app, correlation_topic(settings))
        self.alerts_topic = raw_topic(app, t.alerts)

    async def dead_letter(self, letter: DeadLetter) -> None:
        fut = await self.deadletter_topic.send(
            key=letter.record_key(), value=letter.original, headers=letter.headers()
        )
        self._pending.append(fut)

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        target = {
            "anomalies": self.anomalies_topic,
            "incidents": self.incidents_topic,
            "actions": self.actions_topic,
            "control": self.control_topic,
            "series": self.series_topic,
            "correlate": self.correlate_topic,
        }[topic]
        self._pending.append(await target.send(key=key, value=value))

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def deliver_alerts(self, key: bytes, value: bytes) -> None:
        """Write one alerts message and wait until the broker has it."""
        await (await self.alerts_topic.send(key=key, value=value))

    async def deliver_dead_letter(self, letter: DeadLetter) -> None:
        """Write one dead letter and wait until the broker has it."""
        await (
            await self.deadletter_topic.send(
                key=letter.record_key(), value=letter.original, headers=letter.headers()
            )
        )


class TableCheckpoints:
    """Detector and engine state in changelog-backed Faust tables, one per store.

    The engine's state is read on every restart of the engine (not popped), the detectors'
    once per series.

    Writes name their partition explicitly (the partition the series' input came from), so
    they are valid from timers too, and a worker that takes over a partition recovers
    exactly the state of the series it now owns.
    """

    def __init__(self, tables: dict[str, Any]) -> None:
        self.tables = tables

    def get(self, store: str, key: str) -> bytes | None:
        # A recovered checkpoint is read once, when its series comes back to life, and is
        # then the live detector's business: drop the local copy to save memory.
        value = self.tables[store].data.pop(key, None)
        return value if isinstance(value, bytes) else None

    def put(self, store: str, key: str, value: bytes, partition: int) -> None:
        # Only the changelog keeps it: a restarted worker, or one that takes the partition
        # over, recovers it from there.
        self.tables[store].send_changelog(partition, key, value)

    def delete(self, store: str, key: str, partition: int) -> None:
        self.tables[store].data.pop(key, None)
        self.tables[store].send_changelog(partition, key, None)


class KeyPartitionedTable(MutableMapping[str, bytes]):
    """A Faust table written from outside stream iteration (e.g. after ``stream.take``):
    each change goes to the changelog partition the producer's default partitioner picks
    from the key, which is the partition of the same key on a topic with as many partitions.

    The partition is computed from the table's partition count, not left to Faust: Faust
    would take the count from the producer's metadata, and a broker that has just started
    may not list the changelog topic there yet (the write then fails with a ``TypeError``).
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._partitions = list(range(table.partitions))

    def partition(self, key: str) -> int:
        """The changelog partition of ``key``, hashed as the table serializes it."""
        topic = self.table.changelog_topic
        wire_key, _ = topic.prepare_key(key, self.table.key_serializer, None, {})
        return int(DefaultPartitioner()(wire_key, self._partitions, self._partitions))

    def __getitem__(self, key: str) -> bytes:
        value = self.table.data[key]
        if not isinstance(value, bytes):
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: bytes) -> None:
        self.table.data[key] = value
        self.table.send_changelog(self.partition(key), key, value)

    def __delitem__(self, key: str) -> None:
        del self.table.data[key]
        self.table.send_changelog(self.partition(key), key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.data)

    def __len__(self) -> int:
        return len(self.table.data)


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app from the settings."""
    worker = settings.worker
    t = settings.topics
    app = faust.App(
        worker.app_id,
        broker=_broker_url(settings),
        broker_credentials=_credentials(settings),
        broker_client_id=settings.kafka.client_id,
        datadir=worker.datadir,
        web_enabled=True,
        web_host=worker.web_host,
        web_port=worker.web_port,
        web_bind=worker.web_host,
        topic_partitions=t.partitions,
        topic_replication_factor=t.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=worker.commit_interval_s,
        broker_session_timeout=worker.session_timeout_s,  # how soon a dead worker's
        broker_heartbeat_interval=worker.session_timeout_s / 4,  # partitions move
        producer_max_request_size=8 * 1_048_576,
        consumer_max_fetch_size=max(worker.max_message_bytes * 2, 4 * 1_048_576),
        key_serializer="raw",
        value_serializer="raw",
        web_application_options={"client_max_size": worker.max_request_bytes},
        web_graph_enabled=False,
        web_tables_enabled=False,
        stream_wait_empty=False,
    )

    def table(name: str, partitions: int) -> Any:
        return app.Table(
            name,
            key_type=str,
            value_type=bytes,
            partitions=partitions,
        )

    checkpoints = TableCheckpoints(
        {
            "metrics": table("metric-detectors", t.partitions),
            "forecast": table("forecasters", t.partitions),
            "logs": table("log-detectors", t.partitions),
            "engine": table("incident-engine", t.correlation_partitions),
        }
    )
    publisher = FaustPublisher(app, settings)
    pipe = Pipeline(settings=settings, publisher=publisher, checkpoints=checkpoints)

    # The input topics arrive as record batches (streams.transport): one Faust event per
    # fetched chunk of a partition, not per record.
    app.aiops_batch_topics = frozenset(  # type: ignore[attr-defined]
        {t.metrics, t.logs, t.alerts}
    )

    for name, topic, handle in (
        ("metrics", t.metrics, pipe.on_metrics_records),
        ("logs", t.logs, pipe.on_logs_records),
        ("alerts", t.alerts, pipe.on_alerts_records),
    ):
        app.agent(raw_topic(app, topic), name=name)(batch_agent(handle))

    @app.agent(raw_topic(app, correlation_topic(settings)), name="correlate")
    async def correlate_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            await pipe.on_correlate_record(event.value or b"", message.partition, message.offset)

    @app.agent(raw_topic(app, t.control), name="control")
    async def control_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            await pipe.on_control_record(event.value or b"", message.partition, message.offset)

    slack_messages = table("slack-messages", t.partitions)
    notifier = SlackNotifier(
        settings.slack,
        store=MappingStateStore(KeyPartitionedTable(slack_messages)),
        series_window=pipe.window,
    )

    notifiers: list[IncidentNotifier] = [notifier]
    if settings.pagerduty.enabled:
        notifiers.append(PagerDutyNotifier(settings.pagerduty))
    if settings.webhook.enabled:
        notifiers.append(WebhookNotifier(settings.webhook))
    for receiver in notifiers:
        # The incidents topic is each receiver's durable outbox: an agent of its own, whose
        # offsets advance only after delivery.
        app.agent(raw_topic(app, t.incidents), name=receiver.name)(outbox_agent(receiver))

    interactions = (
        InteractionHandler(settings.slack.signing_secret.get_secret_value())
        if settings.slack.signing_secret
        else None
    )

    @app.page("/slack/interactions")
    class SlackInteractionsView(View):
        async def post(self, request: Request) -> Response:
            if interactions is None:
                return self.json({"error": "no signing secret configured"}, status=404)
            result = interactions.handle(dict(request.headers), await request.read())
            if result.command is None:
                return self.json({"error": result.reason}, status=result.status)
            await pipe.publisher.publish("control", b"slack", slack_command(result.command))
            return self.bytes(b"", status=200)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", set())
        pipe.on_partitions_revoked((tp.topic, tp.partition) for tp in revoked)

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # the consumer has stopped; the producer is flushed after this
        pipe.flush_checkpoints()

    @app.timer(settings.incidents.tick_interval_s)
    async def tick() -> None:
        await pipe.tick()

    @app.timer(STRANDED_CHECK_S)
    async def recover_stranded() -> None:
        consumer = app.consumer
        if isinstance(consumer, TransportConsumer):
            await consumer.recover_stranded()

    inputs = {t.metrics, t.logs}

    @app.timer(LAG_INTERVAL_S)
    async def measure_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic not in inputs:
                continue
            done = pipe.positions.get((tp.topic, tp.partition))
            highwater = consumer.highwater(tp)
            if highwater is not None and done is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - done))

    token = worker.api_token.get_secret_value() if worker.api_token else None

    def alerts_view(source: AlertSource, route: str) -> type[View]:
        class AlertsView(View):
            async def post(self, request: Request) -> Response:
                if token is not None and not bearer_ok(request.headers.get("Authorization"), token):
                    return self.json({"error": "missing or wrong bearer token"}, status=401)
                body = await request.read()
                status, answer = await receive_alerts(pipe, publisher, body, source, route)
                return self.json(answer, status=status)

        return AlertsView

    sources: tuple[tuple[AlertSource, str], ...] = (
        ("alertmanager", "/api/alerts/alertmanager"),
        ("grafana", "/api/alerts/grafana"),
        ("json", "/api/alerts"),
    )
    for source, route in sources:
        app.page(route, name=f"alerts-{source}")(alerts_view(source, route))

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(REGISTRY), content_type="text/plain; version=0.0.4")

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "app": worker.app_id, **pipe.health()})

    app.aiops_pipeline = pipe  # type: ignore[attr-defined]
    app.aiops_fetch_max_wait_ms = worker.fetch_max_wait_ms  # type: ignore[attr-defined]
    return app


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token`` (compared in
    constant time).

    >>> bearer_ok("Bearer s3cret", "s3cret"), bearer_ok("Bearer no", "s3cret")
    (True, False)
    >>> bearer_ok(None, "s3cret")
    False
    """
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())


async def receive_alerts(
    pipe: Pipeline, publisher: FaustPublisher, body: bytes, source: AlertSource, route: str
) -> tuple[int, dict[str, Any]]:
    """Check a webhook body, put it on the alerts topic and answer once the broker has it.

    A body that is unusable as a whole is dead-lettered (origin: the route) and refused
    with 400; one whose alerts are partly bad is delivered (the alerts agent dead-letters
    the bad ones) and answered 400 naming them, so that the sender does not retry the good.
    """
    try:
        decoded = pipe.check_alerts(body, source)
    except DecodeError as exc:
        letter = DeadLetter.from_error(Origin(route, -1, -1), exc, body)
        EVENTS_DEADLETTERED.labels(route, letter.reason).inc()
        await publisher.deliver_dead_letter(letter)
        return 400, {"error": f"{exc.reason}: {exc.detail}"}
    key = decoded.events[0].service.encode() if decoded.events else b""
    for part in split_alert_body(body, pipe.max_bytes):  # a message per part that fits
        await publisher.deliver_alerts(key, part)
    answer: dict[str, Any] = {"accepted": len(decoded.events)}
    if decoded.errors:
        answer["rejected"] = [
            {"index": e.index, "error": f"{e.error.reason}: {e.error.detail}"}
            for e in decoded.errors
        ]
        return 400, answer
    return 200, answer
