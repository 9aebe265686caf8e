"""The response cache (SPEC 16) driven by the `openai` SDK, on memory:// and on the shared Redis:
hits and misses on every endpoint, JSON and stream; scopes, changed fields, refresh, expiry on an
injected clock, broken streams, two gateways sharing entries, cost and quota of a hit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import openai
import pytest

from tests.ops import scrape as prom
from tests.support.budgets import (
    FAKE_INPUT,
    FAKE_OUTPUT,
    admin_ok,
    budget_config,
    gateways,
    new_key,
    usage,
)
from tests.support.clients import raw_chat, sdk
from tests.support.gateway import OTHER_KEY, USER_KEY, free_port
from tests.support.logrows import rows_when

HELLO = [{"role": "user", "content": "What is 2 + 2?"}]
M = Decimal(1_000_000)
# The fake's usage: 11 prompt and 3 completion tokens on chat and completions.
FAKE_COST = (11 * FAKE_INPUT + 3 * FAKE_OUTPUT) / M


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cache_config(upstream, tmp_path, backend) -> dict[str, Any]:
    """Every model cached for an hour (the top default), `no-cache` not at all."""
    config = budget_config(upstream.base_url, tmp_path, backend)
    config["cache"] = {"ttl_s": 3600}
    config["models"]["no-cache"] = {"provider": "fake", "model": "plain", "cache": False}
    return config


@pytest.fixture
async def gateway(cache_config):
    async with gateways() as start:
        yield await start(cache_config)


async def chat(client: openai.AsyncOpenAI, stream: bool = False, headers=None, **fields: Any):
    """One chat request: (x-gateway-cache, Age, the answer's id and text, chunks or None)."""
    body = {"model": "fake-model", "messages": HELLO, "temperature": 0, **fields}
    raw = await client.chat.completions.with_raw_response.create(
        stream=stream, extra_headers=headers or {}, **body
    )
    answer = raw.parse()
    if not stream:
        return (
            raw.headers.get("x-gateway-cache"),
            raw.headers.get("age"),
            answer.id,
            (answer.choices[0].message.content),
            None,
        )
    chunks = [c async for c in answer]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return raw.headers.get("x-gateway-cache"), raw.headers.get("age"), chunks[0].id, text, chunks


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_hit_replays_the_first_answer_without_asking_upstream(gateway, upstream, stream):
    async with sdk(gateway) as client:
        first = await chat(client, stream)
        upstream.behaviour.text, upstream.behaviour.pieces = "changed", ["chan", "ged"]
        second = await chat(client, stream)
    assert first[0] == "miss" and first[1] is None
    assert second[0] == "hit" and second[1] is not None and int(second[1]) >= 0
    assert second[2:4] == first[2:4] == (first[2], "Hello from upstream")
    assert len(upstream.received) == 1
    if stream:
        assert [c.model_dump() for c in second[4]] == [c.model_dump() for c in first[4]]


async def test_stream_usage_event_only_when_the_new_request_asks(gateway, upstream):
    async with sdk(gateway) as client:
        _, _, _, _, plain = await chat(client, True)
        _, _, _, _, asked = await chat(client, True, stream_options={"include_usage": True})
        _, _, _, _, plain_again = await chat(client, True)
    assert len(upstream.received) == 1
    assert all(c.usage is None for c in plain) and all(c.usage is None for c in plain_again)
    assert asked[-1].choices == [] and asked[-1].usage.prompt_tokens == 11
    assert [c.model_dump() for c in asked[:-1]] == [c.model_dump() for c in plain]


@pytest.mark.parametrize("stream", [False, True])
async def test_legacy_completions_hit(gateway, upstream, stream):
    async with sdk(gateway) as client:
        seen = []
        for _ in range(2):
            raw = await client.completions.with_raw_response.create(
                model="fake-model", prompt="Say hi", temperature=0, max_tokens=5, stream=stream
            )
            answer = raw.parse()
            if stream:
                chunks = [c async for c in answer]
                text = "".join(c.choices[0].text for c in chunks if c.choices)
                seen.append((raw.headers["x-gateway-cache"], chunks[0].id, text))
            else:
                seen.append((raw.headers["x-gateway-cache"], answer.id, answer.choices[0].text))
    assert [s[0] for s in seen] == ["miss", "hit"]
    assert seen[0][1:] == seen[1][1:]
    assert len(upstream.received) == 1


async def test_embeddings_hit_without_temperature(gateway, upstream):
    async with sdk(gateway) as client:
        results = []
        for _ in range(2):
            raw = await client.embeddings.with_raw_response.create(
                model="fake-model", input=["alpha", "beta"]
            )
            results.append((raw.headers["x-gateway-cache"], raw.parse().model_dump()))
    assert [r[0] for r in results] == ["miss", "hit"]
    assert results[0][1] == results[1][1]
    assert len(upstream.received) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_hit(gateway, upstream, stream):
    async with sdk(gateway) as client:
        seen = []
        for _ in range(2):
            raw = await client.responses.with_raw_response.create(
                model="fake-model", input="Name a colour.", temperature=0, stream=stream
            )
            answer = raw.parse()
            if stream:
                events = [e async for e in answer]
                assert events[-1].type == "response.completed"
                seen.append((raw.headers["x-gateway-cache"], [e.model_dump() for e in events]))
            else:
                seen.append((raw.headers["x-gateway-cache"], answer.model_dump()))
    assert [s[0] for s in seen] == ["miss", "hit"]
    assert seen[0][1] == seen[1][1]
    assert len(upstream.received) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_bridged_responses_hit(gateway, stream):
    """The built-in echo model's Responses are bridged through chat: a hit replays the
    Response (or its events) the bridge made, the same id included."""
    async with sdk(gateway) as client:
        seen = []
        for _ in range(2):
            raw = await client.responses.with_raw_response.create(
                model="echo", input="echo me", temperature=0, stream=stream
            )
            answer = raw.parse()
            if stream:
                events = [e.model_dump() async for e in answer]
                seen.append((raw.headers["x-gateway-cache"], events))
            else:
                seen.append((raw.headers["x-gateway-cache"], answer.model_dump()))
    assert [s[0] for s in seen] == ["miss", "hit"]
    assert seen[0][1] == seen[1][1]


async def test_other_user_and_other_team_miss_same_team_hits(gateway, upstream):
    await admin_ok(gateway, "POST", "/admin/teams", {"id": "squad"})
    await admin_ok(gateway, "POST", "/admin/teams", {"id": "crew"})
    tina = await new_key(gateway, user="tina", team="squad")
    uma = await new_key(gateway, user="uma", team="squad")
    carl = await new_key(gateway, user="carl", team="crew")
    results = {}
    for name, key in [("alice", USER_KEY), ("tina", tina), ("uma", uma), ("carl", carl)]:
        async with sdk(gateway, key) as client:
            results[name] = (await chat(client))[0]
    async with sdk(gateway) as alice:  # alice's own entry is still hers
        results["alice again"] = (await chat(alice))[0]
    assert results == {
        "alice": "miss",  # no team: her own scope
        "tina": "miss",  # squad's first
        "uma": "hit",  # squad's entry
        "carl": "miss",  # crew is another tenant
        "alice again": "hit",
    }
    assert len(upstream.received) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"max_tokens": 7},
        {"seed": 42},
        {"response_format": {"type": "json_object"}},
        {"messages": [{"role": "user", "content": "What is 2 + 3?"}]},
        {"model": "fake/other"},
    ],
    ids=["tools", "max_tokens", "seed", "response_format", "messages", "model"],
)
async def test_a_changed_field_misses(gateway, upstream, change):
    async with sdk(gateway) as client:
        assert (await chat(client))[0] == "miss"
        assert (await chat(client, **change))[0] == "miss"
        assert (await chat(client, **change))[0] == "hit"
    assert len(upstream.received) == 2


