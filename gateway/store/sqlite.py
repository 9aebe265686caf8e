"""SQLite backend of the Store protocol (the embedded default), on the stdlib sqlite3 module.
Same tables and semantics as PostgreSQL; every call runs on one dedicated worker thread.

Rules:
- The connection lives on, and is only touched by, the single executor thread: the event loop
  never blocks on SQLite and calls are serialised without locks.
- Timestamps are TEXT in one fixed-width UTC form (`YYYY-MM-DDTHH:MM:SS.ffffff+00:00`), so text
  order is time order; every timestamp is written from Python, never by an SQL default.
- Money is TEXT of a Decimal quantized to 1e-9 (like NUMERIC(20,9)); sums use a Decimal
  aggregate, never floating point.
- sqlite3.OperationalError (busy, locked, I/O, cannot open) becomes StoreUnavailable; a plain
  SQLITE_ERROR (bad SQL, missing table) is a bug and propagates as is.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

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

T = TypeVar("T")
_NANO = Decimal("1e-9")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ai_provider (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active', models TEXT NOT NULL DEFAULT '[]',
    is_default INTEGER NOT NULL DEFAULT 0, sort INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ai_model (
    id INTEGER PRIMARY KEY, provider_name TEXT NOT NULL, model TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '', max_tokens INTEGER NOT NULL DEFAULT 0,
    input_price TEXT NOT NULL DEFAULT '0', output_price TEXT NOT NULL DEFAULT '0',
    status TEXT NOT NULL DEFAULT 'active', is_default INTEGER NOT NULL DEFAULT 0,
    sort INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ai_quota_tier (
    id INTEGER PRIMARY KEY, tier TEXT NOT NULL UNIQUE, rpm INTEGER NOT NULL DEFAULT 0,
    tpd INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ai_user_quota (
    id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, tier TEXT, rpm INTEGER, tpd INTEGER,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_user_quota_updated_at_idx ON ai_user_quota (updated_at);
CREATE TABLE IF NOT EXISTS ai_session (
    id INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, uid TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '', model TEXT, message_count INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_session_uid_updated_idx
    ON ai_session (uid, updated_at DESC, session_id);
CREATE TABLE IF NOT EXISTS ai_message (
    id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, tokens INTEGER NOT NULL DEFAULT 0, model TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_message_session_idx ON ai_message (session_id, id);
CREATE TABLE IF NOT EXISTS ai_api_key (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL, uid TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', tier TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_used_at TEXT
);
CREATE INDEX IF NOT EXISTS ai_api_key_updated_at_idx ON ai_api_key (updated_at);
CREATE INDEX IF NOT EXISTS ai_api_key_prefix_idx ON ai_api_key (key_prefix);
CREATE INDEX IF NOT EXISTS ai_api_key_uid_idx ON ai_api_key (uid);
CREATE TABLE IF NOT EXISTS ai_request_log (
    id INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, uid TEXT NOT NULL, key_id TEXT,
    model TEXT NOT NULL, provider TEXT, upstream_model TEXT, stream INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, status_code INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    usage_estimated INTEGER NOT NULL DEFAULT 0, cost_usd TEXT NOT NULL DEFAULT '0',
    latency_ms INTEGER NOT NULL DEFAULT 0, ttft_ms INTEGER, session_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 1, error TEXT, created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_request_log_uid_created_idx ON ai_request_log (uid, created_at);
"""

_SESSION_COLS = ", ".join(f"s.{f}" for f in SESSION_FIELDS)
_KEY_COLS = ", ".join(KEY_FIELDS)
_TIMES = frozenset({"created_at", "updated_at", "last_used_at"})


