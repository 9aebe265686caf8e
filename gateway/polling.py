"""A background loop that re-runs a refresh coroutine, surviving database outages.
Used by the key cache and the quota-override cache."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .store import StoreUnavailable


async def poll_forever(
    refresh: Callable[[], Awaitable[None]], every_s: float, what: str, log: logging.Logger
) -> None:
    """Call `refresh` every `every_s` seconds until cancelled; an outage only delays the next."""
    while True:
        try:
            await refresh()
        except StoreUnavailable:
            log.warning("%s refresh skipped: database unavailable", what)
        except Exception:
            log.exception("%s refresh failed", what)
        await asyncio.sleep(every_s)
