"""A Store backend under contract test: SqliteStore on a temp file or PostgresStore in a fresh
database, each with raw SQL access to the same database for the checks a Store cannot make."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from gateway.store import Store
from gateway.store.backends import SqliteStore, connect_postgres
from tests.support.databases import fresh_postgres_url


@dataclass
class Backend:
    """A store under test plus raw SQL access to the same database (for checks only)."""

    store: Store
    query: Callable[[str], Awaitable[list[tuple[Any, ...]]]]


@asynccontextmanager
async def open_backend(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """The `kind` ("sqlite" or "postgres") backend, without schema; closed (and a PostgreSQL
    database dropped) on exit."""
    if kind == "sqlite":
        path = str(tmp_path / "gateway.db")
        store = SqliteStore(path)

        async def sqlite_query(sql: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as db:
                return [tuple(r) for r in db.execute(sql).fetchall()]

        try:
            yield Backend(store, sqlite_query)
        finally:
            await store.close()
        return
    async with fresh_postgres_url() as url:
        pg = await connect_postgres(url)

        async def pg_query(sql: str) -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(url)
            try:
                return [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()

        try:
            yield Backend(pg, pg_query)
        finally:
            await pg.close()
