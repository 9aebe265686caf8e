"""The SQLite backend's plumbing: one sqlite3 connection owned by one worker thread, calls run
on it from the event loop, and the driver's outage errors turned into StoreUnavailable."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from gateway.store.base import StoreUnavailable
from gateway.store.sqlite_schema import DecimalSum

T = TypeVar("T")


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (the connection is in autocommit)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # a failed COMMIT (busy) leaves it open
            db.execute("ROLLBACK")
        raise


class SqliteThread:
    """A connection to one SQLite file (or `:memory:`), WAL mode, opened lazily on, and only
    ever touched by, a single executor thread: calls are serialised without locks."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None  # owned by the worker thread
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        """Open the connection lazily, on the worker thread."""
        if self._db is None:
            db = sqlite3.connect(
                self._path, isolation_level=None, timeout=self._busy_timeout_ms / 1000
            )
            db.row_factory = sqlite3.Row
            if self._path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            db.create_aggregate("decsum", 1, DecimalSum)  # type: ignore[arg-type]
            self._db = db
        return self._db

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) on the worker thread; OperationalError -> StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable("sqlite store is closed")

        def call() -> T:
            return fn(self._connect(), *args)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.OperationalError as exc:
            # SQLITE_ERROR is a bad statement or a missing table: a bug, not an outage.
            if getattr(exc, "sqlite_errorname", None) == "SQLITE_ERROR":
                raise
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def close(self) -> None:
        """Close the connection on its thread, then stop the thread."""
        if self._closed:
            return

        def shut(db: sqlite3.Connection) -> None:
            db.close()
            self._db = None

        if self._db is not None:
            await self.run(shut)
        self._closed = True
        self._executor.shutdown(wait=False)
