"""Contract tests for Store: the same tests on SqliteStore (tmp file) and PostgresStore (a fresh
database created on the local server for each test and dropped afterwards)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.store import (
    ApiKey,
    MessageRow,
    QuotaOverride,
    RequestLogRow,
    Session,
    Store,
    StoreConflict,
    StoreUnavailable,
)
from gateway.store.backends import (
    PostgresStore,
    SqliteStore,
    connect_postgres,
    open_store,
    sqlite_path,
)
from tests.support.databases import fresh_postgres_url
from tests.support.gateway import free_port
from tests.support.stores import Backend

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


NO_PARTS = {
    "cached_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "cache_savings_usd": Decimal(0),
    "cache_hits": 0,
    "cache_saved_tokens": 0,
    "cache_saved_usd": Decimal(0),
}


def log_row(request_id: str, **over: Any) -> RequestLogRow:
    row = RequestLogRow(
        request_id=request_id,
        uid="u1",
        key_id="1",
        model="gpt-x",
        provider="openai",
        upstream_model="gpt-x-2024",
        stream=True,
        status="ok",
        status_code=200,
        prompt_tokens=10,
        completion_tokens=5,
        usage_estimated=False,
        cost_usd=Decimal("0.000000123"),
        latency_ms=120,
        ttft_ms=30,
        session_id=None,
        attempts=1,
        error=None,
        created_at=T0,
    )
    for name, value in over.items():
        setattr(row, name, value)
    return row


def msg_row(message_id: str, session_id: str, tokens: int, at: datetime) -> MessageRow:
    return MessageRow(message_id, session_id, "user", f"text {message_id}", tokens, "gpt-x", at)


def new_session(session_id: str, uid: str = "u1", at: datetime = T0) -> Session:
    return Session(session_id, uid, f"title {session_id}", "gpt-x", 0, 0, "active", at, at)


# -- schema -------------------------------------------------------------------------------------


async def test_migrate_is_idempotent_and_has_schema(backend: Backend) -> None:
    assert isinstance(backend.store, Store)
    assert not await backend.store.has_schema()
    await backend.store.migrate()
    assert await backend.store.has_schema()
    await backend.store.migrate()
    assert await backend.store.has_schema()
    await backend.store.ping()
    assert await backend.store.count_request_logs() == 0


# -- write_batch --------------------------------------------------------------------------------


async def test_write_batch_is_idempotent_and_counts_sessions_once(backend: Backend) -> None:
    store = backend.store
    await store.migrate()
    await store.create_session(new_session("s1"))
    batch = [
        log_row("r1", session_id="s1"),
        msg_row("m1", "s1", 7, T0 + timedelta(seconds=1)),
        log_row("r2"),
        msg_row("m2", "s1", 11, T0 + timedelta(seconds=2)),
    ]
    await store.write_batch(batch)
    await store.write_batch(batch)
    assert await store.count_request_logs() == 2
    session = await store.get_session("u1", "s1")
    assert session is not None
    assert (session.message_count, session.total_tokens) == (2, 18)
    assert session.updated_at == T0 + timedelta(seconds=2)

    # A replay overlapping new rows counts only the new ones.
    await store.write_batch([batch[3], msg_row("m3", "s1", 1, T0 + timedelta(seconds=3))])
    session = await store.get_session("u1", "s1")
    assert session is not None
    assert (session.message_count, session.total_tokens) == (3, 19)
    assert session.updated_at == T0 + timedelta(seconds=3)
    assert await backend.query("SELECT count(*) FROM ai_message") == [(3,)]

    # Duplicates inside one batch are written once too.
    await store.write_batch([log_row("r3"), log_row("r3")])
    assert await store.count_request_logs() == 3

    # Requests that share a client's X-Request-Id are each logged (they are not replays).
    shared = [log_row("same", created_at=T0 + timedelta(microseconds=n)) for n in range(3)]
    await store.write_batch(shared)
    await store.write_batch(shared)
    assert await store.count_request_logs() == 6


async def test_messages_of_a_missing_session_are_dropped(backend: Backend) -> None:
    store = backend.store
    await store.migrate()
    await store.write_batch([msg_row("m1", "gone", 3, T0), log_row("r1", session_id="gone")])
    assert await backend.query("SELECT count(*) FROM ai_message") == [(0,)]
    assert await store.count_request_logs() == 1


async def test_updated_at_never_moves_backwards(store: Store) -> None:
    await store.create_session(new_session("s1", at=T0 + timedelta(hours=1)))
    await store.write_batch([msg_row("m1", "s1", 1, T0)])
    session = await store.get_session("u1", "s1")
    assert session is not None
    assert session.updated_at == T0 + timedelta(hours=1)
    assert session.message_count == 1


# -- sessions -----------------------------------------------------------------------------------


async def test_session_crud_and_owner_isolation(backend: Backend) -> None:
    store = backend.store
    await store.migrate()
    created = new_session("s1")
    await store.create_session(created)
    with pytest.raises(StoreConflict):
        await store.create_session(new_session("s1", uid="u2"))

    assert await store.get_session("u1", "s1") == created
    assert await store.get_session("u2", "s1") is None
    assert await store.get_session("u1", "nope") is None

    assert await store.update_session("u2", "s1", "stolen", None) is None
    updated = await store.update_session("u1", "s1", "renamed", None)
    assert updated is not None
    assert (updated.title, updated.status) == ("renamed", "active")
    assert updated.updated_at > created.updated_at
    archived = await store.update_session("u1", "s1", None, "archived")
    assert archived is not None
    assert (archived.title, archived.status) == ("renamed", "archived")
    assert await store.update_session("u1", "s1", None, None) == archived

    await store.write_batch([msg_row("m1", "s1", 1, T0), msg_row("m2", "s1", 1, T0)])
    assert await store.delete_session("u2", "s1") is False
    assert await store.get_session("u1", "s1") is not None
    assert await store.delete_session("u1", "s1") is True
    assert await store.delete_session("u1", "s1") is False
    assert await store.get_session("u1", "s1") is None
    assert await store.list_messages("u1", "s1", 10, None) is None
    assert await backend.query("SELECT count(*) FROM ai_message") == [(0,)]


async def test_list_sessions_newest_first_with_cursor(store: Store) -> None:
    # s0..s5 updated one minute apart; s6 ties with s3 (tie broken by session_id).
    for i in range(6):
        await store.create_session(new_session(f"s{i}", at=T0 + timedelta(minutes=i)))
    await store.create_session(new_session("s6", at=T0 + timedelta(minutes=3)))
    await store.create_session(new_session("other", uid="u2", at=T0 + timedelta(hours=1)))
    expected = ["s5", "s4", "s3", "s6", "s2", "s1", "s0"]

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        rows, has_more = await store.list_sessions("u1", None, 2, after)
        pages += 1
        seen += [s.session_id for s in rows]
        if not has_more:
            break
        after = rows[-1].session_id
    assert seen == expected
    assert pages == 4

    rows, has_more = await store.list_sessions("u1", None, 7, None)
    assert [s.session_id for s in rows] == expected and not has_more
    # A session that gets a message moves to the front.
    await store.write_batch([msg_row("m1", "s0", 1, T0 + timedelta(hours=2))])
    rows, _ = await store.list_sessions("u1", None, 1, None)
    assert rows[0].session_id == "s0"

    await store.update_session("u1", "s2", None, "archived")
    archived, has_more = await store.list_sessions("u1", "archived", 10, None)
    assert [s.session_id for s in archived] == ["s2"] and not has_more
    active, _ = await store.list_sessions("u1", "active", 10, None)
    assert "s2" not in [s.session_id for s in active] and len(active) == 6

    assert await store.list_sessions("u2", None, 10, None) == (
        [await store.get_session("u2", "other")],
        False,
    )
    # Another user's session id is no cursor for u1, nor is an unknown one.
    assert await store.list_sessions("u1", None, 10, "other") == ([], False)
    assert await store.list_sessions("u1", None, 10, "missing") == ([], False)


async def test_list_messages_newest_n_oldest_first_with_before(store: Store) -> None:
    await store.create_session(new_session("s1"))
    await store.write_batch(
        [msg_row(f"m{i}", "s1", i, T0 + timedelta(seconds=i)) for i in range(7)]
    )
    page = await store.list_messages("u1", "s1", 3, None)
    assert page is not None
    assert [m.message_id for m in page[0]] == ["m4", "m5", "m6"] and page[1]
    first = page[0][0]
    assert (first.session_id, first.role, first.content, first.tokens) == (
        "s1",
        "user",
        "text m4",
        4,
    )
    assert first.created_at == T0 + timedelta(seconds=4)

    page = await store.list_messages("u1", "s1", 3, "m4")
    assert page is not None
    assert [m.message_id for m in page[0]] == ["m1", "m2", "m3"] and page[1]
    page = await store.list_messages("u1", "s1", 3, "m1")
    assert page is not None
    assert [m.message_id for m in page[0]] == ["m0"] and not page[1]
    page = await store.list_messages("u1", "s1", 7, None)
    assert page is not None and len(page[0]) == 7 and not page[1]

    assert await store.list_messages("u2", "s1", 3, None) is None
    assert await store.list_messages("u1", "s1", 3, "unknown") == ([], False)
    await store.create_session(new_session("empty"))
    assert await store.list_messages("u1", "empty", 3, None) == ([], False)


async def test_load_history_window(store: Store) -> None:
    await store.create_session(new_session("s1"))
    await store.write_batch(
        [msg_row(f"m{i}", "s1", 1, T0 + timedelta(seconds=i)) for i in range(5)]
    )
    found = await store.load_history("u1", "s1", 3)
    assert found is not None
    session, messages = found
    assert session.session_id == "s1" and session.message_count == 5
    assert [m.message_id for m in messages] == ["m2", "m3", "m4"]

    found = await store.load_history("u1", "s1", 50)
    assert found is not None and [m.message_id for m in found[1]] == [f"m{i}" for i in range(5)]
    found = await store.load_history("u1", "s1", 0)
    assert found is not None and found[1] == []
    assert await store.load_history("u2", "s1", 3) is None
    assert await store.load_history("u1", "missing", 3) is None
    await store.create_session(new_session("empty"))
    found = await store.load_history("u1", "empty", 3)
    assert found is not None and found[0].session_id == "empty" and found[1] == []


# -- keys ---------------------------------------------------------------------------------------


def api_key(n: int, uid: str = "u1") -> ApiKey:
    return ApiKey(
        "", f"hash{n}", f"sk-gw-k{n}", uid, f"key {n}", "free" if n % 2 else None, "active", T0
    )


async def test_keys_lifecycle(store: Store) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    k1 = await store.create_key(api_key(1))
    k2 = await store.create_key(api_key(2))
    k3 = await store.create_key(api_key(3, uid="u2"))
    assert k1.id and k2.id and k3.id and len({k1.id, k2.id, k3.id}) == 3
    assert (k1.key_prefix, k1.uid, k1.tier, k2.tier, k1.status) == (
        "sk-gw-k1",
        "u1",
        "free",
        None,
        "active",
    )
    with pytest.raises(StoreConflict):
        await store.create_key(api_key(1))

    assert await store.find_key("hash2") == k2
    assert await store.find_key("nope") is None
    assert [k.id for k in await store.list_keys("u1")] == [k1.id, k2.id]
    assert [k.id for k in await store.list_keys(None)] == [k1.id, k2.id, k3.id]
    assert [k.id for k in await store.keys_changed_since(start)] == [k1.id, k2.id, k3.id]

    await asyncio.sleep(0.01)
    mark = datetime.now(UTC)
    await asyncio.sleep(0.01)
    assert await store.keys_changed_since(mark) == []
    assert await store.revoke_key(k1.id) == 1
    assert await store.revoke_key(k1.id) == 0
    assert await store.revoke_key("sk-gw-k3") == 1
    assert await store.revoke_key("sk-gw-none") == 0
    changed = await store.keys_changed_since(mark)
    assert [(k.id, k.status) for k in changed] == [(k1.id, "revoked"), (k3.id, "revoked")]
    found = await store.find_key("hash1")
    assert found is not None and found.status == "revoked"

    # last_used_at: batched, never backwards, and not a change the key cache must reload.
    mark = datetime.now(UTC)
    await asyncio.sleep(0.01)
    late, early = T0 + timedelta(hours=2), T0 + timedelta(hours=1)
    await store.touch_keys({k2.id: late, "static:demo": late})
    await store.touch_keys({k2.id: early, k3.id: early})
    got = {k.id: k.last_used_at for k in await store.list_keys(None)}
    assert got == {k1.id: None, k2.id: late, k3.id: early}
    assert await store.keys_changed_since(mark) == []


# -- quotas -------------------------------------------------------------------------------------


async def test_quota_overrides(store: Store) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    await store.set_user_quota(QuotaOverride("u1", "pro", None, None))
    await store.set_user_quota(QuotaOverride("u2", None, 5, 1000))
    assert await store.quota_overrides_changed_since(start) == [
        QuotaOverride("u1", "pro", None, None),
        QuotaOverride("u2", None, 5, 1000),
    ]
    await asyncio.sleep(0.01)
    mark = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await store.set_user_quota(QuotaOverride("u1", None, 60, 10**12))
    assert await store.quota_overrides_changed_since(mark) == [
        QuotaOverride("u1", None, 60, 10**12)
    ]


# -- usage --------------------------------------------------------------------------------------


async def test_usage_aggregates_one_utc_day_exactly(store: Store) -> None:
    day = date(2024, 5, 1)
    midnight = datetime(2024, 5, 1, tzinfo=UTC)
    rows = [
        log_row("a1", created_at=midnight),
        log_row("a2", created_at=midnight + timedelta(hours=5)),
        log_row(
            "a3",
            created_at=midnight + timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
        ),
        log_row(
            "b1",
            model="other",
            cost_usd=Decimal("12345.123456789"),
            prompt_tokens=1,
            completion_tokens=2,
            cached_tokens=1,
            cache_savings_usd=Decimal("0.25"),
        ),
        log_row(
            "b2",
            model="other",
            cost_usd=Decimal("0.000000001"),
            prompt_tokens=3,
            completion_tokens=4,
            cache_write_tokens=2,
            reasoning_tokens=3,
            status="upstream_error",
            status_code=502,
        ),
        log_row(  # a response cache hit: no tokens, no cost, what it saved
            "b3",
            model="other",
            cost_usd=Decimal(0),
            prompt_tokens=0,
            completion_tokens=0,
            cache_hit=True,
            cache_saved_tokens=14,
            cache_saved_usd=Decimal("0.000021"),
        ),
        log_row("c1", uid="u2", cost_usd=Decimal("0.5")),
        log_row("before", created_at=midnight - timedelta(microseconds=1)),
        log_row("after", created_at=midnight + timedelta(days=1)),
    ]
    await store.write_batch(rows)
    assert await store.usage("u1", day) == [
        {
            "uid": "u1",
            "model": "gpt-x",
            "requests": 3,
            "prompt_tokens": 30,
            "completion_tokens": 15,
            **NO_PARTS,
            "cost_usd": Decimal("0.000000369"),
        },
        {
            "uid": "u1",
            "model": "other",
            "requests": 3,
            "prompt_tokens": 4,
            "completion_tokens": 6,
            "cached_tokens": 1,
            "cache_write_tokens": 2,
            "reasoning_tokens": 3,
            "cache_savings_usd": Decimal("0.25"),
            "cache_hits": 1,
            "cache_saved_tokens": 14,
            "cache_saved_usd": Decimal("0.000021"),
            "cost_usd": Decimal("12345.123456790"),
        },
    ]
    everyone = await store.usage(None, day)
    assert [(r["uid"], r["model"]) for r in everyone] == [
        ("u1", "gpt-x"),
        ("u1", "other"),
        ("u2", "gpt-x"),
    ]
    assert everyone[2]["cost_usd"] == Decimal("0.5")
    assert all(isinstance(r["cost_usd"], Decimal) for r in everyone)
    assert str(everyone[0]["cost_usd"].normalize()) in ("3.69E-7", "0.000000369")
    assert await store.usage("u1", date(2024, 5, 2)) == [
        {
            "uid": "u1",
            "model": "gpt-x",
            "requests": 1,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            **NO_PARTS,
            "cost_usd": Decimal("0.000000123"),
        },
    ]
    assert await store.usage("nobody", day) == []


# -- config mirror ------------------------------------------------------------------------------


async def test_mirror_config_upserts(backend: Backend) -> None:
    store = backend.store
    await store.migrate()
    providers = [
        {
            "name": "openai",
            "display_name": "OpenAI",
            "status": "active",
            "models": ["gpt-x"],
            "is_default": True,
            "sort": 1,
        },
        {"name": "echo", "display_name": "Echo"},
    ]
    models = [
        {
            "provider_name": "openai",
            "model": "gpt-x",
            "display_name": "GPT X",
            "max_tokens": 4096,
            "input_price": Decimal("0.15"),
            "output_price": "0.6",
            "status": "active",
            "is_default": True,
            "sort": 1,
        },
    ]
    tiers = [{"tier": "free", "rpm": 10, "tpd": 100000}, {"tier": "pro", "rpm": 60, "tpd": 0}]
    await store.mirror_config(providers, models, tiers)
    providers[0]["display_name"] = "OpenAI (renamed)"
    models[0]["output_price"] = Decimal("0.000000001")
    tiers[0]["rpm"] = 20
    await store.mirror_config(providers, models, tiers)

    got = await backend.query(
        "SELECT name, display_name, is_default, sort FROM ai_provider ORDER BY name"
    )
    assert [(n, d, bool(i), s) for n, d, i, s in got] == [
        ("echo", "Echo", False, 0),
        ("openai", "OpenAI (renamed)", True, 1),
    ]
    got = await backend.query(
        "SELECT model, provider_name, max_tokens, input_price, output_price FROM ai_model"
    )
    assert [(m, p, t, Decimal(i), Decimal(o)) for m, p, t, i, o in got] == [
        ("gpt-x", "openai", 4096, Decimal("0.15"), Decimal("0.000000001"))
    ]
    assert await backend.query("SELECT tier, rpm, tpd FROM ai_quota_tier ORDER BY tier") == [
        ("free", 20, 100000),
        ("pro", 60, 0),
    ]
    with pytest.raises(ValueError, match="unknown column"):
        await store.mirror_config([{"name": "x", "evil; DROP TABLE": 1}], [], [])
    with pytest.raises(ValueError, match="missing key column"):
        await store.mirror_config([], [], [{"rpm": 1}])


# -- opening and failure ------------------------------------------------------------------------


def test_sqlite_url_paths() -> None:
    assert sqlite_path("sqlite:///gateway.db") == "gateway.db"
    assert sqlite_path("sqlite:///data/gateway.db") == "data/gateway.db"
    assert sqlite_path("sqlite:////var/lib/gw.db") == "/var/lib/gw.db"
    assert sqlite_path("sqlite://:memory:") == ":memory:"
    assert sqlite_path("sqlite:///:memory:") == ":memory:"
    with pytest.raises(ValueError):
        sqlite_path("sqlite://")


async def test_open_store_by_scheme(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(store, SqliteStore)
    await store.migrate()
    assert await store.has_schema()
    await store.close()
    memory = await open_store("sqlite://:memory:")
    await memory.migrate()
    assert await memory.has_schema()
    await memory.close()
    async with fresh_postgres_url() as url:
        for u in (url, url.replace("postgresql://", "postgres://", 1)):
            pg = await open_store(u)
            assert isinstance(pg, PostgresStore)
            await pg.ping()
            await pg.close()
    with pytest.raises(ValueError):
        await open_store("mysql://localhost/db")


async def test_unreachable_databases_raise_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        await connect_postgres(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    sqlite = SqliteStore(str(tmp_path / "missing-dir" / "x.db"))
    with pytest.raises(StoreUnavailable):
        await sqlite.ping()
    await sqlite.close()
    with pytest.raises(StoreUnavailable):
        await sqlite.ping()
