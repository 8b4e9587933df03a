"""``aiops console``: the view, its Kafka feed and the web application in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiohttp import web

from console.auth import Authenticator
from console.feed import KafkaFeed
from console.view import ConsoleView
from console.web import Console
from rca.silences import load_silences
from streams.config import Settings
from streams.exceptions import StreamsError
from streams.worker import GC_THRESHOLDS

log = logging.getLogger(__name__)


def build(settings: Settings) -> tuple[ConsoleView, KafkaFeed, Console]:
    """The console's parts, from settings (configured silences included)."""
    cfg = settings.console
    silences = (
        load_silences(settings.incidents.silences_file) if settings.incidents.silences_file else []
    )
    view = ConsoleView(
        max_versions=cfg.max_versions, max_incidents=cfg.max_incidents, silences=silences
    )
    feed = KafkaFeed(settings, view)
    auth = Authenticator(
        {name: token.get_secret_value() for name, token in cfg.tokens.items()},
        {name: pw.get_secret_value() for name, pw in cfg.users.items()},
        session_s=cfg.session_hours * 3600.0,
    )
    if not auth.configured and not cfg.open_access:
        raise StreamsError(
            "console: no credentials configured: set console.tokens or console.users "
            "(AIOPS_CONSOLE__TOKENS='{name: token}'), or console.open_access: true for a "
            "local demo"
        )
    console = Console(
        view,
        feed,
        auth,
        read_without_login=cfg.read_without_login,
        open_access=cfg.open_access,
        ready=lambda: feed.ready,
        chart_config=settings.slack.chart,
    )
    return view, feed, console


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM)."""
    _, feed, console = build(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await feed.start()
    runner = web.AppRunner(console.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.console.host, settings.console.port)
    await site.start()
    log.info("console on http://%s:%d/", settings.console.host, settings.console.port)
    reader = asyncio.create_task(feed.run())
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if reader in done:
            reader.result()  # a feed that died says why
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await runner.cleanup()
        await feed.stop()


def run_console(settings: Settings) -> int:
    """Entry point of ``aiops console``."""
    logging.basicConfig(
        level=settings.worker.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    # the view holds many long-lived snapshots: collect rarely, as the worker does (a full
    # pass over 10,000 incidents stalled a request for 175 ms)
    gc.set_threshold(*GC_THRESHOLDS)
    asyncio.run(serve(settings))
    return 0
