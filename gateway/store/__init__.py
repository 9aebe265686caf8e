"""Persistence: the Store protocol, its PostgreSQL and SQLite backends, and the batching writer.
`open_store(url)` picks the backend from the URL scheme; callers depend only on `Store`."""

from __future__ import annotations

from gateway.store.base import (
    ApiKey,
    Message,
    MessageRow,
    QuotaOverride,
    RequestLogRow,
    Session,
    Store,
    StoreConflict,
    StoreUnavailable,
    WriteItem,
)
from gateway.store.postgres import PostgresStore, connect_postgres
from gateway.store.sqlite import SqliteStore, sqlite_path
from gateway.store.writer import Writer

__all__ = [
    "ApiKey",
    "Message",
    "MessageRow",
    "PostgresStore",
    "QuotaOverride",
    "RequestLogRow",
    "Session",
    "SqliteStore",
    "Store",
    "StoreConflict",
    "StoreUnavailable",
    "WriteItem",
    "Writer",
    "connect_postgres",
    "open_store",
    "sqlite_path",
]


async def open_store(url: str) -> Store:
    """A connected store for `postgresql://`, `postgres://` or `sqlite://` URLs.

    Raises ValueError for another scheme and StoreUnavailable when PostgreSQL cannot be reached.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        return await connect_postgres(url)
    if scheme == "sqlite":
        return SqliteStore(sqlite_path(url))
    raise ValueError(f"unsupported database URL scheme {scheme!r} (postgresql://, sqlite://)")
