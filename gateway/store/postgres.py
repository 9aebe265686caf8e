"""PostgreSQL backend of the Store protocol, on an asyncpg pool built by the caller.
asyncpg and socket errors that mean "the database is not there" become StoreUnavailable here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any

import asyncpg

from gateway.store import partitions
from gateway.store.base import (
    LOG_FIELDS,
    MESSAGE_FIELDS,
    QUOTA_FIELDS,
    SESSION_FIELDS,
    TABLES,
    ApiKey,
    ConfigRows,
    Message,
    QuotaOverride,
    Session,
    StoreConflict,
    StoreUnavailable,
    WriteItem,
    key_row_id,
    utc,
)
from gateway.store.common import (
    KEY_COLS,
    KEY_INSERT_FIELDS,
    QUOTA_COLS,
    SESSION_COLS,
    MessageWindow,
    RowReader,
    config_upserts,
    insert_sql,
    money_sums,
    page,
    quota_upsert_sql,
    sessions_page_sql,
    split_batch,
    token_sums,
    usage_totals,
    window_sql,
)
from gateway.store.postgres_audit import PostgresAudit
from gateway.store.postgres_governance import PostgresGovernance
from gateway.store.postgres_params import Args, marks, param, text
from gateway.store.postgres_request_log import PostgresRequestLog
from gateway.store.postgres_responses import PostgresResponses

log = logging.getLogger("gateway.store")

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

# asyncpg returns timestamptz columns as aware datetimes already.
_READ = RowReader(parse_time=lambda value: value)

# Request logs go in as one array per column, unnested in submit order.
_LOG_TYPES = {
    "stream": "bool",
    "status_code": "int",
    "prompt_tokens": "int",
    "completion_tokens": "int",
    "cached_tokens": "int",
    "cache_write_tokens": "int",
    "reasoning_tokens": "int",
    "usage_estimated": "bool",
    "cost_usd": "numeric",
    "cache_savings_usd": "numeric",
    "cache_hit": "bool",
    "cache_saved_tokens": "int",
    "cache_saved_usd": "numeric",
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
ON CONFLICT (request_id, created_at) DO NOTHING
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


_INSERT_SESSION = insert_sql("ai_session", SESSION_FIELDS, marks(len(SESSION_FIELDS)))
_INSERT_KEY = (
    insert_sql(
        "ai_api_key",
        [*KEY_INSERT_FIELDS, "updated_at"],
        [*marks(len(KEY_INSERT_FIELDS)), "now()"],
    )
    + f" RETURNING {KEY_COLS}"
)
_UPSERT_QUOTA = quota_upsert_sql([*marks(len(QUOTA_FIELDS)), "now()", "now()"])


def _columns(records: Sequence[Any], fields: Sequence[str]) -> list[list[Any]]:
    """Records as one parameter array per column, for unnest()."""
    return [[param(c, getattr(r, c)) for r in records] for c in fields]


class PostgresStore(
    PostgresGovernance, PostgresResponses, PostgresRequestLog, PostgresAudit, MessageWindow
):
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
        """Apply schema.sql under an advisory lock, so concurrent starts do not race; the
        request log is made partitioned by month (converted in place when it is not yet), and
        schema.sql runs once more so its indexes exist on the partitioned table too."""
        script = resources.files("gateway").joinpath("schema.sql").read_text(encoding="utf-8")
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            await conn.execute(script)
            if await partitions.convert(conn, datetime.now(UTC)):
                log.warning("request log converted to monthly partitions")
            await conn.execute(script)

    async def maintain(self, now: datetime, retention_days: int) -> list[str]:
        """Partitions for this month and the next ones; drop those past retention."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            await partitions.ensure_ahead(conn, now)
            return await partitions.drop_expired(conn, now, retention_days)

    async def has_schema(self) -> bool:
        """True when every table exists in the search path."""
        async with self._conn() as conn:
            found: int = await conn.fetchval(
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
        logs, msgs = split_batch(items)
        if not logs and not msgs:
            return
        async with self._conn() as conn, conn.transaction():
            if logs:
                await conn.execute(_INSERT_LOGS, *_columns(logs, LOG_FIELDS))
            if msgs:
                await conn.execute(_INSERT_MESSAGES, *_columns(msgs, MESSAGE_FIELDS))

    async def mirror_config(
        self, providers: ConfigRows, models: ConfigRows, tiers: ConfigRows
    ) -> None:
        """Upsert the config mirrors in one transaction; rows absent from config are kept."""
        async with self._conn() as conn, conn.transaction():
            for table, cols, values in config_upserts(providers, models, tiers):
                sets = "".join(f"{c} = EXCLUDED.{c}, " for c in cols[1:])
                await conn.execute(
                    insert_sql(table, cols, marks(len(cols)))
                    + f" ON CONFLICT ({cols[0]}) DO UPDATE SET {sets}updated_at = now()",
                    *values,
                )

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        """Insert; StoreConflict if the session_id is taken."""
        args = [param(c, getattr(session, c)) for c in SESSION_FIELDS]
        try:
            async with self._conn() as conn:
                await conn.execute(_INSERT_SESSION, *args)
        except asyncpg.UniqueViolationError as exc:
            raise StoreConflict(f"session {session.session_id} already exists") from exc

    async def get_session(self, uid: str, session_id: str) -> Session | None:
        """The user's session or None."""
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {SESSION_COLS} FROM ai_session s WHERE s.uid = $1 AND s.session_id = $2",
                uid,
                session_id,
            )
        return _READ.session(row) if row else None

    async def list_sessions(
        self, uid: str, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Session], bool]:
        """Keyset page over (updated_at DESC, session_id ASC); an unknown cursor gives no rows."""
        limit = max(0, limit)
        args = Args()
        sql = sessions_page_sql(
            uid=args.add(uid),
            status=None if status is None else args.add(status),
            after=None if after is None else args.add(after),
            limit=args.add(limit + 1),
        )
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return page([_READ.session(r) for r in rows], limit)

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
                f" WHERE s.uid = $1 AND s.session_id = $2 RETURNING {SESSION_COLS}",
                uid,
                session_id,
                text(title),
                status,
                datetime.now(UTC),
            )
        return _READ.session(row) if row else None

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
        """The session and its message window in one LATERAL query (see MessageWindow)."""
        args = Args()
        sql = window_sql(
            uid=args.add(uid),
            sid=args.add(session_id),
            limit=args.add(max(0, limit)),
            before=None if before is None else args.add(before),
            lateral=True,
        )
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return _READ.window(rows)

    # -- keys --------------------------------------------------------------------------------

    async def create_key(self, key: ApiKey) -> ApiKey:
        """Insert; StoreConflict if the hash exists. Returns a copy with the new id."""
        args = [param(c, getattr(key, c)) for c in KEY_INSERT_FIELDS]
        try:
            async with self._conn() as conn:
                row = await conn.fetchrow(_INSERT_KEY, *args)
        except asyncpg.UniqueViolationError as exc:
            raise StoreConflict("an API key with this hash already exists") from exc
        assert row is not None
        return _READ.key(row)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, any status."""
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {KEY_COLS} FROM ai_api_key WHERE key_hash = $1", key_hash
            )
        return _READ.key(row) if row else None

    async def list_keys(self, uid: str | None) -> list[ApiKey]:
        """One user's keys, or all, by id."""
        async with self._conn() as conn:
            if uid is None:
                rows = await conn.fetch(f"SELECT {KEY_COLS} FROM ai_api_key ORDER BY id")
            else:
                rows = await conn.fetch(
                    f"SELECT {KEY_COLS} FROM ai_api_key WHERE uid = $1 ORDER BY id", uid
                )
        return [_READ.key(r) for r in rows]

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
                f"SELECT {KEY_COLS} FROM ai_api_key WHERE updated_at > $1 ORDER BY updated_at, id",
                utc(since),
            )
        return [_READ.key(r) for r in rows]

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
        """Upsert the override; every field is replaced."""
        async with self._conn() as conn:
            await conn.execute(_UPSERT_QUOTA, *(param(c, getattr(q, c)) for c in QUOTA_FIELDS))

    async def quota_overrides_changed_since(self, since: datetime) -> list[QuotaOverride]:
        """Overrides whose updated_at is after `since`."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {QUOTA_COLS} FROM ai_user_quota WHERE updated_at > $1"
                " ORDER BY updated_at, id",
                utc(since),
            )
        return [_READ.quota(r) for r in rows]

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
                f"SELECT uid, model, count(*) AS requests, {token_sums('sum')},"
                f" {money_sums('COALESCE(sum({}), 0)')}"
                f" FROM ai_request_log r WHERE created_at >= $1 AND created_at < $2{who}"
                " GROUP BY uid, model ORDER BY uid, model",
                *args,
            )
        return usage_totals(rows)

    async def count_request_logs(self) -> int:
        """count(*) of ai_request_log."""
        async with self._conn() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM ai_request_log"))


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
