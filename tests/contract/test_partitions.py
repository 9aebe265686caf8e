"""The PostgreSQL request log partitioned by month: a plain log from an earlier release is
converted in place without losing a row, partitions are made ahead, retention drops whole old
partitions, and a query bounded by created_at reads only its months' partitions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from gateway.store import partitions as parts
from gateway.store.backends import open_store
from tests.contract.test_store import log_row
from tests.support.databases import fresh_postgres_url

OLD_LOG = """
CREATE TABLE ai_request_log (
    id BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, uid TEXT NOT NULL, key_id TEXT,
    model TEXT NOT NULL, provider TEXT, upstream_model TEXT, stream BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL, status_code INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    usage_estimated BOOLEAN NOT NULL DEFAULT FALSE, cost_usd NUMERIC(20, 9) NOT NULL DEFAULT 0,
    latency_ms INTEGER NOT NULL DEFAULT 0, ttft_ms INTEGER, session_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 1, error TEXT, created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ai_request_log_uid_created_idx ON ai_request_log (uid, created_at);
"""
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    async with fresh_postgres_url() as url:
        connection = await asyncpg.connect(url)
        try:
            yield connection
        finally:
            await connection.close()


async def _insert(conn: asyncpg.Connection, request_id: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO ai_request_log (request_id, uid, model, status, status_code, cost_usd,"
        " created_at) VALUES ($1, 'u', 'm', 'ok', 200, 0.000000123, $2)",
        request_id,
        at,
    )


def test_month_arithmetic_and_retention_choice() -> None:
    assert parts.months_between(datetime(2025, 11, 3, tzinfo=UTC), NOW)[0] == datetime(
        2025, 11, 1, tzinfo=UTC
    )
    assert len(parts.months_between(datetime(2025, 11, 3, tzinfo=UTC), NOW)) == 13
    assert parts.next_month(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    names = [
        parts.partition_name(m) for m in parts.months_between(datetime(2026, 1, 1, tzinfo=UTC), NOW)
    ]
    # 60 days before Nov 25 is Sep 26: January..August ended before it, September did not.
    assert parts.expired(names, NOW, 60) == [f"ai_request_log_p2026{m:02d}" for m in range(1, 9)]
    assert parts.expired(names, NOW, 0) == []


async def test_a_plain_log_is_converted_in_place_without_losing_a_row(conn) -> None:
    await conn.execute(OLD_LOG)
    moments = [datetime(2026, m, 15, tzinfo=UTC) for m in (7, 9, 11)]
    for i, at in enumerate(moments):
        await _insert(conn, f"r{i}", at)
    async with conn.transaction():
        moved = await parts.convert(conn, NOW)
    assert moved == 3
    assert await parts.is_partitioned(conn)
    names = await parts.partitions(conn)
    assert names[0] == "ai_request_log_p202607" and names[-1] == "ai_request_log_p202702"
    rows = await conn.fetch(
        "SELECT request_id, created_at, cost_usd FROM ai_request_log ORDER BY id"
    )
    assert [(r["request_id"], r["created_at"]) for r in rows] == [
        (f"r{i}", at) for i, at in enumerate(moments)
    ]
    assert rows[0]["cost_usd"] == Decimal("0.000000123")
    # New rows still get ids after the old ones, and a replayed row is skipped, not doubled.
    await _insert(conn, "r3", NOW)
    await conn.execute(
        "INSERT INTO ai_request_log (request_id, uid, model, status, status_code, created_at)"
        " VALUES ('r3', 'u', 'm', 'ok', 200, $1) ON CONFLICT (request_id, created_at) DO NOTHING",
        NOW,
    )
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM ai_request_log ORDER BY id")]
    assert len(ids) == 4 and ids == sorted(set(ids))
    async with conn.transaction():
        assert await parts.convert(conn, NOW) == 0  # idempotent


async def test_partitions_ahead_retention_and_pruning(conn) -> None:
    await conn.execute(OLD_LOG)
    async with conn.transaction():
        await parts.convert(conn, datetime(2026, 1, 10, tzinfo=UTC))
    for month in range(1, 12):  # the gateway makes partitions ahead as the months go by
        await parts.ensure_ahead(conn, datetime(2026, month, 1, tzinfo=UTC))
    names = await parts.partitions(conn)
    assert "ai_request_log_p202611" in names and "ai_request_log_p202702" in names
    for month in (1, 6, 11):
        await _insert(conn, f"m{month}", datetime(2026, month, 2, tzinfo=UTC))
    gone = await parts.drop_expired(conn, NOW, 120)  # cutoff 2026-07-28: Jan..Jun go
    assert gone == [f"ai_request_log_p2026{m:02d}" for m in range(1, 7)]
    left = [r["request_id"] for r in await conn.fetch("SELECT request_id FROM ai_request_log")]
    assert left == ["m11"]
    plan = "\n".join(
        r[0]
        for r in await conn.fetch(
            "EXPLAIN SELECT count(*) FROM ai_request_log"
            " WHERE created_at >= '2026-11-01' AND created_at < '2026-12-01'"
        )
    )
    assert "ai_request_log_p202611" in plan
    assert "ai_request_log_p202610" not in plan and "ai_request_log_p202612" not in plan


async def test_the_store_migrates_an_old_log_and_keeps_writing_idempotently() -> None:
    async with fresh_postgres_url() as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(OLD_LOG)
            await _insert(conn, "before", datetime(2026, 8, 3, tzinfo=UTC))
        finally:
            await conn.close()
        store = await open_store(url)
        try:
            await store.migrate()
            await store.migrate()  # a second start changes nothing
            row = log_row("after", created_at=NOW)
            await store.write_batch([row])
            await store.write_batch([row])  # a replayed batch: skipped, not doubled
            assert await store.count_request_logs() == 2
            assert await store.maintain(NOW, 0) == []
            assert await store.maintain(NOW, 60) == ["ai_request_log_p202608"]
            assert await store.count_request_logs() == 1
        finally:
            await store.close()
