"""What operators' signals need from the app: a count of requests in flight, and the reloader.
A reload retires old upstream clients only once every request begun before it has ended."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .reload import Reloader


class InFlight:
    """Tickets for the requests being handled, so a caller can wait for the older ones."""

    def __init__(self) -> None:
        self._next = 0
        self._active: set[int] = set()

    @property
    def count(self) -> int:
        """Requests in flight now."""
        return len(self._active)

    def begin(self) -> int:
        """A request starts: its ticket, to give back to `end`."""
        ticket = self._next
        self._next += 1
        self._active.add(ticket)
        return ticket

    def end(self, ticket: int) -> None:
        """A request has ended (answered, failed or cancelled)."""
        self._active.discard(ticket)

    async def settled(self, timeout_s: float, every_s: float = 0.1) -> bool:
        """Wait until every request begun before this call has ended; False on timeout."""
        mark = self._next
        deadline = time.monotonic() + timeout_s
        while self._active and min(self._active) < mark:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(every_s)
        return True


INFLIGHT: web.AppKey[InFlight] = web.AppKey("inflight", InFlight)
RELOADER: web.AppKey[Reloader] = web.AppKey("reloader")
