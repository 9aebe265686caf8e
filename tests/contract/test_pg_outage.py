"""A real PostgreSQL outage under the Writer: a private cluster is stopped while rows keep coming
and started again; every row must arrive exactly once and in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.store import (
    MessageRow,
    RequestLogRow,
    Session,
    StoreUnavailable,
    WriteItem,
    Writer,
)
from gateway.store.backends import connect_postgres
from tests.support.pgcluster import INITDB, SKIP_REASON, PrivateCluster

pytestmark = pytest.mark.skipif(not INITDB, reason=SKIP_REASON)
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def row(i: int) -> WriteItem:
    at = T0 + timedelta(milliseconds=i)
    if i % 3 == 0:
        return MessageRow(f"m{i:05d}", "s1", "user", f"text {i}", 2, "gpt-x", at)
    return RequestLogRow(
        f"r{i:05d}",
        "u1",
        "1",
        "gpt-x",
        "openai",
        "gpt-x",
        True,
        "ok",
        200,
        3,
        4,
        False,
        Decimal("0.000000123"),
        10,
        5,
        "s1",
        1,
        None,
        at,
    )


async def test_rows_survive_a_postgres_outage(
    private_postgres: PrivateCluster, tmp_path: Path
) -> None:
    store = await connect_postgres(private_postgres.url)
    failures = 0

    def count_failure() -> None:
        nonlocal failures
        failures += 1

    spill = tmp_path / "spill.jsonl"
    writer = Writer(
        store,
        batch_size=25,
        flush_interval_s=0.01,
        max_queue=100,
        spill_path=str(spill),
        retry_interval_s=0.1,
        on_failure=count_failure,
    )
    try:
        await store.migrate()
        await store.create_session(Session("s1", "u1", "t", None, 0, 0, "active", T0, T0))
        writer.start()
        items = [row(i) for i in range(150)]
        for item in items:
            writer.submit(item)
        assert await writer.flush(20)
        assert await store.count_request_logs() == 100

        await asyncio.to_thread(private_postgres.stop)
        with pytest.raises(StoreUnavailable):
            await store.ping()
        loop = asyncio.get_running_loop()
        for i in range(150, 900):
            started = loop.time()
            item = row(i)
            writer.submit(item)  # never blocks, never raises
            items.append(item)
            assert loop.time() - started < 0.5
            if i % 50 == 0:
                await asyncio.sleep(0.02)  # let the writer try, and fail, meanwhile
        assert not await writer.flush(0.3)
        assert failures > 0
        assert writer.depth == 750
        assert spill.exists()  # 750 rows > max_queue: the oldest went to disk

        await asyncio.to_thread(private_postgres.start)
        assert await writer.flush(60)
        assert writer.depth == 0
        assert not spill.exists()

        logs = [i for i in items if isinstance(i, RequestLogRow)]
        messages = [i.message_id for i in items if isinstance(i, MessageRow)]
        assert await store.count_request_logs() == len(logs) == 600
        page = await store.list_messages("u1", "s1", 10_000, None)
        assert page is not None
        assert [m.message_id for m in page[0]] == messages
        session = await store.get_session("u1", "s1")
        assert session is not None
        assert (session.message_count, session.total_tokens) == (300, 600)
        usage = await store.usage("u1", T0.date())
        assert usage[0]["requests"] == 600
        assert usage[0]["cost_usd"] == Decimal("0.000000123") * 600
    finally:
        await writer.close(5)
        await asyncio.wait_for(store.close(), 10)
