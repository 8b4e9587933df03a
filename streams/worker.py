"""``aiops worker``: create the topics, then run the Faust app until stopped."""

from __future__ import annotations

import asyncio
import logging

import faust

from streams.app import create_app
from streams.config import Settings
from streams.topics import ensure_topics


def run_worker(settings: Settings) -> int:
    """Run one worker process; several share the work through Kafka's consumer group."""
    level = settings.worker.log_level.upper()
    logging.basicConfig(level=level, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    created = asyncio.run(ensure_topics(settings))
    if created:
        logging.getLogger(__name__).info("created topics: %s", ", ".join(created))
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=level, quiet=True)
    worker.execute_from_commandline()
    return 0
