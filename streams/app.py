"""The Faust application: topics, agents and web views, wired in one place.

Agents stay thin: decode with :mod:`ingest`, hand events to the pure stages in
:mod:`streams.stages`, publish what comes back.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from streams.config import Settings
from streams.deadletter import DeadLetter, Origin
from streams.kafka_clients import ssl_context
from streams.observability import REGISTRY
from streams.stages import Pipeline, Publisher

log = logging.getLogger(__name__)


def _broker_url(settings: Settings) -> str:
    hosts = ";".join(h.strip() for h in settings.kafka.bootstrap.split(","))
    return f"kafka://{hosts}"


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
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


class FaustPublisher(Publisher):
    """Publishes to the output topics through the app's producer."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        t = settings.topics
        self.deadletter_topic = raw_topic(app, t.deadletter)
        self.anomalies_topic = raw_topic(app, t.anomalies)
        self.incidents_topic = raw_topic(app, t.incidents)
        self.actions_topic = raw_topic(app, t.actions)

    async def dead_letter(self, letter: DeadLetter) -> None:
        fut = await self.deadletter_topic.send(
            key=letter.record_key(), value=letter.original, headers=letter.headers()
        )
        await fut  # wait for the broker: the source offset is committed after this

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        target = {
            "anomalies": self.anomalies_topic,
            "incidents": self.incidents_topic,
            "actions": self.actions_topic,
        }[topic]
        fut = await target.send(key=key, value=value)
        await fut


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> faust.App:
    """Build the worker's Faust app from the settings."""
    worker = settings.worker
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
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=worker.commit_interval_s,
        producer_max_request_size=8 * 1_048_576,
        consumer_max_fetch_size=max(worker.max_message_bytes * 2, 4 * 1_048_576),
        key_serializer="raw",
        value_serializer="raw",
        web_graph_enabled=False,
        web_tables_enabled=False,
        stream_wait_empty=False,
    )
    publisher = FaustPublisher(app, settings)
    pipe = pipeline or Pipeline(settings=settings, publisher=publisher)
    pipe.publisher = publisher
    t = settings.topics

    @app.agent(raw_topic(app, t.metrics), name="metrics")
    async def metrics_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            await pipe.on_metrics_message(
                event.value, Origin(msg.topic, msg.partition, msg.offset), msg.key
            )

    @app.agent(raw_topic(app, t.logs), name="logs")
    async def logs_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            await pipe.on_logs_message(
                event.value, Origin(msg.topic, msg.partition, msg.offset), msg.key
            )

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(REGISTRY), content_type="text/plain; version=0.0.4")

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "app": worker.app_id, **pipe.health()})

    app.aiops_pipeline = pipe  # type: ignore[attr-defined]
    return app
