"""A database made by the first release, upgraded in place by `migrate` (twice) on both backends:
its rows survive intact, the governance columns and ai_team work, and the columns match a fresh
database's."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from gateway.store import QuotaOverride, Store
from gateway.store.backends import SqliteStore, connect_postgres
from gateway.store.base import TABLES, Team
from tests.contract.test_store import log_row
from tests.support.databases import fresh_postgres_url

OLD_SCHEMA = Path(__file__).parent / "old_schema"
T = "2024-05-01T12:00:00.000000+00:00"
# Quoted literals read the same in both dialects ('1' is TRUE for a PostgreSQL boolean).
OLD_ROWS = [
    "INSERT INTO ai_api_key (key_hash, key_prefix, uid, name, tier, status, created_at,"
    f" updated_at) VALUES ('oldhash', 'sk-gw-old000', 'olduser', 'old key', 'pro', 'active',"
    f" '{T}', '{T}')",
    "INSERT INTO ai_user_quota (uid, tier, rpm, tpd, created_at, updated_at)"
    f" VALUES ('olduser', 'pro', 7, 700, '{T}', '{T}')",
    "INSERT INTO ai_request_log (request_id, uid, key_id, model, provider, upstream_model,"
    " stream, status, status_code, prompt_tokens, completion_tokens, usage_estimated, cost_usd,"
    " latency_ms, ttft_ms, session_id, attempts, error, created_at) VALUES ('old-req',"
    " 'olduser', '1', 'gpt-x', 'openai', 'gpt-x', '1', 'ok', 200, 10, 5, '0', '0.000000123',"
    f" 100, 20, NULL, 1, NULL, '{T}')",
]


@dataclass
class RawDatabase:
    """A database reached both through a Store and with raw SQL (script and query)."""

    store: Store
    script: Callable[[str], Awaitable[None]]
    columns: Callable[[], Awaitable[set[tuple[str, str, str]]]]


@asynccontextmanager
async def raw_database(kind: str, path: Path) -> AsyncIterator[RawDatabase]:
    if kind == "sqlite":
        store = SqliteStore(str(path))

        async def sqlite_script(sql: str) -> None:
            with sqlite3.connect(path) as db:
                db.executescript(sql)

        async def sqlite_columns() -> set[tuple[str, str, str]]:
            with sqlite3.connect(path) as db:
                return {
                    (table, row[1], row[2])
                    for table in TABLES
                    for row in db.execute(f"PRAGMA table_info({table})")
                }

        try:
            yield RawDatabase(store, sqlite_script, sqlite_columns)
        finally:
            await store.close()
        return
    async with fresh_postgres_url() as url:
        pg = await connect_postgres(url)

        async def pg_script(sql: str) -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        async def pg_columns() -> set[tuple[str, str, str]]:
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch(
                    "SELECT table_name, column_name, data_type || coalesce(':' || "
                    "numeric_precision || ',' || numeric_scale, '') FROM information_schema.columns"
                    " WHERE table_schema = 'public'"
                    # Monthly partitions of the request log differ with the rows' months.
                    " AND table_name !~ '^ai_request_log_(p[0-9]{6}|default)$'"
                )
            finally:
                await conn.close()
            return {(r[0], r[1], r[2]) for r in rows}

        try:
            yield RawDatabase(pg, pg_script, pg_columns)
        finally:
            await pg.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_first_release_database_upgrades_in_place(kind: str, tmp_path: Path) -> None:
    async with raw_database(kind, tmp_path / "old.db") as old:
        await old.script((OLD_SCHEMA / f"{kind}_v1.sql").read_text())
        await old.script(";\n".join(OLD_ROWS))
        store = old.store
        assert not await store.has_schema()  # ai_response and ai_team are missing
        await store.migrate()
        await store.migrate()
        assert await store.has_schema()

        # The old rows, intact; the new fields read as not set.
        key = await store.find_key("oldhash")
        assert key is not None
        assert (key.key_prefix, key.uid, key.name, key.tier, key.status) == (
            "sk-gw-old000", "olduser", "old key", "pro", "active"
        )  # fmt: skip
        assert key.created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
        assert (key.models, key.expires_at, key.rpm, key.tpd, key.max_budget_usd) == (None,) * 5
        assert (key.budget_period, key.team, key.metadata) == (None, None, None)
        assert [k.id for k in await store.active_keys()] == [key.id]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        assert await store.quota_overrides_changed_since(epoch) == [
            QuotaOverride("olduser", "pro", 7, 700)
        ]
        usage = await store.usage("olduser", date(2024, 5, 1))
        assert [(u["requests"], u["cost_usd"]) for u in usage] == [(1, Decimal("0.000000123"))]
        start, end = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
        for group_by in ("tag", "team"):
            spent = await store.spend(group_by, start, end)
            assert [(s["group"], s["requests"]) for s in spent] == [(None, 1)]

        # The new columns and table work on the upgraded database.
        changed = await store.update_key(
            key.id,
            {"models": ("gpt-x", "team/*"), "max_budget_usd": Decimal("2.5"),
             "budget_period": "monthly", "team": "core", "metadata": {"env": "prod"}},
        )  # fmt: skip
        assert changed is not None and changed.models == ("gpt-x", "team/*")
        assert (changed.max_budget_usd, changed.team) == (Decimal("2.5"), "core")
        assert changed.metadata == {"env": "prod"}
        upgraded = QuotaOverride("olduser", "pro", 7, 700, "core", Decimal("10"), "weekly")
        await store.set_user_quota(upgraded)
        assert await store.quota_overrides_changed_since(epoch) == [upgraded]
        await store.put_team(Team("core", "Core", Decimal("100"), "monthly"))
        assert [t.id for t in await store.list_teams()] == ["core"]
        await store.write_batch(
            [log_row("new-req", uid="olduser", team="core", tags='["x"]', created_at=start)]
        )
        spent = await store.spend("tag", start, end, uid="olduser")
        assert [(s["group"], s["requests"]) for s in spent] == [("x", 1), (None, 1)]
        # Two requests sharing a client's X-Request-Id are two rows (request_id alone was unique).
        again = log_row("new-req", uid="olduser", created_at=start + timedelta(seconds=1))
        await store.write_batch([again, again])
        usage = await store.usage("olduser", date(2024, 5, 1))
        assert sum(u["requests"] for u in usage) == 3

        upgraded_columns = await old.columns()
    async with raw_database(kind, tmp_path / "fresh.db") as fresh:
        await fresh.store.migrate()
        assert await fresh.columns() == upgraded_columns
