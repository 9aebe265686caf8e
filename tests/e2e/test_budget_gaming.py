"""Budgets that cannot be gamed (issue 24), through the official SDK on memory:// and Redis: a
shared X-Request-Id, `n`, `tools` and images counted in the reservation, the model's max_tokens
sent upstream, and an unpriced wildcard route refused while a budget applies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.support.budgets import (
    HELLO,
    budget_config,
    chat,
    exact_usage,
    gateways,
    reserve_for,
    room_for,
    set_user_budget,
    settled,
)
from tests.support.clients import sdk
from tests.support.gateway import OTHER_KEY, USER_KEY, RunningGateway

MAX_TOKENS = 100
FITS = 5
REQUESTS = 60


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def start() -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[RunningGateway]]]:
    async with gateways() as starter:
        yield starter


async def test_requests_sharing_an_x_request_id_each_hold_their_own_reservation(
    backend, upstream, tmp_path, start
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, backend))
    reserve = reserve_for(HELLO, MAX_TOKENS)
    await set_user_budget(gateway, "alice", room_for(FITS, reserve), "daily")
    upstream.behaviour.usage = exact_usage(HELLO, MAX_TOKENS)
    same = {"X-Request-Id": "the-same-id"}
    async with sdk(gateway) as client:
        replies = await asyncio.gather(
            *(
                chat(client, stream=i % 2 == 1, max_tokens=MAX_TOKENS, extra_headers=same)
                for i in range(REQUESTS)
            )
        )
    admitted = [r for r in replies if r.status == 200]
    assert len(admitted) == FITS, [(r.status, r.code) for r in replies]
    assert {r.code for r in replies if r.status != 200} == {"budget_exceeded"}
    assert len(upstream.received) == FITS
    spent = Decimal((await settled(gateway, USER_KEY))["user"]["spend_usd"])
    assert spent == FITS * reserve


BIG = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(800)}}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": BIG}}]
FUNCTIONS = [{"name": "lookup", "parameters": BIG}]
FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": BIG}}
TEXT = {"type": "text", "text": "hi"}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.mark.parametrize(
    ("label", "extra"),
    [
        ("n", {"n": 20}),
        ("tools", {"tools": TOOLS}),
        ("functions", {"functions": FUNCTIONS}),
        ("response_format", {"response_format": FORMAT}),
        ("images", {"messages": [{"role": "user", "content": [TEXT, IMAGE, IMAGE, IMAGE]}]}),
    ],
)
async def test_the_worst_case_counts_what_the_request_carries_besides_its_text(
    backend, upstream, tmp_path, start, label, extra
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, backend))
    reserve = reserve_for(HELLO, MAX_TOKENS)
    await set_user_budget(gateway, "alice", room_for(3, reserve), "daily")
    async with sdk(gateway) as client:
        plain = await chat(client, max_tokens=MAX_TOKENS)
        costly = await chat(client, max_tokens=MAX_TOKENS, **extra)
    assert plain.status == 200
    assert (costly.status, costly.code) == (429, "budget_exceeded"), label
    assert len(upstream.received) == 1, "the costly request reached upstream"


async def test_the_models_max_tokens_goes_upstream_when_the_client_sends_none(
    upstream, tmp_path, start
):
    config = budget_config(upstream.base_url, tmp_path, "memory")
    config["models"]["fake-model"]["max_tokens"] = 50
    gateway = await start(config)
    async with sdk(gateway) as client:
        assert (await chat(client)).status == 200
        assert (await chat(client, stream=True)).status == 200
        assert (await chat(client, max_tokens=7)).status == 200
        await client.responses.create(model="fake-model", input="hi")
        await client.completions.create(model="fake-model", prompt="hi")
    chat_bodies = [r.body for r in upstream.received[:3]]
    assert [b.get("max_completion_tokens") for b in chat_bodies] == [50, 50, None]
    assert chat_bodies[2]["max_tokens"] == 7
    assert upstream.received[3].body["max_output_tokens"] == 50
    assert upstream.received[4].body["max_tokens"] == 16  # the legacy default, as reserved


async def test_an_unpriced_wildcard_route_is_refused_while_a_budget_applies(
    upstream, tmp_path, start
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    await set_user_budget(gateway, "alice", Decimal(1), "daily")
    async with sdk(gateway) as alice, sdk(gateway, OTHER_KEY) as bob:
        refused = await chat(alice, "fake/anything", max_tokens=MAX_TOKENS)
        priced = await chat(alice, "fake-model", max_tokens=MAX_TOKENS)
        unbudgeted = await chat(bob, "fake/anything", max_tokens=MAX_TOKENS)
    assert (refused.status, refused.code, refused.param) == (400, "model_not_priced", "model")
    assert (priced.status, unbudgeted.status) == (200, 200)
    assert len(upstream.received) == 2


INPUT_IMAGE = {"type": "input_image", "image_url": "https://example.com/cat.png"}
RESPONSES_TOOLS = [{"type": "function", "name": "lookup", "parameters": BIG}]


@pytest.mark.parametrize(
    ("label", "extra"),
    [
        ("tools", {"input": "hi", "tools": RESPONSES_TOOLS}),
        ("images", {"input": [{"role": "user", "content": [INPUT_IMAGE, INPUT_IMAGE]}]}),
    ],
)
async def test_the_responses_worst_case_counts_tools_and_images(
    upstream, tmp_path, start, label, extra
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    await set_user_budget(gateway, "alice", room_for(3, reserve_for(HELLO, MAX_TOKENS)), "daily")
    async with sdk(gateway) as client:
        plain = await client.responses.create(
            model="fake-model", input="hi", max_output_tokens=MAX_TOKENS
        )
        with pytest.raises(openai.RateLimitError) as refused:
            await client.responses.create(model="fake-model", max_output_tokens=MAX_TOKENS, **extra)
    assert plain.status == "completed"
    assert refused.value.code == "budget_exceeded", label
    assert len(upstream.received) == 1
