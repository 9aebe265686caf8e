"""Exact cost (SPEC 13): every token kind at its own price, on every path, JSON and stream. The
fakes report their provider's own usage shape with cache reads, cache writes and reasoning; each
test checks the request-log columns and the cost against arithmetic written out here."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import genai_prices
import pytest

from tests.ops import scrape as prom
from tests.support.budgets import new_key, settled
from tests.support.clients import bearer, sdk
from tests.support.fake_gemini import GOOD_KEY
from tests.support.front_door import PROVIDER_KEY, claude_sdk
from tests.support.gateway import ADMIN_KEY, USER_KEY, base_config, start_gateway
from tests.support.logrows import rows_when

M = Decimal(1_000_000)

# Claude-Code-shaped: 200 new input tokens, 10,000 cache reads, 1,000 cache writes (400 of them
# for the one-hour cache), 50 output tokens.
FRESH, READS, WRITES, WRITES_1H, OUT = 200, 10_000, 1_000, 400, 50
# Config prices deliberately unlike the catalog's, so a catalog price would show.
CLAUDE_PRICES = {
    "input_price": 3,
    "output_price": 16,
    "cached_input_price": "0.25",
    "cache_write_price": 4,
    "cache_write_1h_price": 5,
}
CLAUDE_COST = (
    FRESH * Decimal(3)
    + READS * Decimal("0.25")
    + (WRITES - WRITES_1H) * Decimal(4)
    + WRITES_1H * Decimal(5)
    + OUT * Decimal(16)
) / M
# what the cache saved: the same request with every input token at the input price, less that
CLAUDE_SAVED = ((FRESH + READS + WRITES) * Decimal(3) + OUT * Decimal(16)) / M - CLAUDE_COST


@pytest.fixture
async def gateway(claude, gemini, upstream, tmp_path):
    config = base_config(upstream.base_url, tmp_path)
    config["providers"]["claude"] = {
        "type": "anthropic",
        "base_url": claude.base_url,
        "api_key": PROVIDER_KEY,
    }
    config["providers"]["gem"] = {
        "type": "gemini",
        "base_url": gemini.base_url,
        "api_key": GOOD_KEY,
    }
    config["models"].update(
        {
            "claude-sonnet": {"provider": "claude", "model": "claude-sonnet-4-5", **CLAUDE_PRICES},
            "claude-catalog": {"provider": "claude", "model": "claude-sonnet-4-5"},
            "claude-long": {
                "provider": "claude",
                "model": "claude-sonnet-4-5",
                **CLAUDE_PRICES,
                "long_context": {
                    "above_tokens": 10_000,
                    "input_price": 6,
                    "output_price": "22.5",
                    "cached_input_price": "0.6",
                    "cache_write_price": "7.5",
                    "cache_write_1h_price": 12,
                },
            },
            "gpt-cached": {
                "provider": "fake",
                "model": "gpt-4o",
                "input_price": "2.5",
                "cached_input_price": "1.25",
                "output_price": 10,
            },
            "gemini-flash": {
                "provider": "gem",
                "model": "gemini-2.5-flash",
                "input_price": "0.3",
                "cached_input_price": "0.075",
                "output_price": "2.5",
            },
        }
    )
    running = await start_gateway(config)
    yield running
    await running.close()


def claude_usage(claude, fresh=FRESH, reads=READS, writes=WRITES, writes_1h=WRITES_1H, out=OUT):
    s = claude.script
    s.input_tokens, s.cache_read_input_tokens, s.output_tokens = fresh, reads, out
    s.cache_creation_input_tokens, s.cache_creation_1h_input_tokens = writes, writes_1h


def assert_row(row, prompt, completion, cached, writes, reasoning, cost):
    assert row["status"] == "ok"
    assert (
        row["prompt_tokens"],
        row["completion_tokens"],
        row["cached_tokens"],
        row["cache_write_tokens"],
        row["reasoning_tokens"],
    ) == (prompt, completion, cached, writes, reasoning)
    assert Decimal(row["cost_usd"]) == cost


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_translated_chat_bills_reads_and_both_writes(gateway, claude, stream):
    claude_usage(claude)
    async with sdk(gateway) as client:
        if stream:
            chunks = [
                c
                async for c in await client.chat.completions.create(
                    model="claude-sonnet",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
            ]
            usage = chunks[-1].usage
        else:
            answer = await client.chat.completions.create(
                model="claude-sonnet", messages=[{"role": "user", "content": "hi"}]
            )
            usage = answer.usage
    prompt = FRESH + READS + WRITES
    assert usage.prompt_tokens == prompt and usage.prompt_tokens_details.cached_tokens == READS
    [row] = await rows_when(gateway, 1)
    assert_row(row, prompt, OUT, READS, WRITES, 0, CLAUDE_COST)
    assert Decimal(row["cache_savings_usd"]) == CLAUDE_SAVED


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_front_door_relayed_bills_the_cache(gateway, claude, stream):
    claude_usage(claude)
    claude.script.delta_usage_full = stream  # newer API versions repeat the counts at the end
    async with claude_sdk(gateway) as client:
        args = {
            "model": "claude-sonnet",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}],
        }
        if stream:
            async with client.messages.stream(**args) as events:
                message = await events.get_final_message()
        else:
            message = await client.messages.create(**args)
    assert message.usage.cache_read_input_tokens == READS
    [row] = await rows_when(gateway, 1)
    assert_row(row, FRESH + READS + WRITES, OUT, READS, WRITES, 0, CLAUDE_COST)


async def test_long_context_prices_apply_above_the_threshold_only(gateway, claude):
    async with sdk(gateway) as client:
        claude_usage(claude, fresh=200, reads=8_000, writes=800, writes_1h=0)  # 9,000 in
        await client.chat.completions.create(
            model="claude-long", messages=[{"role": "user", "content": "hi"}]
        )
        claude_usage(claude)  # 11,200 in: above 10,000
        await client.chat.completions.create(
            model="claude-long", messages=[{"role": "user", "content": "hi"}]
        )
    below, above = await rows_when(gateway, 2)
    base = (200 * Decimal(3) + 8_000 * Decimal("0.25") + 800 * Decimal(4) + OUT * 16) / M
    assert_row(below, 9_000, OUT, 8_000, 800, 0, base)
    long = (
        FRESH * Decimal(6)
        + READS * Decimal("0.6")
        + (WRITES - WRITES_1H) * Decimal("7.5")
        + WRITES_1H * Decimal(12)
        + OUT * Decimal("22.5")
    ) / M
    assert_row(above, FRESH + READS + WRITES, OUT, READS, WRITES, 0, long)


async def test_a_model_without_prices_costs_what_the_catalog_says(gateway, claude):
    claude_usage(claude)
    async with sdk(gateway) as client:
        await client.chat.completions.create(
            model="claude-catalog", messages=[{"role": "user", "content": "hi"}]
        )
    [row] = await rows_when(gateway, 1)
    catalog = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=FRESH + READS + WRITES,
            cache_read_tokens=READS,
            cache_write_tokens=WRITES,
            cache_write_1h_tokens=WRITES_1H,
            output_tokens=OUT,
        ),
        "claude-sonnet-4-5",
        provider_id="anthropic",
    ).total_price
    assert Decimal(row["cost_usd"]) == catalog
    assert catalog != CLAUDE_COST  # the config's prices are not the catalog's


OPENAI_USAGE = {
    "prompt_tokens": 2_000,
    "completion_tokens": 300,
    "total_tokens": 2_300,
    "prompt_tokens_details": {"cached_tokens": 1_500},
    "completion_tokens_details": {"reasoning_tokens": 200},
}
OPENAI_COST = (500 * Decimal("2.5") + 1_500 * Decimal("1.25") + 300 * Decimal(10)) / M


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_relayed_chat_bills_cached_input_and_reasoning(gateway, upstream, stream):
    upstream.behaviour.usage = OPENAI_USAGE
    async with sdk(gateway) as client:
        if stream:
            async for _ in await client.chat.completions.create(
                model="gpt-cached",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            ):
                pass
        else:
            await client.chat.completions.create(
                model="gpt-cached", messages=[{"role": "user", "content": "hi"}]
            )
    [row] = await rows_when(gateway, 1)
    assert_row(row, 2_000, 300, 1_500, 0, 200, OPENAI_COST)


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_relayed_responses_bill_cached_input_and_reasoning(gateway, upstream, stream):
    upstream.behaviour.usage = OPENAI_USAGE
    async with sdk(gateway) as client:
        if stream:
            async for _ in await client.responses.create(
                model="gpt-cached", input="hi", stream=True
            ):
                pass
        else:
            await client.responses.create(model="gpt-cached", input="hi")
    [row] = await rows_when(gateway, 1)
    assert_row(row, 2_000, 300, 1_500, 0, 200, OPENAI_COST)


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_cache_is_counted_once_and_thoughts_are_reasoning(gateway, gemini, stream):
    gemini.behaviour.usage = {
        "promptTokenCount": 1_200,  # includes the 1,000 cached
        "cachedContentTokenCount": 1_000,
        "candidatesTokenCount": 40,
        "thoughtsTokenCount": 60,
        "totalTokenCount": 1_300,
    }
    async with sdk(gateway) as client:
        if stream:
            async for _ in await client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                pass
        else:
            await client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "hi"}]
            )
    [row] = await rows_when(gateway, 1)
    cost = (200 * Decimal("0.3") + 1_000 * Decimal("0.075") + 100 * Decimal("2.5")) / M
    assert_row(row, 1_200, 100, 1_000, 0, 60, cost)


async def test_usage_and_spend_report_the_token_kinds(gateway, claude):
    claude_usage(claude)
    async with sdk(gateway) as client:
        for _ in range(2):
            await client.chat.completions.create(
                model="claude-sonnet", messages=[{"role": "user", "content": "hi"}]
            )
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/v1/ai/usage", headers=bearer(USER_KEY)) as resp:
            [mine] = (await resp.json())["by_model"]
        async with http.get(
            f"{gateway.url}/admin/spend?group_by=model", headers=bearer(ADMIN_KEY)
        ) as resp:
            [spend] = (await resp.json())["data"]
        text = await prom.fetch(http, gateway)
    kinds = {k: prom.value(text, "gateway_tokens_total", model="claude-sonnet", kind=k) for k in (
        "prompt", "completion", "cached", "cache_write", "reasoning")}  # fmt: skip
    assert kinds == {
        "prompt": 2 * (FRESH + READS + WRITES),
        "completion": 2 * OUT,
        "cached": 2 * READS,
        "cache_write": 2 * WRITES,
        "reasoning": 0,
    }
    for report in (mine, spend):
        assert report["requests"] == 2
        assert (report["cached_tokens"], report["cache_write_tokens"]) == (2 * READS, 2 * WRITES)
        assert report["prompt_tokens"] == 2 * (FRESH + READS + WRITES)
        assert Decimal(report["cost_usd"]) == 2 * CLAUDE_COST
        assert Decimal(report["cache_savings_usd"]) == 2 * CLAUDE_SAVED


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_bridged_to_anthropic_bill_the_cache(gateway, claude, stream):
    claude_usage(claude)
    async with sdk(gateway) as client:
        if stream:
            events = await client.responses.create(model="claude-sonnet", input="hi", stream=True)
            async for event in events:
                if event.type == "response.completed":
                    usage = event.response.usage
        else:
            usage = (await client.responses.create(model="claude-sonnet", input="hi")).usage
    assert usage.input_tokens_details.cached_tokens == READS
    [row] = await rows_when(gateway, 1)
    assert_row(row, FRESH + READS + WRITES, OUT, READS, WRITES, 0, CLAUDE_COST)


async def test_a_budget_settles_at_the_exact_cost(gateway, claude):
    claude_usage(claude)
    key = await new_key(gateway, user="carol", max_budget_usd="1", budget_period="daily")
    async with sdk(gateway, key) as client:
        await client.chat.completions.create(
            model="claude-sonnet", messages=[{"role": "user", "content": "hi"}]
        )
    state = await settled(gateway, key)
    assert Decimal(state["key"]["spend_usd"]) == CLAUDE_COST
    assert Decimal(state["key"]["remaining_usd"]) == 1 - CLAUDE_COST
