"""Contract tests of the Store's governance part (SPEC 10) on SQLite and PostgreSQL: key scopes and
their updates, the active keys, user budgets, teams, log rows with team/tags/metadata, spend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.store import ApiKey, QuotaOverride, Store
from gateway.store.base import Team
from gateway.store.spill import decode_item
from tests.contract.test_store import T0, log_row
from tests.support.stores import Backend

EXPIRES = datetime(2026, 12, 31, 23, 59, 59, 123456, tzinfo=UTC)


def scoped_key(n: int, uid: str = "u1", **scopes: object) -> ApiKey:
    key = ApiKey("", f"hash{n}", f"sk-gw-k{n}", uid, f"key {n}", None, "active", T0)
    for name, value in scopes.items():
        setattr(key, name, value)
    return key


async def changed_after() -> datetime:
    """A moment strictly between what was written so far and what comes next."""
    await asyncio.sleep(0.01)
    mark = datetime.now(UTC)
    await asyncio.sleep(0.01)
    return mark


# -- keys ---------------------------------------------------------------------------------------


async def test_key_scopes_round_trip(store: Store) -> None:
    full = scoped_key(
        1, models=("gpt-x", "team/*"), expires_at=EXPIRES, rpm=60, tpd=10**12,
        max_budget_usd=Decimal("12345678901.123456789"), budget_period="monthly",
        team="core", metadata={"env": "prod", "owner": {"name": "ünï"}, "n": [1, 2.5, None]},
    )  # fmt: skip
    made = await store.create_key(full)
    plain = await store.create_key(scoped_key(2))
    assert made.models == ("gpt-x", "team/*") and made.expires_at == EXPIRES
    assert (made.rpm, made.tpd, made.budget_period, made.team) == (60, 10**12, "monthly", "core")
    assert made.max_budget_usd == Decimal("12345678901.123456789")
    assert made.metadata == {"env": "prod", "owner": {"name": "ünï"}, "n": [1, 2.5, None]}
    assert await store.find_key("hash1") == made
    assert (plain.models, plain.metadata, plain.max_budget_usd) == (None, None, None)
    assert await store.list_keys("u1") == [made, plain]
    start = datetime(1970, 1, 1, tzinfo=UTC)
    assert await store.keys_changed_since(start) == [made, plain]


async def test_update_key_sets_and_clears_scopes(store: Store) -> None:
    made = await store.create_key(scoped_key(1, rpm=5, team="core", metadata={"a": 1}))
    mark = await changed_after()
    updated = await store.update_key(
        made.id,
        {"models": ("a", "b/*"), "expires_at": EXPIRES, "max_budget_usd": Decimal("0.5"),
         "budget_period": "daily", "rpm": None, "metadata": None, "name": "renamed"},
    )  # fmt: skip
    assert updated is not None
    assert (updated.models, updated.expires_at, updated.max_budget_usd) == (
        ("a", "b/*"), EXPIRES, Decimal("0.5")
    )  # fmt: skip
    assert (updated.budget_period, updated.rpm, updated.metadata, updated.name) == (
        "daily", None, None, "renamed"
    )  # fmt: skip
    # Untouched fields stay; identity and status do not move.
    assert (updated.team, updated.uid, updated.key_hash, updated.status) == (
        "core", "u1", "hash1", "active"
    )  # fmt: skip
    assert updated.created_at == made.created_at
    assert await store.find_key("hash1") == updated
    assert await store.keys_changed_since(mark) == [updated]  # the key cache sees the change

    cleared = await store.update_key(made.id, {"models": None, "team": None, "name": None})
    assert cleared is not None and (cleared.models, cleared.team, cleared.name) == (None, None, "")
    assert await store.update_key("999999", {"rpm": 1}) is None
    assert await store.update_key("static:demo", {"rpm": 1}) is None
    with pytest.raises(ValueError, match="uid"):
        await store.update_key(made.id, {"uid": "someone else"})
    with pytest.raises(ValueError, match="status"):
        await store.update_key(made.id, {"status": "active"})


async def test_active_keys_are_every_active_key(store: Store) -> None:
    k1 = await store.create_key(scoped_key(1, models=("x",)))
    k2 = await store.create_key(scoped_key(2, uid="u2"))
    k3 = await store.create_key(scoped_key(3))
    assert await store.active_keys() == [k1, k2, k3]
    await store.revoke_key(k2.id)
    assert await store.active_keys() == [k1, k3]


# -- user budgets -------------------------------------------------------------------------------


async def test_quota_override_budget_fields(store: Store) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    budget = QuotaOverride("u1", None, None, None, "core", Decimal("99.000000001"), "weekly")
    await store.set_user_quota(budget)
    assert await store.quota_overrides_changed_since(start) == [budget]
    mark = await changed_after()
    # Every field is replaced: the budget and team go when not given again.
    await store.set_user_quota(QuotaOverride("u1", "pro", 5, None))
    assert await store.quota_overrides_changed_since(mark) == [
        QuotaOverride("u1", "pro", 5, None, None, None, None)
    ]


# -- teams --------------------------------------------------------------------------------------


async def test_teams_lifecycle(store: Store) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    core = await store.put_team(
        Team("core", "Core team", Decimal("100.5"), "monthly", ("gpt-x", "team/*"), 60, 1000)
    )
    assert (core.id, core.name, core.max_budget_usd, core.budget_period) == (
        "core", "Core team", Decimal("100.5"), "monthly"
    )  # fmt: skip
    assert (core.models, core.rpm, core.tpd) == (("gpt-x", "team/*"), 60, 1000)
    assert core.status == "active"
    assert core.created_at is not None and core.updated_at is not None
    assert core.created_at >= start
    ops = await store.put_team(Team("ops", ""))
    assert (ops.max_budget_usd, ops.budget_period, ops.models, ops.rpm, ops.tpd) == (None,) * 5
    assert await store.get_team("core") == core
    assert await store.get_team("nope") is None
    assert await store.list_teams() == [core, ops]
    assert await store.teams_changed_since(start) == [core, ops]

    # Replacing keeps created_at and replaces every other field.
    mark = await changed_after()
    replaced = await store.put_team(Team("core", "Renamed", None, None, None, None, 5))
    assert replaced.created_at == core.created_at
    assert replaced.updated_at is not None and core.updated_at < replaced.updated_at
    assert (replaced.name, replaced.max_budget_usd, replaced.models, replaced.tpd) == (
        "Renamed", None, None, 5
    )  # fmt: skip
    assert await store.teams_changed_since(mark) == [replaced]

    # Deleting marks it deleted: gone from the list, still readable, seen by the poll.
    mark = await changed_after()
    assert await store.delete_team("core") is True
    assert await store.delete_team("core") is False
    assert await store.delete_team("nope") is False
    assert [t.id for t in await store.list_teams()] == ["ops"]
    deleted = await store.get_team("core")
    assert deleted is not None and deleted.status == "deleted"
    assert await store.teams_changed_since(mark) == [deleted]

    # Putting a deleted team back makes it active again, as a new team.
    revived = await store.put_team(Team("core", "Again"))
    assert revived.status == "active" and revived.name == "Again"
    assert revived.created_at is not None and revived.created_at > mark
    assert [t.id for t in await store.list_teams()] == ["core", "ops"]


# -- request log and spend ----------------------------------------------------------------------


async def test_log_rows_keep_team_tags_and_key_metadata(backend: Backend) -> None:
    store = backend.store
    await store.migrate()
    await store.write_batch(
        [log_row("r1", team="core", tags='["a","b"]', key_metadata='{"env":"prod"}'), log_row("r2")]
    )
    rows = await backend.query(
        "SELECT request_id, team, tags, key_metadata FROM ai_request_log ORDER BY request_id"
    )
    assert rows == [("r1", "core", '["a","b"]', '{"env":"prod"}'), ("r2", None, None, None)]


async def test_spill_lines_from_before_these_columns_still_replay(backend: Backend) -> None:
    """A spill file written by an earlier release (no endpoint, team, tags or key_metadata)."""
    store = backend.store
    await store.migrate()
    line = (
        b'{"k":"log","v":{"request_id":"old","uid":"u1","key_id":"1","model":"gpt-x",'
        b'"provider":"openai","upstream_model":"gpt-x","stream":true,"status":"ok",'
        b'"status_code":200,"prompt_tokens":10,"completion_tokens":5,"usage_estimated":false,'
        b'"cost_usd":"0.000000123","latency_ms":120,"ttft_ms":30,"session_id":null,'
        b'"attempts":1,"error":null,"created_at":"2024-05-01T12:00:00+00:00"}}\n'
    )
    await store.write_batch([decode_item(line)])
    rows = await backend.query("SELECT request_id, endpoint, team, tags FROM ai_request_log")
    assert rows == [("old", "chat", None, None)]


SPEND_ROWS = [
    # (request_id, uid, key_id, team, model, tags, cost, created_at offset)
    ("a", "u1", "1", "core", "gpt-x", '["web","beta"]', "1.000000001", timedelta(0)),
    ("b", "u1", "1", "core", "gpt-y", '["web"]', "0.5", timedelta(hours=23, minutes=59)),
    ("c", "u2", "2", None, "gpt-x", None, "2", timedelta(days=1)),
    ("d", "u2", None, None, "gpt-x", "[]", "0.000000001", timedelta(days=1, hours=1)),
    ("e", "u1", "1", "core", "gpt-x", None, "7", timedelta(days=2)),  # outside the range
    ("f", "u1", "1", "core", "gpt-x", None, "7", -timedelta(microseconds=1)),  # before it
]


async def spend_store(store: Store) -> tuple[datetime, datetime]:
    day = datetime(2024, 5, 1, tzinfo=UTC)
    await store.write_batch(
        [
            log_row(rid, uid=uid, key_id=key, team=team, model=model, tags=tags,
                    cost_usd=Decimal(cost), created_at=day + at, prompt_tokens=10 + n,
                    completion_tokens=n)
            for n, (rid, uid, key, team, model, tags, cost, at) in enumerate(SPEND_ROWS)
        ]
    )  # fmt: skip
    return day, day + timedelta(days=2)


def summary(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [
        (r["group"], r["requests"], r["prompt_tokens"], r["completion_tokens"], r["cost_usd"])
        for r in rows
    ]


async def test_spend_per_group_exactly(store: Store) -> None:
    start, end = await spend_store(store)
    d = Decimal
    assert summary(await store.spend("user", start, end)) == [
        ("u2", 2, 25, 5, d("2.000000001")),
        ("u1", 2, 21, 1, d("1.500000001")),
    ]
    assert summary(await store.spend("key", start, end)) == [
        ("2", 1, 12, 2, d("2")),
        ("1", 2, 21, 1, d("1.500000001")),
        (None, 1, 13, 3, d("0.000000001")),
    ]
    assert summary(await store.spend("team", start, end)) == [
        (None, 2, 25, 5, d("2.000000001")),
        ("core", 2, 21, 1, d("1.500000001")),
    ]
    assert summary(await store.spend("model", start, end)) == [
        ("gpt-x", 3, 35, 5, d("3.000000002")),
        ("gpt-y", 1, 11, 1, d("0.5")),
    ]
    # A row counts once per tag; untagged rows (null or []) group as null.
    assert summary(await store.spend("tag", start, end)) == [
        (None, 2, 25, 5, d("2.000000001")),
        ("web", 2, 21, 1, d("1.500000001")),
        ("beta", 1, 10, 0, d("1.000000001")),
    ]
    assert summary(await store.spend("day", start, end)) == [
        ("2024-05-02", 2, 25, 5, d("2.000000001")),
        ("2024-05-01", 2, 21, 1, d("1.500000001")),
    ]
    every = await store.spend("model", start, end)
    assert all(isinstance(r["cost_usd"], Decimal) for r in every)


async def test_spend_filters_by_user_and_range(store: Store) -> None:
    start, end = await spend_store(store)
    assert summary(await store.spend("tag", start, end, uid="u1")) == [
        ("web", 2, 21, 1, Decimal("1.500000001")),
        ("beta", 1, 10, 0, Decimal("1.000000001")),
    ]
    assert await store.spend("user", start, end, uid="nobody") == []
    one_day = await store.spend("user", start, start + timedelta(days=1))
    assert [(r["group"], r["requests"]) for r in one_day] == [("u1", 2)]
    wide = await store.spend("user", start - timedelta(days=1), end + timedelta(days=1))
    assert [(r["group"], r["requests"], r["cost_usd"]) for r in wide] == [
        ("u1", 4, Decimal("15.500000001")),
        ("u2", 2, Decimal("2.000000001")),
    ]
    with pytest.raises(ValueError, match="group_by"):
        await store.spend("uid; DROP TABLE ai_request_log", start, end)


async def test_mcp_tool_lists_round_trip_on_keys_and_teams(store: Store) -> None:
    made = await store.create_key(scoped_key(1, mcp_tools=("calc__add", "files__*")))
    assert made.mcp_tools == ("calc__add", "files__*")
    assert await store.find_key("hash1") == made
    cleared = await store.update_key(made.id, {"mcp_tools": None})
    assert cleared is not None and cleared.mcp_tools is None
    team = await store.put_team(Team("tools", "", mcp_tools=("calc__*",)))
    assert team.mcp_tools == ("calc__*",)
    assert await store.get_team("tools") == team
