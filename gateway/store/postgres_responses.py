"""The PostgreSQL store's Responses API records (ai_response): bridged responses kept for
previous_response_id, GET, DELETE and input_items. A mixin of PostgresStore, on its `_conn`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import asyncpg

from gateway.store.base import RESPONSE_FIELDS, StoredResponse


class PostgresResponses:
    """save_response, get_response, delete_response over PostgresStore's connections."""

    def _conn(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        raise NotImplementedError  # PostgresStore's

    async def save_response(self, row: StoredResponse) -> None:
        """Insert a bridged response; an id already stored is kept."""
        async with self._conn() as conn:
            await conn.execute(
                f"INSERT INTO ai_response ({', '.join(RESPONSE_FIELDS)})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (response_id) DO NOTHING",
                *(getattr(row, f) for f in RESPONSE_FIELDS),
            )

    async def get_response(self, uid: str, response_id: str) -> StoredResponse | None:
        """The user's stored response or None."""
        async with self._conn() as conn:
            found = await conn.fetchrow(
                f"SELECT {', '.join(RESPONSE_FIELDS)} FROM ai_response"
                " WHERE uid = $1 AND response_id = $2",
                uid,
                response_id,
            )
        return StoredResponse(**dict(found)) if found else None

    async def delete_response(self, uid: str, response_id: str) -> bool:
        """Delete the user's stored response."""
        async with self._conn() as conn:
            status = await conn.execute(
                "DELETE FROM ai_response WHERE uid = $1 AND response_id = $2", uid, response_id
            )
        return bool(status.endswith(" 1"))
