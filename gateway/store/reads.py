"""Reads that see the caller's own writes: each waits, bounded, for the writer to land what it
has queued for that session (or all it holds, for usage and spend) before asking the store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

from gateway.store.base import Session, Store
from gateway.store.writer import Writer

T = TypeVar("T")
WAIT_S = 2.0  # a read waits at most this long; after it, it reads what has landed


class ConsistentReads:
    """The store's reads of freshly written data, read-your-writes by construction."""

    def __init__(self, store: Store, writer: Writer, wait_s: float = WAIT_S):
        self.store = store
        self.writer = writer
        self.wait_s = wait_s

    async def on_session(self, session_id: str, read: Callable[[Store], Awaitable[T]]) -> T:
        """`read` on the store once the session's queued messages have landed."""
        await self.writer.wait_session(session_id, self.wait_s)
        return await read(self.store)

    async def load_history(
        self, uid: str, session_id: str, max_messages: int
    ) -> tuple[Session, list[Any]] | None:
        return await self.on_session(
            session_id, lambda store: store.load_history(uid, session_id, max_messages)
        )

    async def usage(self, uid: str | None, day: date) -> list[dict[str, Any]]:
        await self.writer.flush(self.wait_s)
        return await self.store.usage(uid, day)

    async def spend(
        self, group_by: str, start: datetime, end: datetime, uid: str | None = None
    ) -> list[dict[str, Any]]:
        await self.writer.flush(self.wait_s)
        return await self.store.spend(group_by, start, end, uid)
