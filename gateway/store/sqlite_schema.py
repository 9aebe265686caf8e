"""SQLite's storage format: the DDL (schema.sql's tables in SQLite types), the TEXT forms that
timestamps, money and JSON fields take in it, and the exact `decsum` aggregate (see sqlite.py)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.store.base import utc
from gateway.store.common import JSON_COLUMNS, MONEY_COLUMNS, TIME_COLUMNS, json_text

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
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    team TEXT, max_budget_usd TEXT, budget_period TEXT
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
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_used_at TEXT,
    models TEXT, expires_at TEXT, rpm INTEGER, tpd INTEGER, max_budget_usd TEXT,
    budget_period TEXT, team TEXT, metadata TEXT
);
CREATE INDEX IF NOT EXISTS ai_api_key_updated_at_idx ON ai_api_key (updated_at);
CREATE INDEX IF NOT EXISTS ai_api_key_prefix_idx ON ai_api_key (key_prefix);
CREATE INDEX IF NOT EXISTS ai_api_key_uid_idx ON ai_api_key (uid);
CREATE TABLE IF NOT EXISTS ai_request_log (
    id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, uid TEXT NOT NULL, key_id TEXT,
    model TEXT NOT NULL, provider TEXT, upstream_model TEXT, stream INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, status_code INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    usage_estimated INTEGER NOT NULL DEFAULT 0, cost_usd TEXT NOT NULL DEFAULT '0',
    latency_ms INTEGER NOT NULL DEFAULT 0, ttft_ms INTEGER, session_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 1, error TEXT, created_at TEXT NOT NULL,
    endpoint TEXT NOT NULL DEFAULT 'chat', team TEXT, tags TEXT, key_metadata TEXT
);
CREATE INDEX IF NOT EXISTS ai_request_log_uid_created_idx ON ai_request_log (uid, created_at);
CREATE INDEX IF NOT EXISTS ai_request_log_created_idx ON ai_request_log (created_at);
CREATE TABLE IF NOT EXISTS ai_response (
    response_id TEXT PRIMARY KEY, uid TEXT NOT NULL, model TEXT NOT NULL, response TEXT NOT NULL,
    input_items TEXT NOT NULL, history TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ai_team (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', max_budget_usd TEXT, budget_period TEXT,
    models TEXT, rpm INTEGER, tpd INTEGER,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_team_updated_at_idx ON ai_team (updated_at);
CREATE TABLE IF NOT EXISTS ai_audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, actor TEXT NOT NULL,
    role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, team TEXT, before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS ai_audit_log_created_idx ON ai_audit_log (created_at, id);
CREATE INDEX IF NOT EXISTS ai_audit_log_actor_created_idx ON ai_audit_log (actor, created_at);
"""

# Columns added after a table's first release: (table, column, definition). SQLite has no
# ADD COLUMN IF NOT EXISTS, so the store adds each one that table_info does not list.
UPGRADES = (
    ("ai_request_log", "endpoint", "TEXT NOT NULL DEFAULT 'chat'"),
    # Governance (SPEC 10): key scopes, user budgets and teams, tags on the request log.
    ("ai_api_key", "models", "TEXT"),
    ("ai_api_key", "expires_at", "TEXT"),
    ("ai_api_key", "rpm", "INTEGER"),
    ("ai_api_key", "tpd", "INTEGER"),
    ("ai_api_key", "max_budget_usd", "TEXT"),
    ("ai_api_key", "budget_period", "TEXT"),
    ("ai_api_key", "team", "TEXT"),
    ("ai_api_key", "metadata", "TEXT"),
    ("ai_user_quota", "team", "TEXT"),
    ("ai_user_quota", "max_budget_usd", "TEXT"),
    ("ai_user_quota", "budget_period", "TEXT"),
    ("ai_request_log", "team", "TEXT"),
    ("ai_request_log", "tags", "TEXT"),
    ("ai_request_log", "key_metadata", "TEXT"),
    # Exact cost (SPEC 13): cache reads and writes within prompt_tokens, reasoning within output.
    ("ai_request_log", "cached_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ai_request_log", "cache_write_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ai_request_log", "reasoning_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ai_request_log", "cache_savings_usd", "TEXT NOT NULL DEFAULT '0'"),
    # Response cache (SPEC 16): hits, and the tokens and cost each one saved.
    ("ai_request_log", "cache_hit", "INTEGER NOT NULL DEFAULT 0"),
    ("ai_request_log", "cache_saved_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ai_request_log", "cache_saved_usd", "TEXT NOT NULL DEFAULT '0'"),
    ("ai_api_key", "max_parallel_requests", "INTEGER"),
    ("ai_user_quota", "max_parallel_requests", "INTEGER"),
    ("ai_team", "max_parallel_requests", "INTEGER"),
    # MCP tools (SPEC 17) a key or team may call.
    ("ai_api_key", "mcp_tools", "TEXT"),
    ("ai_team", "mcp_tools", "TEXT"),
)


