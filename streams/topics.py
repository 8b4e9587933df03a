"""Creating the project's topics at start-up, with partitions from configuration."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import Settings
from streams.kafka_clients import client_options


def correlation_topic(settings: Settings) -> str:
    """The internal stream that carries every worker's anomalies and progress reports to
    the worker that correlates (one partition per correlation domain)."""
    return f"{settings.worker.app_id}-correlate"


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the configured topics that do not exist yet; return the ones created."""
    topics = settings.topics
    wanted = names if names is not None else [*topics.all_names(), correlation_topic(settings)]
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        configs = {
            topics.deadletter: {"max.message.bytes": str(8 * 1_048_576)},
            topics.incidents: {"cleanup.policy": "compact,delete"},
            topics.series: {"cleanup.policy": "compact,delete", "retention.ms": str(86_400_000)},
        }
        new = [
            NewTopic(
                name=name,
                num_partitions=(
                    topics.correlation_partitions
                    if name in (topics.anomalies, topics.control, correlation_topic(settings))
                    else topics.partitions
                ),
                replication_factor=topics.replication_factor,
                topic_configs=configs.get(name, {}),
            )
            for name in missing
        ]
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
            await admin.create_topics(new)
        return missing
    finally:
        await admin.close()
