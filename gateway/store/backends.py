"""Picks and connects the Store backend named by a database URL (PostgreSQL or SQLite).
The one module that imports both drivers; everything above depends only on the Store protocol."""

from __future__ import annotations

from gateway.store.base import Store
from gateway.store.postgres import PostgresStore, connect_postgres
from gateway.store.sqlite import SqliteStore, sqlite_path

__all__ = ["PostgresStore", "SqliteStore", "connect_postgres", "open_store", "sqlite_path"]


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
