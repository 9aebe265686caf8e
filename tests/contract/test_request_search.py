"""The request-log search the console reads, on both backends: newest first, keyset pages that
never skip or repeat a row (ties in created_at included), every filter, one row by id (and owner),
and failures per day; plus the indexes that keep it fast on a big log."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.store import RequestLogRow, Store
from gateway.store.backends import SqliteStore
from gateway.store.request_query import RequestQuery
from tests.contract.test_store import log_row
from tests.support.stores import Backend

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SEARCH_INDEXES = {
    "ai_request_log_created_id_idx",
    "ai_request_log_model_created_idx",
    "ai_request_log_endpoint_created_idx",
    "ai_request_log_failed_idx",
}


def rows() -> list[RequestLogRow]:
    """Twelve requests over three days; r03/r04/r05 share one instant (ties)."""
    spec = [
        # id, uid, model, status, endpoint, minutes after T0 - 2 days
        ("r00", "ann", "gpt", "ok", "chat", 0),
        ("r01", "bob", "gpt", "rejected", "chat", 10),
        ("r02", "ann", "claude", "ok", "messages", 20),
        ("r03", "ann", "gpt", "upstream_error", "chat", 30),
        ("r04", "bob", "claude", "ok", "responses", 30),
        ("r05", "ann", "gpt", "client_closed", "chat", 30),
        ("r06", "cat", "gpt", "ok", "embeddings", 24 * 60),
        ("r07", "ann", "claude", "ok", "chat", 24 * 60 + 5),
        ("r08", "bob", "gpt", "upstream_error", "responses", 24 * 60 + 9),
        ("r09", "ann", "gpt", "ok", "chat", 48 * 60),
        ("r10", "cat", "claude", "rejected", "messages", 48 * 60 + 1),
        ("r11", "ann", "gpt", "ok", "chat", 48 * 60 + 2),
    ]
    start = T0 - timedelta(days=2)
    return [
        log_row(
            rid, uid=uid, model=model, status=status, endpoint=endpoint,
            created_at=start + timedelta(minutes=minutes),
            status_code=200 if status == "ok" else 502,
            cost_usd=Decimal("0.000000001") * (i + 1),
            tags='["a", "b"]' if i % 2 else None, team="core" if uid == "ann" else None,
            key_metadata='{"owner": "x"}' if uid == "bob" else None,
        )
        for i, (rid, uid, model, status, endpoint, minutes) in enumerate(spec)
    ]  # fmt: skip


def newest_first(selected: list[RequestLogRow]) -> list[str]:
    """Expected order: created_at descending, then insertion (row id) descending."""
    order = {r.request_id: i for i, r in enumerate(rows())}
    ranked = sorted(selected, key=lambda r: (r.created_at, order[r.request_id]), reverse=True)
    return [r.request_id for r in ranked]


async def all_pages(store: Store, query: RequestQuery, limit: int) -> list[list[str]]:
    pages, before = [], None
    while True:
        page, more = await store.search_requests(query, limit, before)
        pages.append([r.request_id for r in page])
        if not more:
            return pages
        before = page[-1].request_id


async def seeded(store: Store) -> Store:
    await store.write_batch(rows())
    return store


async def test_pages_walk_the_log_newest_first_without_gaps_or_repeats(store: Store) -> None:
    await seeded(store)
    expected = newest_first(rows())
    assert expected[6:9] == ["r05", "r04", "r03"]  # the tie broken by row id, newest first
    for limit in (1, 2, 3, 5, 12, 50):
        pages = await all_pages(store, RequestQuery(), limit)
        assert [rid for page in pages for rid in page] == expected, limit
        assert all(len(page) == limit for page in pages[:-1])
    first, more = await store.search_requests(RequestQuery(), 12, None)
    assert len(first) == 12 and more is False


async def test_each_filter_narrows_the_search(store: Store) -> None:
    await seeded(store)
    everything = rows()
    cases = {
        RequestQuery(uid="ann"): [r for r in everything if r.uid == "ann"],
        RequestQuery(model="claude"): [r for r in everything if r.model == "claude"],
        RequestQuery(status="ok"): [r for r in everything if r.status == "ok"],
        RequestQuery(status="client_closed"): [r for r in everything if r.request_id == "r05"],
        RequestQuery(status="error"): [
            r for r in everything if r.status in ("upstream_error", "rejected")
        ],
        RequestQuery(endpoint="responses"): [r for r in everything if r.endpoint == "responses"],
        RequestQuery(start=T0 - timedelta(days=1), end=T0): [
            r for r in everything if T0 - timedelta(days=1) <= r.created_at < T0
        ],
        RequestQuery(uid="ann", model="gpt", status="error"): [
            r for r in everything if r.request_id == "r03"
        ],
        RequestQuery(uid="nobody"): [],
    }
    for query, expected in cases.items():
        pages = await all_pages(store, query, 2)
        assert [rid for page in pages for rid in page] == newest_first(expected), query


async def test_unknown_cursor_gives_an_empty_page(store: Store) -> None:
    await seeded(store)
    assert await store.search_requests(RequestQuery(), 5, "no-such-request") == ([], False)


async def test_rows_come_back_with_every_column(store: Store) -> None:
    await seeded(store)
    written = {r.request_id: r for r in rows()}
    page, _ = await store.search_requests(RequestQuery(), 50, None)
    assert {r.request_id: r for r in page} == written
    got = await store.get_request("r04")
    assert got == written["r04"]
    assert got is not None and got.key_metadata == '{"owner": "x"}' and got.stream is True
    assert got.cost_usd == Decimal("0.000000005")


async def test_get_request_by_owner_only(store: Store) -> None:
    await seeded(store)
    assert (await store.get_request("r01", uid="bob")) is not None
    assert await store.get_request("r01", uid="ann") is None
    assert await store.get_request("missing") is None


async def test_failures_per_day_and_status(store: Store) -> None:
    await seeded(store)
    got = await store.request_failures(T0 - timedelta(days=3), T0 + timedelta(days=1))
    assert got == [
        {"day": "2026-03-08", "status": "rejected", "requests": 1},
        {"day": "2026-03-08", "status": "upstream_error", "requests": 1},
        {"day": "2026-03-09", "status": "upstream_error", "requests": 1},
        {"day": "2026-03-10", "status": "rejected", "requests": 1},
    ]
    assert await store.request_failures(T0 - timedelta(days=1), T0) == [
        {"day": "2026-03-09", "status": "upstream_error", "requests": 1}
    ]


async def test_a_late_row_with_an_older_time_keeps_its_place(store: Store) -> None:
    """Order is by created_at, not by insertion: a row written late slots in by its time."""
    await seeded(store)
    late = replace(rows()[0], request_id="late", created_at=T0 - timedelta(days=1, minutes=-1))
    await store.write_batch([late])
    pages = await all_pages(store, RequestQuery(), 4)
    flat = [rid for page in pages for rid in page]
    assert flat.index("late") == flat.index("r06") - 1 and len(flat) == 13


async def test_search_indexes_exist(backend: Backend) -> None:
    await backend.store.migrate()
    await backend.store.migrate()  # idempotent
    if isinstance(backend.store, SqliteStore):
        names = await backend.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        names = await backend.query("SELECT indexname FROM pg_indexes")
    assert {n for (n,) in names} >= SEARCH_INDEXES