async def test_fields_that_cannot_change_the_answer_still_hit(gateway, upstream):
    async with sdk(gateway) as client:
        assert (await chat(client, user="u1", metadata={"run": "1"}, store=False))[0] == "miss"
        assert (await chat(client, user="u2", metadata={"run": "2"}, store=False))[0] == "hit"
    assert len(upstream.received) == 1


async def test_nonzero_temperature_and_the_header_bypass(gateway, upstream):
    async with sdk(gateway) as client:
        assert (await chat(client, temperature=0.7))[0] == "bypass"
        assert (await chat(client, temperature=0.7))[0] == "bypass"
        assert (await chat(client, headers={"x-gateway-cache": "false"}))[0] == "bypass"
        assert (await chat(client))[0] == "miss"  # the bypass kept nothing
        assert (await chat(client, headers={"x-gateway-cache": "bypass"}))[0] == "bypass"
    assert len(upstream.received) == 5


async def test_a_model_without_cache_has_no_header(gateway, upstream):
    async with sdk(gateway) as client:
        for _ in range(2):
            raw = await client.chat.completions.with_raw_response.create(
                model="no-cache", messages=HELLO, temperature=0
            )
            assert "x-gateway-cache" not in raw.headers
    assert len(upstream.received) == 2


async def test_refresh_asks_again_and_replaces_the_entry(gateway, upstream):
    async with sdk(gateway) as client:
        first = await chat(client)
        upstream.behaviour.text = "fresher"
        refreshed = await chat(client, headers={"x-gateway-cache": "refresh"})
        after = await chat(client)
    assert (first[0], refreshed[0], after[0]) == ("miss", "refresh", "hit")
    assert (first[3], refreshed[3], after[3]) == ("Hello from upstream", "fresher", "fresher")
    assert len(upstream.received) == 2


