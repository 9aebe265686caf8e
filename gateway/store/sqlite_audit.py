"""The SQLite store's audit log (ai_audit_log): append a change, read them newest first.
A mixin of SqliteStore, on its worker thread."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import orjson

from gateway.store.audit import AUDIT_FIELDS, AuditEntry, AuditQuery, audit_select_sql
from gateway.store.sqlite_schema import ts_text
from gateway.store.sqlite_thread import SqliteThread, transaction

_INSERT = (
    f"INSERT INTO ai_audit_log ({', '.join(AUDIT_FIELDS)})"
    f" VALUES ({', '.join('?' for _ in AUDIT_FIELDS)})"
)


def _json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class SqliteAudit:
    """add_audit and list_audit over SqliteStore's worker thread."""

    _worker: SqliteThread

    async def add_audit(self, entry: AuditEntry) -> None:
        values = (ts_text(entry.created_at), entry.actor, entry.role, entry.action, entry.target,
                  entry.team, _json(entry.before), _json(entry.after))  # fmt: skip

        def run(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute(_INSERT, values)

        await self._worker.run(run)

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        sql, args = audit_select_sql(query, ["?"] * 5)
        args = [ts_text(a) if isinstance(a, datetime) else a for a in args]
        rows = await self._worker.run(lambda db: db.execute(sql, args).fetchall())
        return [
            AuditEntry(
                id=r[0], created_at=datetime.fromisoformat(r[1]), actor=r[2], role=r[3],
                action=r[4], target=r[5], team=r[6],
                before=None if r[7] is None else orjson.loads(r[7]),
                after=None if r[8] is None else orjson.loads(r[8]),
            )
            for r in rows
        ]  # fmt: skip
