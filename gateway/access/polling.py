"""A background loop that re-runs a refresh coroutine, surviving database outages, and the
changed-since window each poll reads. Used by the key, quota-override and team caches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ..store import StoreUnavailable

POLL_OVERLAP = timedelta(seconds=10)  # re-read a margin so rows committed late are not missed


class ChangedSince:
    """The `since` of a changed-since poll: each poll asks from the previous poll's start
    (minus an overlap for clock skew and late commits); `advance` only after it succeeded."""

    def __init__(self) -> None:
        self._since = datetime(1970, 1, 1, tzinfo=UTC)
        self._started = self._since

    def begin(self) -> datetime:
        """The moment to read changes from; marks this poll's start."""
        self._started = datetime.now(UTC)
        return self._since - POLL_OVERLAP

    def advance(self) -> None:
        """The poll begun last succeeded: the next one starts from its start."""
        self._since = self._started


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


MAINTAIN_EVERY_S = 6 * 3600.0


async def maintain_forever(
    maintain: Callable[[datetime, int], Awaitable[list[str]]],
    retention_days: int,
    log: logging.Logger,
    every_s: float = MAINTAIN_EVERY_S,
) -> None:
    """The request log's housekeeping (partitions ahead, retention) now and every `every_s`."""

    async def once() -> None:
        dropped = await maintain(datetime.now(UTC), retention_days)
        if dropped:
            log.warning("request log: retention dropped %s", ", ".join(dropped))

    await poll_forever(once, every_s, "request log maintenance", log)
