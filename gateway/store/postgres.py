"""PostgreSQL backend of the Store protocol, on an asyncpg pool built by the caller.
asyncpg and socket errors that mean "the database is not there" become StoreUnavailable here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import asyncpg
import orjson

from gateway.store.base import (
    KEY_FIELDS,
    LOG_FIELDS,
    MESSAGE_FIELDS,
    MODEL_COLUMNS,
    PROVIDER_COLUMNS,
    SESSION_FIELDS,
    TABLES,
    TIER_COLUMNS,
    ApiKey,
    Message,
    MessageRow,
    QuotaOverride,
    RequestLogRow,
    Session,
    StoreConflict,
    StoreUnavailable,
    WriteItem,
    checked_columns,
    key_row_id,
    utc,
)

# Errors meaning the server cannot be reached or went away; anything else is a real bug.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
)
# Serialises concurrent `migrate` calls (several workers starting at once).
_MIGRATE_LOCK = 0x67617465776179

_SESSION_COLS = ", ".join(f"s.{f}" for f in SESSION_FIELDS)
_KEY_COLS = ", ".join(KEY_FIELDS)

# Request logs go in as one array per column, unnested in submit order.
_LOG_TYPES = {
    "stream": "bool",
    "status_code": "int",
    "prompt_tokens": "int",
    "completion_tokens": "int",
    "usage_estimated": "bool",
    "cost_usd": "numeric",
    "latency_ms": "int",
    "ttft_ms": "int",
    "attempts": "int",
    "created_at": "timestamptz",
}
_LOG_ARRAYS = ", ".join(
    f"${i}::{_LOG_TYPES.get(c, 'text')}[]" for i, c in enumerate(LOG_FIELDS, start=1)
)
_INSERT_LOGS = f"""
INSERT INTO ai_request_log ({", ".join(LOG_FIELDS)})
SELECT {", ".join(LOG_FIELDS)}
FROM unnest({_LOG_ARRAYS}) WITH ORDINALITY AS r({", ".join(LOG_FIELDS)}, ord)
ORDER BY ord
ON CONFLICT (request_id) DO NOTHING
"""

# The counters grow from RETURNING, i.e. only from rows this statement really inserted.
_INSERT_MESSAGES = """
WITH ins AS (
    INSERT INTO ai_message (message_id, session_id, role, content, tokens, model, created_at)
    SELECT m.message_id, m.session_id, m.role, m.content, m.tokens, m.model, m.created_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
        $7::timestamptz[])
        WITH ORDINALITY AS m(message_id, session_id, role, content, tokens, model, created_at, ord)
    WHERE EXISTS (SELECT 1 FROM ai_session s WHERE s.session_id = m.session_id)
    ORDER BY m.ord
    ON CONFLICT (message_id) DO NOTHING
    RETURNING session_id, tokens, created_at
), counts AS (
    SELECT session_id, count(*) AS n, sum(tokens) AS t, max(created_at) AS last
    FROM ins GROUP BY session_id
)
UPDATE ai_session AS s
SET message_count = s.message_count + c.n,
    total_tokens = s.total_tokens + c.t,
    updated_at = GREATEST(s.updated_at, c.last)
FROM counts AS c
WHERE s.session_id = c.session_id
"""


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; one such character must not wedge the writer forever."""
    return value.replace("\x00", "") if value is not None and "\x00" in value else value


def _session(row: asyncpg.Record) -> Session:
    return Session(*(row[f] for f in SESSION_FIELDS))


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(str(row["id"]), *(row[f] for f in KEY_FIELDS[1:]))


def _param(column: str, value: Any) -> Any:
    """A record field as a query parameter."""
    if column in ("content", "error"):
        return _text(value)
    if column == "created_at":
        return utc(value)
    return value


