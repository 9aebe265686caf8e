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

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

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
    RequestLogRow,
    Session,
    StoreConflict,
    WriteItem,
    key_row_id,
)
from gateway.store.common import (
    KEY_COLS,
    KEY_INSERT_FIELDS,
    PRICE_COLUMNS,
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
from gateway.store.request_log import failure_rows, failures_sql, get_sql, log_row, search_sql
from gateway.store.request_query import RequestQuery
from gateway.store.sqlite_audit import SqliteAudit
from gateway.store.sqlite_governance import SqliteGovernance
from gateway.store.sqlite_responses import SqliteResponses
from gateway.store.sqlite_schema import migrate, param, ts_text
from gateway.store.sqlite_thread import SqliteThread, transaction

_READ = RowReader(parse_time=datetime.fromisoformat)
_INSERT_SESSION = insert_sql("ai_session", SESSION_FIELDS, ["?"] * len(SESSION_FIELDS))
# updated_at comes last, set from Python like every timestamp here.
_INSERT_KEY = (
    insert_sql(
        "ai_api_key", [*KEY_INSERT_FIELDS, "updated_at"], ["?"] * (len(KEY_INSERT_FIELDS) + 1)
    )
    + f" RETURNING {KEY_COLS}"
)
_UPSERT_QUOTA = quota_upsert_sql(["?"] * (len(QUOTA_FIELDS) + 2))


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


def _rows(records: Sequence[Any], fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """Records as parameter tuples, in `fields` order."""
    return [tuple(param(c, getattr(r, c)) for c in fields) for r in records]


class SqliteStore(SqliteGovernance, SqliteResponses, SqliteAudit, MessageWindow):
    """Store on one SQLite file (or `:memory:`), WAL mode, one worker thread."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self._worker = SqliteThread(path, busy_timeout_ms=busy_timeout_ms)

    # -- lifecycle ---------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create the tables and indexes, and add columns a database made earlier lacks."""
        await self._worker.run(migrate)

    async def has_schema(self) -> bool:
        """True when every table exists."""
        marks = ", ".join("?" for _ in TABLES)
        found: int = await self._worker.run(
            lambda db: db.execute(
                f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
                TABLES,
            ).fetchone()[0]
        )
        return found == len(TABLES)

    async def ping(self) -> None:
        """SELECT 1 on the worker thread."""
        await self._worker.run(lambda db: db.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """Close the connection on its thread, then stop the thread."""
        await self._worker.close()

    # -- batched writes ----------------------------------------------------------------------

    async def write_batch(self, items: Sequence[WriteItem]) -> None:
        """One transaction; conflicts skipped; counters grow only by inserted messages."""
        logs, msgs = split_batch(items)
        if logs or msgs:
            await self._worker.run(
                _write_batch, _rows(logs, LOG_FIELDS), _rows(msgs, MESSAGE_FIELDS)
            )

    async def mirror_config(
        self, providers: ConfigRows, models: ConfigRows, tiers: ConfigRows
    ) -> None:
        """Upsert the config mirrors in one transaction; rows absent from config are kept."""
        now = ts_text(datetime.now(UTC))
        statements: list[tuple[str, list[Any]]] = []
        for table, cols, values in config_upserts(providers, models, tiers):
            # Prices are exact text here (NUMERIC in PostgreSQL).
            texts = [
                format(v, "f") if c in PRICE_COLUMNS else v
                for c, v in zip(cols, values, strict=True)
            ]
            sets = "".join(f"{c} = excluded.{c}, " for c in cols[1:])
            sql = (
                insert_sql(table, [*cols, "created_at", "updated_at"], ["?"] * (len(cols) + 2))
                + f" ON CONFLICT ({cols[0]}) DO UPDATE SET {sets}updated_at = excluded.updated_at"
            )
            statements.append((sql, [*texts, now, now]))

        def run(db: sqlite3.Connection) -> None:
            with transaction(db):
                for sql, args in statements:
                    db.execute(sql, args)

        await self._worker.run(run)

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        """Insert; StoreConflict if the session_id is taken."""
        args = [param(c, getattr(session, c)) for c in SESSION_FIELDS]
        try:
            await self._worker.run(lambda db: db.execute(_INSERT_SESSION, args))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise StoreConflict(f"session {session.session_id} already exists") from exc

    async def get_session(self, uid: str, session_id: str) -> Session | None:
        """The user's session or None."""
        row = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {SESSION_COLS} FROM ai_session s WHERE s.uid = ? AND s.session_id = ?",
                (uid, session_id),
            ).fetchone()
        )
        return _READ.session(row) if row else None

    async def list_sessions(
        self, uid: str, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Session], bool]:
        """Keyset page over (updated_at DESC, session_id ASC); an unknown cursor gives no rows."""
        limit = max(0, limit)
        args = {"uid": uid, "status": status, "after": after, "n": limit + 1}
        sql = sessions_page_sql(
            ":uid",
            None if status is None else ":status",
            None if after is None else ":after",
            ":n",
        )
        rows = await self._worker.run(lambda db: db.execute(sql, args).fetchall())
        return page([_READ.session(r) for r in rows], limit)

    async def update_session(
        self, uid: str, session_id: str, title: str | None, status: str | None
    ) -> Session | None:
        """Set title/status when given and bump updated_at; nothing given = plain read."""
        if title is None and status is None:
            return await self.get_session(uid, session_id)
        args = (title, status, ts_text(datetime.now(UTC)), uid, session_id)
        row = await self._worker.run(
            lambda db: db.execute(
                "UPDATE ai_session SET title = COALESCE(?, title),"
                " status = COALESCE(?, status), updated_at = max(updated_at, ?)"
                f" WHERE uid = ? AND session_id = ? RETURNING {SESSION_COLS.replace('s.', '')}",
                args,
            ).fetchone()
        )
        return _READ.session(row) if row else None

    async def delete_session(self, uid: str, session_id: str) -> bool:
        """Delete the session and its messages in one transaction."""

        def run(db: sqlite3.Connection) -> bool:
            with transaction(db):
                gone = db.execute(
                    "DELETE FROM ai_session WHERE uid = ? AND session_id = ?", (uid, session_id)
                ).rowcount
                if gone:
                    db.execute("DELETE FROM ai_message WHERE session_id = ?", (session_id,))
            return gone > 0

        return await self._worker.run(run)

    async def _window(
        self, uid: str, session_id: str, limit: int, before: str | None
    ) -> tuple[Session, list[Message]] | None:
        """The session and its message window in one query (see MessageWindow)."""
        args = {"uid": uid, "sid": session_id, "n": max(0, limit), "before": before}
        sql = window_sql(":uid", ":sid", ":n", None if before is None else ":before", lateral=False)
        rows = await self._worker.run(lambda db: db.execute(sql, args).fetchall())
        return _READ.window(rows)

    # -- keys --------------------------------------------------------------------------------

    async def create_key(self, key: ApiKey) -> ApiKey:
        """Insert; StoreConflict if the hash exists. Returns a copy with the new id."""
        args = [param(c, getattr(key, c)) for c in KEY_INSERT_FIELDS]
        args.append(ts_text(datetime.now(UTC)))  # updated_at
        try:
            row = await self._worker.run(lambda db: db.execute(_INSERT_KEY, args).fetchone())
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise StoreConflict("an API key with this hash already exists") from exc
        return _READ.key(row)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, any status."""
        row = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {KEY_COLS} FROM ai_api_key WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        )
        return _READ.key(row) if row else None

    async def list_keys(self, uid: str | None) -> list[ApiKey]:
        """One user's keys, or all, by id."""
        args: tuple[str, ...] = ()
        if uid is None:
            sql = f"SELECT {KEY_COLS} FROM ai_api_key ORDER BY id"
        else:
            sql, args = f"SELECT {KEY_COLS} FROM ai_api_key WHERE uid = ? ORDER BY id", (uid,)
        rows = await self._worker.run(lambda db: db.execute(sql, args).fetchall())
        return [_READ.key(r) for r in rows]

    async def revoke_key(self, id_or_prefix: str) -> int:
        """Revoke the active keys whose id or key_prefix equals the argument."""
        args = (ts_text(datetime.now(UTC)), id_or_prefix, key_row_id(id_or_prefix))
        return await self._worker.run(
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
        rows = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {KEY_COLS} FROM ai_api_key WHERE updated_at > ? ORDER BY updated_at, id",
                (ts_text(since),),
            ).fetchall()
        )
        return [_READ.key(r) for r in rows]

    async def touch_keys(self, last_used: dict[str, datetime]) -> None:
        """One transaction for the batch; ids that are not row ids (static keys) are ignored."""
        pairs = [
            {"id": i, "t": ts_text(t)}
            for k, t in last_used.items()
            if (i := key_row_id(k)) is not None
        ]
        if not pairs:
            return

        def run(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.executemany(
                    "UPDATE ai_api_key SET last_used_at = max(COALESCE(last_used_at, :t), :t)"
                    " WHERE id = :id",
                    pairs,
                )

        await self._worker.run(run)

    # -- quotas and usage --------------------------------------------------------------------

    async def set_user_quota(self, q: QuotaOverride) -> None:
        """Upsert the override; every field is replaced."""
        now = ts_text(datetime.now(UTC))
        args = [param(c, getattr(q, c)) for c in QUOTA_FIELDS]
        await self._worker.run(lambda db: db.execute(_UPSERT_QUOTA, [*args, now, now]))

    async def quota_overrides_changed_since(self, since: datetime) -> list[QuotaOverride]:
        """Overrides whose updated_at is after `since`."""
        rows = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {QUOTA_COLS} FROM ai_user_quota WHERE updated_at > ?"
                " ORDER BY updated_at, id",
                (ts_text(since),),
            ).fetchall()
        )
        return [_READ.quota(r) for r in rows]

    async def usage(self, uid: str | None, day: date) -> list[dict[str, Any]]:
        """Aggregates ai_request_log over [day 00:00 UTC, next day 00:00 UTC), exactly."""
        start = datetime.combine(day, time(0), UTC)
        args = {"start": ts_text(start), "end": ts_text(start + timedelta(days=1)), "uid": uid}
        who = " AND uid = :uid" if uid is not None else ""
        rows = await self._worker.run(
            lambda db: db.execute(
                f"SELECT uid, model, count(*) AS requests, {token_sums('total')},"
                f" {money_sums('decsum({})')}"
                f" FROM ai_request_log r WHERE created_at >= :start AND created_at < :end{who}"
                " GROUP BY uid, model ORDER BY uid, model",
                args,
            ).fetchall()
        )
        return usage_totals(rows)

    async def maintain(self, now: datetime, retention_days: int) -> list[str]:
        """Delete request-log rows older than retention_days (0 keeps everything)."""
        if retention_days <= 0:
            return []
        cutoff = ts_text(now - timedelta(days=retention_days))

        def run(db: sqlite3.Connection) -> int:
            with transaction(db):
                return db.execute(
                    "DELETE FROM ai_request_log WHERE created_at < ?", (cutoff,)
                ).rowcount

        gone = await self._worker.run(run)
        return [f"{gone} rows"] if gone else []

    async def count_request_logs(self) -> int:
        """count(*) of ai_request_log."""
        return await self._worker.run(
            lambda db: int(db.execute("SELECT count(*) FROM ai_request_log").fetchone()[0])
        )

    # -- request-log search (the console) -----------------------------------------------------

    async def search_requests(
        self, query: RequestQuery, limit: int, before: str | None
    ) -> tuple[list[RequestLogRow], bool]:
        """Keyset page, newest first (see request_log)."""
        limit = max(0, limit)
        args = _NamedArgs()
        sql = search_sql(query, before, limit + 1, args.add)
        rows = await self._worker.run(lambda db: db.execute(sql, args).fetchall())
        return page([log_row(r, datetime.fromisoformat) for r in rows], limit)

    async def get_request(self, request_id: str, uid: str | None = None) -> RequestLogRow | None:
        """One row by request_id (and owner)."""
        args = _NamedArgs()
        sql = get_sql(request_id, uid, args.add)
        row = await self._worker.run(lambda db: db.execute(sql, args).fetchone())
        return log_row(row, datetime.fromisoformat) if row else None

    async def request_failures(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Failures per (UTC day, status); the text timestamps start with the date."""
        args = _NamedArgs()
        sql = failures_sql("substr(r.created_at, 1, 10)", start, end, args.add)
        rows = await self._worker.run(lambda db: db.execute(sql, args).fetchall())
        return failure_rows(rows)


class _NamedArgs(dict[str, Any]):
    """Named query arguments handing out their own `:pN` placeholders (timestamps as text)."""

    def add(self, value: Any) -> str:
        name = f"p{len(self) + 1}"
        self[name] = ts_text(value) if isinstance(value, datetime) else value
        return f":{name}"


def _write_batch(
    db: sqlite3.Connection, logs: list[tuple[Any, ...]], msgs: list[tuple[Any, ...]]
) -> None:
    """Worker-thread body of write_batch: inserts, then counters from what was inserted."""
    grown: dict[str, list[Any]] = {}  # session_id -> [count, tokens, last created_at]
    with transaction(db):
        if logs:
            db.executemany(
                f"INSERT INTO ai_request_log ({', '.join(LOG_FIELDS)})"
                f" VALUES ({', '.join('?' * len(LOG_FIELDS))})"
                " ON CONFLICT (request_id, created_at) DO NOTHING",
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
