"""Scoped keys, teams and tags end to end (SPEC 10) through the official SDK and the admin API:
model allow-lists (and /v1/models showing only those), expiry, per-key and per-team rate limits,
X-Gateway-Tags and key metadata on the request log, and unknown keys costing no database query."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import openai
import orjson
import pytest

from gateway.access.auth import CachedKeys, hash_key
from tests.support.budgets import admin_ok, budget_config, chat, new_key
from tests.support.clients import sdk
from tests.support.gateway import RunningGateway, gateway_on, start_gateway
from tests.support.logrows import rows_when


@pytest.fixture
async def gateway(upstream, tmp_path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(budget_config(upstream.base_url, tmp_path, "memory"))
    yield running
    await running.close()


async def listed(client: openai.AsyncOpenAI) -> list[str]:
    return [m.id async for m in client.models.list()]


async def test_a_key_uses_only_its_models_and_lists_only_those(gateway, upstream):
    key = await new_key(gateway, user="sam", models=["echo", "fake/*"])
    async with sdk(gateway, key) as client:
        for model in ("fake-model", "needs-key"):
            with pytest.raises(openai.PermissionDeniedError) as refused:
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}]
                )
            assert (refused.value.type, refused.value.code) == (
                "permission_error", "model_not_allowed"
            )  # fmt: skip
            assert refused.value.param == "model"
        assert upstream.received == [], "a refused model reached upstream"
        assert (await chat(client, "echo")).text == "hi"
        assert (await chat(client, "fake/anything", stream=True)).text == "Hello from upstream"
        assert (await chat(client, "fake/pinned")).status == 200
        assert [r.body["model"] for r in upstream.received] == ["anything", "pinned-upstream"]

        assert sorted(await listed(client)) == ["echo", "fake/pinned"]
        assert (await client.models.retrieve("fake/pinned")).id == "fake/pinned"
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("fake-model")
    async with sdk(gateway) as unscoped:  # a static key without a list sees every model
        assert sorted(await listed(unscoped)) == [
            "cheap", "echo", "fake-model", "fake/pinned", "needs-key"
        ]  # fmt: skip


async def test_a_team_list_narrows_its_members_keys(gateway):
    await admin_ok(gateway, "POST", "/admin/teams", {"id": "echoes", "models": ["echo"]})
    key = await new_key(gateway, user="sue", team="echoes", models=["echo", "fake/*"])
    async with sdk(gateway, key) as client:
        assert await listed(client) == ["echo"]
        assert (await chat(client, "fake/pinned")).code == "model_not_allowed"
        assert (await chat(client, "echo")).status == 200


async def test_an_expired_key_is_refused(gateway):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    expired = await new_key(gateway, user="old", expires_at=past)
    valid = await new_key(gateway, user="new", expires_at=future)
    async with sdk(gateway, expired) as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            await client.models.list()
        assert refused.value.code == "expired_api_key"
        assert (await chat(client, "echo")).code == "expired_api_key"
    async with sdk(gateway, valid) as client:
        assert (await chat(client, "echo")).status == 200


async def test_a_keys_rpm_holds_on_top_of_its_users(gateway):
    await admin_ok(gateway, "PUT", "/admin/users/ray/quota", {"rpm": 100})
    narrow = await new_key(gateway, user="ray", rpm=2)
    wide = await new_key(gateway, user="ray")
    async with sdk(gateway, narrow) as client:
        replies = [await chat(client, "echo") for _ in range(3)]
    assert [(r.status, r.code) for r in replies] == [(200, None), (200, None),
                                                     (429, "rate_limit_exceeded")]  # fmt: skip
    # The headers speak of the tightest quota: the key's 2, not the user's 100.
    assert [r.headers["x-ratelimit-remaining-requests"] for r in replies] == ["1", "0", "0"]
    assert replies[2].headers["x-ratelimit-limit-requests"] == "2"
    async with sdk(gateway, wide) as client:  # the user's other key is not held to it
        reply = await chat(client, "echo")
    assert reply.status == 200 and reply.headers["x-ratelimit-remaining-requests"] == "97"


async def test_a_teams_rpm_holds_for_its_members_together(gateway):
    await admin_ok(gateway, "POST", "/admin/teams", {"id": "duo", "rpm": 3})
    by_key = await new_key(gateway, user="uma", team="duo")  # joins through the key
    by_quota = await new_key(gateway, user="vic")
    await admin_ok(gateway, "PUT", "/admin/users/vic/quota", {"team": "duo"})  # through the user
    loner = await new_key(gateway, user="wes")
    async with sdk(gateway, by_key) as uma, sdk(gateway, by_quota) as vic:
        replies = [await chat((uma, vic)[i % 2], "echo") for i in range(5)]
    assert [(r.status, r.code) for r in replies] == [(200, None)] * 3 + [
        (429, "rate_limit_exceeded")
    ] * 2
    async with sdk(gateway, loner) as wes:
        assert (await chat(wes, "echo")).status == 200


async def test_tags_and_key_metadata_are_logged_and_reported(gateway):
    await admin_ok(gateway, "POST", "/admin/teams", {"id": "web"})
    metadata = {"env": "ci", "owner": {"name": "xavier"}}
    key = await new_key(gateway, user="xavier", team="web", metadata=metadata)
    async with sdk(gateway, key) as client:
        tagged = await chat(client, extra_headers={"X-Gateway-Tags": "a, b,a"})
        plain = await chat(client, "echo")
        too_many = await chat(client, extra_headers={"X-Gateway-Tags": ",".join("abcdefghijk")})
        too_long = await chat(client, extra_headers={"X-Gateway-Tags": "x" * 65})
    assert (tagged.status, plain.status) == (200, 200)
    for refused in (too_many, too_long):
        assert (refused.status, refused.code, refused.param) == (
            400, "invalid_value", "X-Gateway-Tags"
        )  # fmt: skip
    rows = await rows_when(gateway, 4)
    first = rows[0]
    assert orjson.loads(first["tags"]) == ["a", "b"]
    assert orjson.loads(first["key_metadata"]) == metadata
    assert (first["uid"], first["team"], rows[1]["tags"]) == ("xavier", "web", None)
    assert [r["status_code"] for r in rows[2:]] == [400, 400]

    report = await admin_ok(gateway, "GET", "/admin/spend?group_by=tag")
    by_tag = {r["group"]: (r["requests"], Decimal(r["cost_usd"])) for r in report["data"]}
    cost = Decimal(first["cost_usd"])
    assert cost > 0
    assert (by_tag["a"], by_tag["b"]) == ((1, cost), (1, cost))
    teams = await admin_ok(gateway, "GET", "/admin/spend?group_by=team&user=xavier")
    assert [(r["group"], r["requests"]) for r in teams["data"]] == [("web", 4)]


async def test_a_key_made_or_changed_by_the_admin_api_is_in_force_at_once(
    database, upstream, tmp_path
):
    async with gateway_on(budget_config(upstream.base_url, tmp_path, "memory"), database) as gw:
        made = await admin_ok(gw, "POST", "/admin/keys", {"user": "zoe"})
        async with sdk(gw, made["key"]) as client:
            assert (await chat(client, "echo")).status == 200
            path = f"/admin/keys/{made['id']}"
            await admin_ok(gw, "PATCH", path, {"models": ["fake-model"]})
            assert (await chat(client, "echo")).code == "model_not_allowed"
            await admin_ok(gw, "PATCH", path, {"expires_at": 1_000_000_000})
            assert (await chat(client, "fake-model")).code == "expired_api_key"


async def test_unknown_and_malformed_keys_cost_no_database_query(gateway):
    await new_key(gateway, user="yan")  # the cache has loaded every active key
    store = gateway.services.key_cache.store
    asked: list[str] = []
    real_find_key = store.find_key

    async def find_key(key_hash: str) -> Any:
        asked.append(key_hash)
        return await real_find_key(key_hash)

    store.find_key = find_key  # type: ignore[method-assign]
    unknown = [f"sk-gw-{secrets.token_urlsafe(32)}" for _ in range(25)]
    garbage = [f"garbage-{i}" for i in range(10)] + ["sk-gw-short", "sk-gw-" + "!" * 43]
    garbage += [secrets.token_hex(i + 1) for i in range(13)]
    async with sdk(gateway) as client:
        for key in unknown + garbage:
            reply = await chat(client.with_options(api_key=key), "echo")
            assert (reply.status, reply.code) == (401, "invalid_api_key"), key
    assert asked == []

    # The counting wrapper does see lookups: a cache that has not loaded yet asks the store.
    cold = CachedKeys(store)
    assert await cold.lookup(hash_key(unknown[0])) is None
    assert asked == [hash_key(unknown[0])]
