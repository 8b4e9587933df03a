"""``aiops worker``: create the topics, then run the Faust app until stopped."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import faust

from detectors.metric import warm_up
from streams.app import create_app
from streams.config import Settings
from streams.topics import ensure_topics

# A worker holds millions of long-lived objects (a detector per series); with Python's
# default first-generation threshold (700 allocations) the collector runs so often, and its
# full passes walk so much, that at 100,000 series a quarter of the CPU went to it, with
# pauses of 0.7 s. The pipeline creates few reference cycles, so collecting rarely is safe.
GC_THRESHOLDS = (100_000, 50, 100)

TOPIC_ROLES = ("metrics", "logs", "anomalies", "incidents", "actions", "deadletter", "control")


def subprocess_env(
    *,
    bootstrap: str,
    app_id: str,
    web_port: int,
    datadir: Path,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of an ``aiops worker`` subprocess of its own, as tests and benchmarks
    start them: this process's environment without its ``AIOPS_*`` settings, the worker's
    topics named ``<app_id>.<role>``, warnings only, then ``overrides``.

    >>> env = subprocess_env(
    ...     bootstrap="127.0.0.1:9092", app_id="t-1", web_port=6066, datadir=Path("/tmp/t-1"),
    ...     overrides={"AIOPS_WORKER__LOG_LEVEL": "info"},
    ... )
    >>> env["AIOPS_TOPICS__METRICS"], env["AIOPS_WORKER__LOG_LEVEL"]
    ('t-1.metrics', 'info')
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "AIOPS_KAFKA_BOOTSTRAP": bootstrap,
            "AIOPS_WORKER__APP_ID": app_id,
            "AIOPS_WORKER__WEB_PORT": str(web_port),
            "AIOPS_WORKER__DATADIR": str(datadir),
            "AIOPS_WORKER__LOG_LEVEL": "warning",
        }
    )
    for role in TOPIC_ROLES:
        env[f"AIOPS_TOPICS__{role.upper()}"] = f"{app_id}.{role}"
    env.update(overrides or {})
    return env


def run_worker(settings: Settings) -> int:
    """Run one worker process; several share the work through Kafka's consumer group."""
    level = settings.worker.log_level.upper()
    logging.basicConfig(level=level, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    created = asyncio.run(ensure_topics(settings))
    if created:
        logging.getLogger(__name__).info("created topics: %s", ", ".join(created))
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    warm_up()  # compiled detector code loads now, not on the first batch
    gc.collect()
    gc.freeze()  # start-up objects (modules, settings, the app) are never collected
    gc.set_threshold(*GC_THRESHOLDS)
    worker = faust.Worker(app, loglevel=level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG (to spin on every record) when
    # the level is WARNING or above: every debug line of the Kafka clients would then be
    # formatted, several per message.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