async def test_an_entry_expires_after_its_ttl_on_the_injected_clock(gateway, upstream):
    s = gateway.services
    now = [s.wall_clock()]
    s.use_wall_clock(lambda: now[0])
    async with sdk(gateway) as client:
        assert (await chat(client))[0] == "miss"
        now[0] += 3599
        cached, age, *_ = await chat(client)
        assert (cached, age) == ("hit", "3599")
        now[0] += 1
        assert (await chat(client))[0] == "miss"
        assert (await chat(client))[0] == "hit"
    assert len(upstream.received) == 2


async def test_a_broken_stream_is_not_kept(gateway, upstream):
    upstream.behaviour.close_after_bytes = 200  # the connection drops mid-answer
    body = {"model": "fake-model", "messages": HELLO, "temperature": 0, "stream": True}
    for _ in range(2):
        status, headers, got = await raw_chat(gateway, body)
        assert (status, headers["x-gateway-cache"]) == (200, "miss")
        assert b'data: {"error"' in got and b"[DONE]" not in got
    async with sdk(gateway) as client:
        upstream.behaviour.close_after_bytes = -1
        assert (await chat(client, True))[0] == "miss"
        assert (await chat(client, True))[0] == "hit"
    assert len(upstream.received) == 3


async def test_an_upstream_error_is_not_kept(gateway, upstream):
    upstream.behaviour.status, upstream.behaviour.fail_times = 400, 1
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError):
            await chat(client)
        assert (await chat(client))[0] == "miss"
        assert (await chat(client))[0] == "hit"


async def test_an_entry_over_max_entry_bytes_is_not_kept(cache_config, upstream):
    cache_config["models"]["fake-model"]["cache"] = {"ttl_s": 60, "max_entry_bytes": 100}
    async with gateways() as start, sdk(await start(cache_config)) as client:
        for stream in (False, True, False, True):
            assert (await chat(client, stream))[0] == "miss"
    assert len(upstream.received) == 4


