"""The PostgreSQL store's audit log (ai_audit_log): append a change, read them newest first.
A mixin of PostgresStore, on its `_conn`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import asyncpg
import orjson

from gateway.store.audit import AUDIT_FIELDS, AuditEntry, AuditQuery, audit_select_sql
from gateway.store.base import utc

_INSERT = (
    f"INSERT INTO ai_audit_log ({', '.join(AUDIT_FIELDS)})"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)"
)


def _json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class PostgresAudit:
    """add_audit and list_audit over PostgresStore's connections."""

    def _conn(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        raise NotImplementedError  # PostgresStore's

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self._conn() as conn:
            await conn.execute(
                _INSERT, utc(entry.created_at), entry.actor, entry.role, entry.action,
                entry.target, entry.team, _json(entry.before), _json(entry.after),
            )  # fmt: skip

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        sql, args = audit_select_sql(query, [f"${i}" for i in range(1, 6)])
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return [
            AuditEntry(
                id=r["id"], created_at=r["created_at"], actor=r["actor"], role=r["role"],
                action=r["action"], target=r["target"], team=r["team"],
                before=None if r["before"] is None else orjson.loads(r["before"]),
                after=None if r["after"] is None else orjson.loads(r["after"]),
            )
            for r in rows
        ]  # fmt: skip
