"""The SQLite store's Responses API records (ai_response): bridged responses kept for
previous_response_id, GET, DELETE and input_items. A mixin of SqliteStore, on its worker thread."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from gateway.store.base import RESPONSE_FIELDS, StoredResponse
from gateway.store.sqlite_schema import ts_text
from gateway.store.sqlite_thread import SqliteThread, transaction


class SqliteResponses:
    """save_response, get_response, delete_response over SqliteStore's worker thread."""

    _worker: SqliteThread

    async def save_response(self, row: StoredResponse) -> None:
        """Insert a bridged response; an id already stored is kept."""
        values = [getattr(row, f) for f in RESPONSE_FIELDS]
        values[-1] = ts_text(row.created_at)
        marks = ", ".join("?" for _ in RESPONSE_FIELDS)
        sql = (
            f"INSERT INTO ai_response ({', '.join(RESPONSE_FIELDS)}) VALUES ({marks})"
            " ON CONFLICT (response_id) DO NOTHING"
        )

        def run(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute(sql, values)

        await self._worker.run(run)

    async def get_response(self, uid: str, response_id: str) -> StoredResponse | None:
        """The user's stored response or None."""
        found = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {', '.join(RESPONSE_FIELDS)} FROM ai_response"
                " WHERE uid = ? AND response_id = ?",
                (uid, response_id),
            ).fetchone()
        )
        if not found:
            return None
        fields = dict(zip(RESPONSE_FIELDS, found, strict=True))
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        return StoredResponse(**fields)

    async def delete_response(self, uid: str, response_id: str) -> bool:
        """Delete the user's stored response."""

        def run(db: sqlite3.Connection) -> bool:
            with transaction(db):
                gone = db.execute(
                    "DELETE FROM ai_response WHERE uid = ? AND response_id = ?", (uid, response_id)
                ).rowcount
            return gone > 0

        return await self._worker.run(run)