async def test_a_hit_costs_nothing_and_uses_no_daily_tokens(gateway, upstream):
    key = await new_key(gateway, user="dora", max_budget_usd="5", budget_period="daily")
    async with sdk(gateway, key) as client:
        for stream in (False, True):
            assert (await chat(client, stream))[0] == "miss"
        await rows_when(gateway, 2)
        before = await usage(gateway, key)
        for stream in (False, True):
            assert (await chat(client, stream))[0] == "hit"
        rows = await rows_when(gateway, 4)
        after = await usage(gateway, key)
    misses, hits = rows[:2], rows[2:]
    for miss in misses:
        assert (miss["prompt_tokens"], miss["completion_tokens"]) == (11, 3)
        assert Decimal(miss["cost_usd"]) == FAKE_COST and not miss["cache_hit"]
    for hit in hits:
        assert hit["cache_hit"] and hit["status"] == "ok"
        assert (hit["prompt_tokens"], hit["completion_tokens"], Decimal(hit["cost_usd"])) == (
            0,
            0,
            0,
        )
        assert (hit["cache_saved_tokens"], Decimal(hit["cache_saved_usd"])) == (14, FAKE_COST)
    assert before["tokens"]["used"] == after["tokens"]["used"] == 2 * 14
    spent = {b["scope"]: Decimal(b["spend_usd"]) for b in after["budgets"]}
    assert spent == {"key": 2 * FAKE_COST}
    model_row = next(r for r in after["by_model"] if r["model"] == "fake-model")
    counts = ("requests", "prompt_tokens", "cache_hits", "cache_saved_tokens")
    assert [model_row[c] for c in counts] == [4, 2 * 11, 2, 2 * 14]
    assert Decimal(model_row["cache_saved_usd"]) == 2 * FAKE_COST
    assert Decimal(model_row["cost_usd"]) == 2 * FAKE_COST
    spend = await admin_ok(gateway, "GET", "/admin/spend?group_by=model")
    by_model = next(r for r in spend["data"] if r["group"] == "fake-model")
    assert (by_model["cache_hits"], by_model["cache_saved_tokens"]) == (2, 2 * 14)
    assert Decimal(by_model["cache_saved_usd"]) == 2 * FAKE_COST
    async with aiohttp.ClientSession() as http:
        text = await prom.fetch(http, gateway)
    assert prom.value(text, "gateway_cache_requests_total", result="hit") == 2
    assert prom.value(text, "gateway_cache_requests_total", result="miss") == 2
    assert prom.value(text, "gateway_tokens_total", model="fake-model", provider="fake",
                      kind="prompt") == 2 * 11  # fmt: skip


async def test_hits_still_count_against_the_rpm(cache_config, upstream):
    cache_config["quota"]["tiers"]["pro"]["rpm"] = 2
    async with gateways() as start:
        gateway = await start(cache_config)
        async with sdk(gateway) as client:
            assert (await chat(client))[0] == "miss"
            assert (await chat(client))[0] == "hit"
            with pytest.raises(openai.RateLimitError) as refused:
                await chat(client)
        async with aiohttp.ClientSession() as http:
            text = await prom.fetch(http, gateway)
    assert refused.value.response.headers["x-gateway-cache"] == "hit"  # it would have been
    assert prom.value(text, "gateway_cache_requests_total", result="hit") == 1  # not answered


async def test_two_gateways_share_entries_through_redis(upstream, tmp_path):
    config = budget_config(upstream.base_url, tmp_path, "redis")
    config["cache"] = {"ttl_s": 60}
    async with gateways() as start:
        first, second = await start(config), await start(config)
        for stream in (False, True):
            async with sdk(first) as one, sdk(second) as two:
                a = await chat(one, stream)
                b = await chat(two, stream)
            assert (a[0], b[0]) == ("miss", "hit") and a[3] == b[3]
    assert len(upstream.received) == 2


async def test_redis_down_every_request_goes_upstream_and_succeeds(upstream, tmp_path):
    config = budget_config(upstream.base_url, tmp_path, "redis")
    config["redis"]["url"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    config["redis"]["fallback_retry_s"] = 60
    config["cache"] = {"ttl_s": 60}
    async with gateways() as start:
        gateway = await start(config)
        async with sdk(gateway) as client:
            results = [await chat(client, stream) for stream in (False, True, False)]
        async with aiohttp.ClientSession() as http:
            text = await prom.fetch(http, gateway)
    assert [r[0] for r in results] == ["miss", "miss", "miss"]
    assert all(r[3] == "Hello from upstream" for r in results)
    assert len(upstream.received) == 3
    # The first failure leaves Redis alone for fallback_retry_s: one error, not one per request.
    assert prom.value(text, "gateway_cache_errors_total") == 1


async def test_entries_in_a_redis_cluster(upstream, tmp_path, redis_cluster):
    config = budget_config(upstream.base_url, tmp_path, "memory")
    config["redis"]["url"] = redis_cluster.url
    config["cache"] = {"ttl_s": 60}
    async with gateways() as start:
        first, second = await start(config), await start(config)
        async with sdk(first) as one, sdk(second) as two, sdk(first, OTHER_KEY) as bob:
            seen = [(await chat(c, True))[0] for c in (one, two, bob, two)]
    assert seen == ["miss", "hit", "miss", "hit"]
    assert len(upstream.received) == 2
