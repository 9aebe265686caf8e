"""The PostgreSQL store's request-log search for the console: keyset pages, one row, failures
per day (SQL shared with SQLite in request_log.py). A mixin of PostgresStore, on its `_conn`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from gateway.store.base import RequestLogRow, utc
from gateway.store.common import RowReader, page
from gateway.store.postgres_params import Args, text
from gateway.store.request_log import (
    failure_rows,
    failures_sql,
    get_sql,
    log_row,
    search_sql,
)
from gateway.store.request_query import RequestQuery

_READ = RowReader(parse_time=lambda value: value)


def _clean(query: RequestQuery) -> RequestQuery:
    """The query with NUL stripped from its text (no stored text holds one) and aware times."""
    return replace(
        query,
        uid=text(query.uid),
        model=text(query.model),
        endpoint=text(query.endpoint),
        start=None if query.start is None else utc(query.start),
        end=None if query.end is None else utc(query.end),
    )


class PostgresRequestLog:
    """search_requests, get_request, request_failures over PostgresStore's connections."""

    def _conn(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        raise NotImplementedError  # PostgresStore's

    async def search_requests(
        self, query: RequestQuery, limit: int, before: str | None
    ) -> tuple[list[RequestLogRow], bool]:
        """Keyset page, newest first (see request_log)."""
        limit = max(0, limit)
        args = Args()
        sql = search_sql(_clean(query), text(before), limit + 1, args.add)
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return page([log_row(r, _READ.parse_time) for r in rows], limit)

    async def get_request(self, request_id: str, uid: str | None = None) -> RequestLogRow | None:
        """One row by request_id (and owner)."""
        args = Args()
        sql = get_sql(text(request_id) or "", text(uid), args.add)
        async with self._conn() as conn:
            row = await conn.fetchrow(sql, *args)
        return log_row(row, _READ.parse_time) if row else None

    async def request_failures(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Failures per (UTC day, status), from the partial index on failures."""
        args = Args()
        day = "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        sql = failures_sql(day, utc(start), utc(end), args.add)
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return failure_rows(rows)
