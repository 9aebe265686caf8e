"""`gateway serve`: one process, or N worker processes sharing the port (SO_REUSEPORT).
Sets up logging and uvloop, then runs the server until a signal stops it."""

from __future__ import annotations

import asyncio
import logging

from . import logs
from .config import Config
from .server import install_uvloop, serve

log = logging.getLogger("gateway.supervisor")


def run(config: Config, host: str | None, port: int | None, workers: int) -> int:
    """Serve in this process (workers > 1 arrives with the operations work)."""
    logs.configure(config.logging.level)
    install_uvloop()
    asyncio.run(serve(config, host or config.server.host, port or config.server.port))
    return 0