def ts_text(moment: datetime) -> str:
    """The fixed-width UTC text form; comparable as text."""
    return utc(moment).isoformat(timespec="microseconds")  # 4-digit years (strftime: "307")


def money_text(value: Decimal) -> str:
    """A Decimal as exact text, rounded to 1e-9 like the PostgreSQL NUMERIC(20,9) column."""
    return format(Decimal(value).quantize(_NANO), "f")


def param(column: str, value: Any) -> Any:
    """A record field as a query parameter: timestamps, money and JSON fields as text."""
    if value is None:
        return None
    if column in TIME_COLUMNS:
        return ts_text(value)
    if column in MONEY_COLUMNS:
        return money_text(value)
    if column in JSON_COLUMNS:
        return json_text(value)
    return value


class DecimalSum:
    """SQL aggregate `decsum(text)`: exact Decimal sum of money text."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return format(self.total, "f")


# Indexes on columns that UPGRADES may add, so created after them (the request-log search).
INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS ai_request_log_request_idx
    ON ai_request_log (request_id, created_at);
CREATE INDEX IF NOT EXISTS ai_request_log_created_id_idx ON ai_request_log (created_at, id);
CREATE INDEX IF NOT EXISTS ai_request_log_model_created_idx
    ON ai_request_log (model, created_at, id);
CREATE INDEX IF NOT EXISTS ai_request_log_endpoint_created_idx
    ON ai_request_log (endpoint, created_at, id);
CREATE INDEX IF NOT EXISTS ai_request_log_failed_idx ON ai_request_log (created_at, id)
    WHERE status NOT IN ('ok', 'client_closed');
"""


def key_log_on_request_and_time(db: sqlite3.Connection) -> None:
    """A log made before: request_id alone was UNIQUE, so requests sharing a client's
    X-Request-Id kept one row. Rebuild the table without that constraint (rows, columns and
    indexes kept); INDEXES then keys it on (request_id, created_at), as in PostgreSQL, which still
    makes writing the same row twice (a spill file replayed) a no-op."""
    unique_alone = [
        row
        for row in db.execute("PRAGMA index_list(ai_request_log)")
        if row[1].startswith("sqlite_autoindex_") and row[2]
    ]
    if not unique_alone:
        return
    (table_sql,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ai_request_log'"
    ).fetchone()
    indexes = [
        sql
        for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = 'ai_request_log' AND sql IS NOT NULL"
        )
    ]
    columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(ai_request_log)"))
    rebuilt = table_sql.replace("request_id TEXT NOT NULL UNIQUE", "request_id TEXT NOT NULL", 1)
    rebuilt = rebuilt.replace("ai_request_log", "ai_request_log_rebuilt", 1)
    steps = [
        rebuilt,
        f"INSERT INTO ai_request_log_rebuilt ({columns}) SELECT {columns} FROM ai_request_log",
        "DROP TABLE ai_request_log",
        "ALTER TABLE ai_request_log_rebuilt RENAME TO ai_request_log",
        *indexes,
    ]
    try:  # one transaction: a crash midway leaves the old table as it was
        db.executescript("BEGIN;\n" + ";\n".join(steps) + ";\nCOMMIT;")
    except sqlite3.Error:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def migrate(db: sqlite3.Connection) -> None:
    """SCHEMA, then each of UPGRADES that the table does not have yet, the request log keyed on
    (request_id, created_at), then INDEXES."""
    db.executescript(SCHEMA)
    for table, column, definition in UPGRADES:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    key_log_on_request_and_time(db)
    db.executescript(INDEXES)