class PostgresStore:
    """Store on PostgreSQL. Takes a ready asyncpg pool; `close()` closes it."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout_s

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; connection-level failures inside become StoreUnavailable."""
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Apply schema.sql under an advisory lock, so concurrent starts do not race."""
        script = resources.files("gateway").joinpath("schema.sql").read_text(encoding="utf-8")
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            await conn.execute(script)

    async def has_schema(self) -> bool:
        """True when every table exists in the search path."""
        async with self._conn() as conn:
            found = await conn.fetchval(
                "SELECT count(*) FROM pg_catalog.pg_tables"
                " WHERE schemaname = ANY(current_schemas(false)) AND tablename = ANY($1::text[])",
                list(TABLES),
            )
        return found == len(TABLES)

    async def ping(self) -> None:
        """SELECT 1; raises StoreUnavailable."""
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        """Close the pool (waits for connections in use to be released)."""
        await self._pool.close()

    # -- batched writes ----------------------------------------------------------------------

    async def write_batch(self, items: Sequence[WriteItem]) -> None:
        """Insert logs and messages in one transaction; replays are no-ops (see Store)."""
        logs = [i for i in items if isinstance(i, RequestLogRow)]
        msgs = [i for i in items if isinstance(i, MessageRow)]
        if not logs and not msgs:
            return
        async with self._conn() as conn, conn.transaction():
            if logs:
                columns = [[_param(c, getattr(r, c)) for r in logs] for c in LOG_FIELDS]
                await conn.execute(_INSERT_LOGS, *columns)
            if msgs:
                columns = [[_param(c, getattr(m, c)) for m in msgs] for c in MESSAGE_FIELDS]
                await conn.execute(_INSERT_MESSAGES, *columns)

    async def mirror_config(
        self,
        providers: list[dict[str, Any]],
        models: list[dict[str, Any]],
        tiers: list[dict[str, Any]],
    ) -> None:
        """Upsert the config mirrors in one transaction; rows absent from config are kept."""
        plan = [
            ("ai_provider", PROVIDER_COLUMNS, providers),
            ("ai_model", MODEL_COLUMNS, models),
            ("ai_quota_tier", TIER_COLUMNS, tiers),
        ]
        async with self._conn() as conn, conn.transaction():
            for table, allowed, rows in plan:
                for row in rows:
                    cols = checked_columns(row, allowed, table)
                    values = [_config_value(c, row[c]) for c in cols]
                    params = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
                    sets = "".join(f"{c} = EXCLUDED.{c}, " for c in cols[1:])
                    await conn.execute(
                        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({params})"
                        f" ON CONFLICT ({cols[0]}) DO UPDATE SET {sets}updated_at = now()",
                        *values,
                    )

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        """Insert; StoreConflict if the session_id is taken."""
        try:
            async with self._conn() as conn:
                await conn.execute(
                    "INSERT INTO ai_session (session_id, uid, title, model, message_count,"
                    " total_tokens, status, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    session.session_id,
                    session.uid,
                    _text(session.title),
                    session.model,
                    session.message_count,
                    session.total_tokens,
                    session.status,
                    utc(session.created_at),
                    utc(session.updated_at),
                )
        except asyncpg.UniqueViolationError as exc:
            raise StoreConflict(f"session {session.session_id} already exists") from exc

    async def get_session(self, uid: str, session_id: str) -> Session | None:
        """The user's session or None."""
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_SESSION_COLS} FROM ai_session s WHERE s.uid = $1 AND s.session_id = $2",
                uid,
                session_id,
            )
        return _session(row) if row else None

    async def list_sessions(
        self, uid: str, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Session], bool]:
        """Keyset page over (updated_at DESC, session_id ASC); an unknown cursor gives no rows."""
        limit = max(0, limit)
        args: list[Any] = [uid]
        join, where = "", ["s.uid = $1"]
        if status is not None:
            args.append(status)
            where.append(f"s.status = ${len(args)}")
        if after is not None:
            args.append(after)
            join = f" JOIN ai_session c ON c.uid = $1 AND c.session_id = ${len(args)}"
            where.append(
                "(s.updated_at < c.updated_at"
                " OR (s.updated_at = c.updated_at AND s.session_id > c.session_id))"
            )
        args.append(limit + 1)
        sql = (
            f"SELECT {_SESSION_COLS} FROM ai_session s{join} WHERE {' AND '.join(where)}"
            f" ORDER BY s.updated_at DESC, s.session_id LIMIT ${len(args)}"
        )
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return [_session(r) for r in rows[:limit]], len(rows) > limit

    async def update_session(
        self, uid: str, session_id: str, title: str | None, status: str | None
    ) -> Session | None:
        """Set title/status when given and bump updated_at; nothing given = plain read."""
        if title is None and status is None:
            return await self.get_session(uid, session_id)
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "UPDATE ai_session s SET title = COALESCE($3, s.title),"
                " status = COALESCE($4, s.status), updated_at = GREATEST(s.updated_at, $5)"
                f" WHERE s.uid = $1 AND s.session_id = $2 RETURNING {_SESSION_COLS}",
                uid,
                session_id,
                _text(title),
                status,
                datetime.now(UTC),
            )
        return _session(row) if row else None

    async def delete_session(self, uid: str, session_id: str) -> bool:
        """Delete the session and its messages in one statement."""
        async with self._conn() as conn:
            deleted = await conn.fetchval(
                "WITH d AS (DELETE FROM ai_session WHERE uid = $1 AND session_id = $2"
                " RETURNING session_id),"
                " m AS (DELETE FROM ai_message WHERE session_id IN (SELECT session_id FROM d))"
                " SELECT count(*) FROM d",
                uid,
                session_id,
            )
        return bool(deleted)

    async def _window(
        self, uid: str, session_id: str, limit: int, before: str | None
    ) -> tuple[Session, list[Message]] | None:
        """The session joined with up to `limit` of its newest messages (older than `before`),
        oldest first, in one query; None when the session is not the user's."""
        older = ""
        args: list[Any] = [uid, session_id, max(0, limit)]
        if before is not None:
            args.append(before)
            older = (
                " AND id < (SELECT id FROM ai_message b"
                " WHERE b.message_id = $4 AND b.session_id = s.session_id)"
            )
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_SESSION_COLS}, m.message_id, m.role, m.content, m.tokens,"
                " m.model AS m_model, m.created_at AS m_created_at"
                " FROM ai_session s LEFT JOIN LATERAL ("
                "   SELECT id, message_id, role, content, tokens, model, created_at"
                f"  FROM ai_message WHERE session_id = s.session_id{older}"
                "   ORDER BY id DESC LIMIT $3"
                " ) m ON TRUE"
                " WHERE s.uid = $1 AND s.session_id = $2 ORDER BY m.id",
                *args,
            )
        if not rows:
            return None
        messages = [
            Message(
                message_id=r["message_id"],
                session_id=r["session_id"],
                role=r["role"],
                content=r["content"],
                tokens=r["tokens"],
                model=r["m_model"],
                created_at=r["m_created_at"],
            )
            for r in rows
            if r["message_id"] is not None
        ]
        return _session(rows[0]), messages

    async def list_messages(
        self, uid: str, session_id: str, limit: int, before: str | None
    ) -> tuple[list[Message], bool] | None:
        """Newest `limit` messages older than `before`, oldest first, and has_more."""
        limit = max(0, limit)
        found = await self._window(uid, session_id, limit + 1, before)
        if found is None:
            return None
        messages = found[1]
        # One extra row was fetched: it is the oldest, so it sits first.
        return (messages[1:], True) if len(messages) > limit else (messages, False)

    async def load_history(
        self, uid: str, session_id: str, max_messages: int
    ) -> tuple[Session, list[Message]] | None:
        """The session and its newest max_messages messages, oldest first (one query)."""
        return await self._window(uid, session_id, max_messages, None)

    # -- keys --------------------------------------------------------------------------------

    async def create_key(self, key: ApiKey) -> ApiKey:
        """Insert; StoreConflict if the hash exists. Returns a copy with the new id."""
        try:
            async with self._conn() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO ai_api_key (key_hash, key_prefix, uid, name, tier, status,"
                    " created_at, updated_at, last_used_at)"
                    f" VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8) RETURNING {_KEY_COLS}",
                    key.key_hash,
                    key.key_prefix,
                    key.uid,
                    key.name,
                    key.tier,
                    key.status,
                    utc(key.created_at),
                    utc(key.last_used_at) if key.last_used_at else None,
                )
        except asyncpg.UniqueViolationError as exc:
            raise StoreConflict("an API key with this hash already exists") from exc
        assert row is not None
        return _key(row)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, any status."""
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_KEY_COLS} FROM ai_api_key WHERE key_hash = $1", key_hash
            )
        return _key(row) if row else None

    async def list_keys(self, uid: str | None) -> list[ApiKey]:
        """One user's keys, or all, by id."""
        async with self._conn() as conn:
            if uid is None:
                rows = await conn.fetch(f"SELECT {_KEY_COLS} FROM ai_api_key ORDER BY id")
            else:
                rows = await conn.fetch(
                    f"SELECT {_KEY_COLS} FROM ai_api_key WHERE uid = $1 ORDER BY id", uid
                )
        return [_key(r) for r in rows]

    async def revoke_key(self, id_or_prefix: str) -> int:
        """Revoke the active keys whose id or key_prefix equals the argument."""
        row_id = key_row_id(id_or_prefix)
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE ai_api_key SET status = 'revoked', updated_at = now()"
                " WHERE status = 'active' AND (key_prefix = $1 OR id = $2)",
                id_or_prefix,
                row_id,
            )
        return int(status.split()[-1])

    async def keys_changed_since(self, since: datetime) -> list[ApiKey]:
        """Keys whose updated_at is after `since`, oldest change first."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_KEY_COLS} FROM ai_api_key WHERE updated_at > $1 ORDER BY updated_at, id",
                utc(since),
            )
        return [_key(r) for r in rows]

    async def touch_keys(self, last_used: dict[str, datetime]) -> None:
        """One UPDATE for the whole batch; ids that are not row ids (static keys) are ignored."""
        pairs = [(i, utc(t)) for k, t in last_used.items() if (i := key_row_id(k)) is not None]
        if not pairs:
            return
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE ai_api_key k SET last_used_at = GREATEST(k.last_used_at, u.t)"
                " FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, t) WHERE k.id = u.id",
                [p[0] for p in pairs],
                [p[1] for p in pairs],
            )

    # -- quotas and usage --------------------------------------------------------------------

    async def set_user_quota(self, q: QuotaOverride) -> None:
        """Upsert the override; all three fields are replaced."""
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO ai_user_quota (uid, tier, rpm, tpd, updated_at)"
                " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (uid) DO UPDATE SET"
                " tier = EXCLUDED.tier, rpm = EXCLUDED.rpm, tpd = EXCLUDED.tpd, updated_at = now()",
                q.uid,
                q.tier,
                q.rpm,
                q.tpd,
            )

    async def quota_overrides_changed_since(self, since: datetime) -> list[QuotaOverride]:
        """Overrides whose updated_at is after `since`."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT uid, tier, rpm, tpd FROM ai_user_quota WHERE updated_at > $1"
                " ORDER BY updated_at, id",
                utc(since),
            )
        return [QuotaOverride(r["uid"], r["tier"], r["rpm"], r["tpd"]) for r in rows]

    async def usage(self, uid: str | None, day: date) -> list[dict[str, Any]]:
        """Aggregates ai_request_log over [day 00:00 UTC, next day 00:00 UTC)."""
        start = datetime.combine(day, time(0), UTC)
        args: list[Any] = [start, start + timedelta(days=1)]
        who = ""
        if uid is not None:
            args.append(uid)
            who = " AND uid = $3"
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT uid, model, count(*) AS requests,"
                " COALESCE(sum(prompt_tokens), 0) AS prompt_tokens,"
                " COALESCE(sum(completion_tokens), 0) AS completion_tokens,"
                " COALESCE(sum(cost_usd), 0) AS cost_usd"
                f" FROM ai_request_log WHERE created_at >= $1 AND created_at < $2{who}"
                " GROUP BY uid, model ORDER BY uid, model",
                *args,
            )
        return [
            {
                "uid": r["uid"],
                "model": r["model"],
                "requests": int(r["requests"]),
                "prompt_tokens": int(r["prompt_tokens"]),
                "completion_tokens": int(r["completion_tokens"]),
                "cost_usd": Decimal(r["cost_usd"]),
            }
            for r in rows
        ]

    async def count_request_logs(self) -> int:
        """count(*) of ai_request_log."""
        async with self._conn() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM ai_request_log"))


def _config_value(column: str, value: Any) -> Any:
    """Adapt a config value to its column type (JSON text for jsonb, Decimal for prices)."""
    if column == "models":
        return orjson.dumps(value).decode()
    if column in ("input_price", "output_price"):
        return value if isinstance(value, Decimal) else Decimal(str(value))
    return value


async def connect_postgres(url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresStore:
    """Create the pool (short connect timeout) and wrap it; StoreUnavailable if unreachable."""
    try:
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, timeout=10, command_timeout=30
        )
    except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise StoreUnavailable(f"postgres: cannot connect: {type(exc).__name__}: {exc}") from exc
    assert pool is not None
    return PostgresStore(pool)