def sqlite_path(url: str) -> str:
    """`sqlite:///gateway.db` -> `gateway.db`, `sqlite:////abs/x.db` -> `/abs/x.db`,
    `sqlite://:memory:` (or `sqlite:///:memory:`) -> `:memory:`."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url!r}")
    rest = url.removeprefix("sqlite://").split("?", 1)[0]
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    path = rest.removeprefix("/")
    if not path:
        raise ValueError(f"sqlite URL without a path: {url!r}")
    return path


def _ts(moment: datetime) -> str:
    """The fixed-width UTC text form; comparable as text."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _money(value: Decimal) -> str:
    """A Decimal as exact text, rounded to 1e-9 like the PostgreSQL NUMERIC(20,9) column."""
    return format(Decimal(value).quantize(_NANO), "f")


class _DecimalSum:
    """SQL aggregate `decsum(text)`: exact Decimal sum of money text."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return format(self.total, "f")


def _value(row: sqlite3.Row, column: str) -> Any:
    value = row[column]
    return datetime.fromisoformat(value) if column in _TIMES and value is not None else value


def _session(row: sqlite3.Row) -> Session:
    return Session(*(_value(row, f) for f in SESSION_FIELDS))


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(str(row["id"]), *(_value(row, f) for f in KEY_FIELDS[1:]))


def _param(column: str, value: Any) -> Any:
    """A record field as a query parameter (timestamps and money as text)."""
    if column == "created_at":
        return _ts(value)
    if column == "cost_usd":
        return _money(value)
    return value


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (the connection is in autocommit)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # a failed COMMIT (busy) leaves it open
            db.execute("ROLLBACK")
        raise


class SqliteStore:
    """Store on one SQLite file (or `:memory:`), WAL mode, one worker thread."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None  # owned by the worker thread
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """Open the connection lazily, on the worker thread."""
        if self._db is None:
            db = sqlite3.connect(
                self._path, isolation_level=None, timeout=self._busy_timeout_ms / 1000
            )
            db.row_factory = sqlite3.Row
            if self._path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            db.create_aggregate("decsum", 1, _DecimalSum)  # type: ignore[arg-type]
            self._db = db
        return self._db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) on the worker thread; OperationalError -> StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable("sqlite store is closed")

        def call() -> T:
            return fn(self._connect(), *args)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.OperationalError as exc:
            # SQLITE_ERROR is a bad statement or a missing table: a bug, not an outage.
            if getattr(exc, "sqlite_errorname", None) == "SQLITE_ERROR":
                raise
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create the tables and indexes (idempotent)."""
        await self._run(lambda db: db.executescript(SCHEMA))

    async def has_schema(self) -> bool:
        """True when every table exists."""
        marks = ", ".join("?" for _ in TABLES)
        found = await self._run(
            lambda db: db.execute(
                f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
                TABLES,
            ).fetchone()[0]
        )
        return found == len(TABLES)

    async def ping(self) -> None:
        """SELECT 1 on the worker thread."""
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """Close the connection on its thread, then stop the thread."""
        if self._closed:
            return

        def shut(db: sqlite3.Connection) -> None:
            db.close()
            self._db = None

        if self._db is not None:
            await self._run(shut)
        self._closed = True
        self._executor.shutdown(wait=False)

    # -- batched writes ----------------------------------------------------------------------

    async def write_batch(self, items: Sequence[WriteItem]) -> None:
        """One transaction; conflicts skipped; counters grow only by inserted messages."""
        logs = [
            tuple(_param(c, getattr(r, c)) for c in LOG_FIELDS)
            for r in items
            if isinstance(r, RequestLogRow)
        ]
        msgs = [
            tuple(_param(c, getattr(m, c)) for c in MESSAGE_FIELDS)
            for m in items
            if isinstance(m, MessageRow)
        ]
        if logs or msgs:
            await self._run(_write_batch, logs, msgs)

    async def mirror_config(
        self,
        providers: list[dict[str, Any]],
        models: list[dict[str, Any]],
        tiers: list[dict[str, Any]],
    ) -> None:
        """Upsert the config mirrors in one transaction; rows absent from config are kept."""
        now = _ts(datetime.now(UTC))
        statements: list[tuple[str, list[Any]]] = []
        for table, allowed, rows in (
            ("ai_provider", PROVIDER_COLUMNS, providers),
            ("ai_model", MODEL_COLUMNS, models),
            ("ai_quota_tier", TIER_COLUMNS, tiers),
        ):
            for row in rows:
                cols = checked_columns(row, allowed, table)
                values = [_config_value(c, row[c]) for c in cols]
                sets = "".join(f"{c} = excluded.{c}, " for c in cols[1:])
                sql = (
                    f"INSERT INTO {table} ({', '.join(cols)}, created_at, updated_at)"
                    f" VALUES ({', '.join('?' for _ in cols)}, ?, ?)"
                    f" ON CONFLICT ({cols[0]}) DO UPDATE SET {sets}updated_at = excluded.updated_at"
                )
                statements.append((sql, [*values, now, now]))

        def run(db: sqlite3.Connection) -> None:
            with _transaction(db):
                for sql, args in statements:
                    db.execute(sql, args)

        await self._run(run)

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        """Insert; StoreConflict if the session_id is taken."""
        args = (
            session.session_id,
            session.uid,
            session.title,
            session.model,
            session.message_count,
            session.total_tokens,
            session.status,
            _ts(session.created_at),
            _ts(session.updated_at),
        )
        try:
            await self._run(
                lambda db: db.execute(
                    "INSERT INTO ai_session (session_id, uid, title, model, message_count,"
                    " total_tokens, status, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    args,
                )
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise StoreConflict(f"session {session.session_id} already exists") from exc

    async def get_session(self, uid: str, session_id: str) -> Session | None:
        """The user's session or None."""
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_SESSION_COLS} FROM ai_session s WHERE s.uid = ? AND s.session_id = ?",
                (uid, session_id),
            ).fetchone()
        )
        return _session(row) if row else None

    async def list_sessions(
        self, uid: str, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Session], bool]:
        """Keyset page over (updated_at DESC, session_id ASC); an unknown cursor gives no rows."""
        limit = max(0, limit)
        args: dict[str, Any] = {"uid": uid, "status": status, "after": after, "n": limit + 1}
        join, where = "", ["s.uid = :uid"]
        if status is not None:
            where.append("s.status = :status")
        if after is not None:
            join = " JOIN ai_session c ON c.uid = :uid AND c.session_id = :after"
            where.append(
                "(s.updated_at < c.updated_at"
                " OR (s.updated_at = c.updated_at AND s.session_id > c.session_id))"
            )
        sql = (
            f"SELECT {_SESSION_COLS} FROM ai_session s{join} WHERE {' AND '.join(where)}"
            " ORDER BY s.updated_at DESC, s.session_id LIMIT :n"
        )
        rows = await self._run(lambda db: db.execute(sql, args).fetchall())
        return [_session(r) for r in rows[:limit]], len(rows) > limit

    async def update_session(
        self, uid: str, session_id: str, title: str | None, status: str | None
    ) -> Session | None:
        """Set title/status when given and bump updated_at; nothing given = plain read."""
        if title is None and status is None:
            return await self.get_session(uid, session_id)
        args = (title, status, _ts(datetime.now(UTC)), uid, session_id)
        row = await self._run(
            lambda db: db.execute(
                "UPDATE ai_session SET title = COALESCE(?, title),"
                " status = COALESCE(?, status), updated_at = max(updated_at, ?)"
                f" WHERE uid = ? AND session_id = ? RETURNING {_SESSION_COLS.replace('s.', '')}",
                args,
            ).fetchone()
        )
        return _session(row) if row else None

    async def delete_session(self, uid: str, session_id: str) -> bool:
        """Delete the session and its messages in one transaction."""

        def run(db: sqlite3.Connection) -> bool:
            with _transaction(db):
                gone = db.execute(
                    "DELETE FROM ai_session WHERE uid = ? AND session_id = ?", (uid, session_id)
                ).rowcount
                if gone:
                    db.execute("DELETE FROM ai_message WHERE session_id = ?", (session_id,))
            return gone > 0

        return await self._run(run)

    async def _window(
        self, uid: str, session_id: str, limit: int, before: str | None
    ) -> tuple[Session, list[Message]] | None:
        """The session joined with up to `limit` of its newest messages (older than `before`),
        oldest first, in one query; None when the session is not the user's."""
        older = ""
        if before is not None:
            older = (
                " AND id < (SELECT id FROM ai_message b"
                " WHERE b.message_id = :before AND b.session_id = :sid)"
            )
        args = {"uid": uid, "sid": session_id, "n": max(0, limit), "before": before}
        sql = (
            f"SELECT {_SESSION_COLS}, m.message_id, m.role, m.content, m.tokens,"
            " m.model AS m_model, m.created_at AS m_created_at"
            " FROM ai_session s LEFT JOIN ("
            "   SELECT id, message_id, role, content, tokens, model, created_at"
            f"  FROM ai_message WHERE session_id = :sid{older}"
            "   ORDER BY id DESC LIMIT :n"
            " ) m ON 1"
            " WHERE s.uid = :uid AND s.session_id = :sid ORDER BY m.id"
        )
        rows = await self._run(lambda db: db.execute(sql, args).fetchall())
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
                created_at=datetime.fromisoformat(r["m_created_at"]),
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
        args = (
            key.key_hash,
            key.key_prefix,
            key.uid,
            key.name,
            key.tier,
            key.status,
            _ts(key.created_at),
            _ts(datetime.now(UTC)),
            _ts(key.last_used_at) if key.last_used_at else None,
        )
        try:
            row = await self._run(
                lambda db: db.execute(
                    "INSERT INTO ai_api_key (key_hash, key_prefix, uid, name, tier, status,"
                    " created_at, updated_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    f" RETURNING {_KEY_COLS}",
                    args,
                ).fetchone()
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise StoreConflict("an API key with this hash already exists") from exc
        return _key(row)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, any status."""
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_KEY_COLS} FROM ai_api_key WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        )
        return _key(row) if row else None

    async def list_keys(self, uid: str | None) -> list[ApiKey]:
        """One user's keys, or all, by id."""
        if uid is None:
            sql, args = f"SELECT {_KEY_COLS} FROM ai_api_key ORDER BY id", ()
        else:
            sql, args = f"SELECT {_KEY_COLS} FROM ai_api_key WHERE uid = ? ORDER BY id", (uid,)
        rows = await self._run(lambda db: db.execute(sql, args).fetchall())
        return [_key(r) for r in rows]

    async def revoke_key(self, id_or_prefix: str) -> int:
        """Revoke the active keys whose id or key_prefix equals the argument."""
        args = (_ts(datetime.now(UTC)), id_or_prefix, key_row_id(id_or_prefix))
        return await self._run(
            lambda db: (
                db.execute(
                    "UPDATE ai_api_key SET status = 'revoked', updated_at = ?"
                    " WHERE status = 'active' AND (key_prefix = ? OR id = ?)",
                    args,
                ).rowcount
            )
        )

    async def keys_changed_since(self, since: datetime) -> list[ApiKey]:
        """Keys whose updated_at is after `since`, oldest change first."""
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_KEY_COLS} FROM ai_api_key WHERE updated_at > ? ORDER BY updated_at, id",
                (_ts(since),),
            ).fetchall()
        )
        return [_key(r) for r in rows]

    async def touch_keys(self, last_used: dict[str, datetime]) -> None:
        """One transaction for the batch; ids that are not row ids (static keys) are ignored."""
        pairs = [
            {"id": i, "t": _ts(t)} for k, t in last_used.items() if (i := key_row_id(k)) is not None
        ]
        if not pairs:
            return

        def run(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.executemany(
                    "UPDATE ai_api_key SET last_used_at = max(COALESCE(last_used_at, :t), :t)"
                    " WHERE id = :id",
                    pairs,
                )

        await self._run(run)

    # -- quotas and usage --------------------------------------------------------------------

    async def set_user_quota(self, q: QuotaOverride) -> None:
        """Upsert the override; all three fields are replaced."""
        now = _ts(datetime.now(UTC))
        await self._run(
            lambda db: db.execute(
                "INSERT INTO ai_user_quota (uid, tier, rpm, tpd, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uid) DO UPDATE SET tier = excluded.tier,"
                " rpm = excluded.rpm, tpd = excluded.tpd, updated_at = excluded.updated_at",
                (q.uid, q.tier, q.rpm, q.tpd, now, now),
            )
        )

    async def quota_overrides_changed_since(self, since: datetime) -> list[QuotaOverride]:
        """Overrides whose updated_at is after `since`."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT uid, tier, rpm, tpd FROM ai_user_quota WHERE updated_at > ?"
                " ORDER BY updated_at, id",
                (_ts(since),),
            ).fetchall()
        )
        return [QuotaOverride(r["uid"], r["tier"], r["rpm"], r["tpd"]) for r in rows]

    async def usage(self, uid: str | None, day: date) -> list[dict[str, Any]]:
        """Aggregates ai_request_log over [day 00:00 UTC, next day 00:00 UTC), exactly."""
        start = datetime.combine(day, time(0), UTC)
        args = {"start": _ts(start), "end": _ts(start + timedelta(days=1)), "uid": uid}
        who = " AND uid = :uid" if uid is not None else ""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT uid, model, count(*) AS requests, total(prompt_tokens) AS prompt_tokens,"
                " total(completion_tokens) AS completion_tokens, decsum(cost_usd) AS cost_usd"
                f" FROM ai_request_log WHERE created_at >= :start AND created_at < :end{who}"
                " GROUP BY uid, model ORDER BY uid, model",
                args,
            ).fetchall()
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
        return await self._run(
            lambda db: int(db.execute("SELECT count(*) FROM ai_request_log").fetchone()[0])
        )


def _write_batch(
    db: sqlite3.Connection, logs: list[tuple[Any, ...]], msgs: list[tuple[Any, ...]]
) -> None:
    """Worker-thread body of write_batch: inserts, then counters from what was inserted."""
    grown: dict[str, list[Any]] = {}  # session_id -> [count, tokens, last created_at]
    with _transaction(db):
        if logs:
            db.executemany(
                f"INSERT INTO ai_request_log ({', '.join(LOG_FIELDS)})"
                f" VALUES ({', '.join('?' * len(LOG_FIELDS))}) ON CONFLICT (request_id) DO NOTHING",
                logs,
            )
        for message_id, session_id, role, content, tokens, model, created_at in msgs:
            inserted = db.execute(
                "INSERT INTO ai_message (message_id, session_id, role, content, tokens, model,"
                " created_at) SELECT ?, ?, ?, ?, ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM ai_session WHERE session_id = ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                (message_id, session_id, role, content, tokens, model, created_at, session_id),
            ).rowcount
            if inserted == 1:
                acc = grown.setdefault(session_id, [0, 0, created_at])
                acc[0] += 1
                acc[1] += tokens
                acc[2] = max(acc[2], created_at)
        if grown:
            db.executemany(
                "UPDATE ai_session SET message_count = message_count + ?,"
                " total_tokens = total_tokens + ?, updated_at = max(updated_at, ?)"
                " WHERE session_id = ?",
                [(n, t, last, sid) for sid, (n, t, last) in grown.items()],
            )


def _config_value(column: str, value: Any) -> Any:
    """Adapt a config value to its column (JSON text for models, exact text for prices)."""
    if column == "models":
        return orjson.dumps(value).decode()
    if column in ("input_price", "output_price"):
        return format(value if isinstance(value, Decimal) else Decimal(str(value)), "f")
    return value
