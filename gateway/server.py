"""Running one gateway process: the aiohttp runner, uvloop, and graceful SIGTERM draining.
SIGTERM stops accepting, lets in-flight requests finish within the grace period, then flushes."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from .config import Config
from .metrics import Metrics
from .web.app import create_app

log = logging.getLogger("gateway.server")


def install_uvloop() -> bool:
    """Use uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def serve(
    config: Config,
    host: str,
    port: int,
    reuse_port: bool = False,
    metrics: Metrics | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain and exit."""
    app = create_app(config, metrics)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=config.server.shutdown_grace_s,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=2048)
    await site.start()
    log.info("listening", extra={"fields": {"host": host, "port": port}})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("draining", extra={"fields": {"grace_s": config.server.shutdown_grace_s}})
    finally:
        await runner.cleanup()
        log.info("stopped")
