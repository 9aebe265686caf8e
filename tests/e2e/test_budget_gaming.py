"""Budgets that cannot be gamed (issue 24), through the official SDK on memory:// and Redis: a
shared X-Request-Id, `n`, `tools` and images counted in the reservation, the model's max_tokens
sent upstream, and an unpriced wildcard route refused while a budget applies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

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
from tests.support.gateway import USER_KEY, RunningGateway

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
