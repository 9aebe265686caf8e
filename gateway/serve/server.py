"""Running one gateway process: the aiohttp runner, uvloop, SIGHUP reloads and SIGTERM draining.
SIGTERM stops accepting, lets in-flight requests finish within the grace period, then flushes."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from aiohttp import web

from ..config import Config
from ..metrics import Metrics
from ..web.app import create_app
from ..web.lifecycle import RELOADER

log = logging.getLogger("gateway.server")

PARENT_CHECK_S = 1.0
# Young objects a collection waits for (CPython's default is 700). Nearly every object of a request
# dies by reference counting, so collections rarely find anything: at the default they cost about
# 8% of a request's CPU (measured with scripts/bench), at this threshold almost nothing.
GC_THRESHOLD = 10_000


def install_uvloop() -> bool:
    """Use uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Stop (and drain) when the supervisor that started this worker is gone."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_CHECK_S)
    log.warning("supervisor is gone, stopping", extra={"fields": {"supervisor": parent_pid}})
    stop.set()


async def serve(
    config: Config,
    host: str,
    port: int,
    reuse_port: bool = False,
    metrics: Metrics | None = None,
    parent_pid: int | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT (or the death of `parent_pid`), then drain and exit.
    SIGHUP re-reads the config file (see gateway/reload.py)."""
    app = create_app(config, metrics)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=config.server.shutdown_grace_s,
        keepalive_timeout=config.server.idle_timeout_s,
    )
    await runner.setup()
    stop = asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=2048)
        await site.start()
        # Everything built so far lives as long as the process: full collections skip it.
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 10, 10)
        log.info("listening", extra={"fields": {"host": host, "port": port, "pid": os.getpid()}})
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, app[RELOADER].reload)
        if parent_pid is not None:
            watcher = loop.create_task(_watch_parent(parent_pid, stop))
        await stop.wait()
        log.info("draining", extra={"fields": {"grace_s": config.server.shutdown_grace_s}})
    finally:
        if watcher is not None:
            watcher.cancel()
        await runner.cleanup()
        log.info("stopped")
