"""Helpers of the governance end-to-end tests (SPEC 10): the admin API, one SDK chat call seen as
status, error and headers, worst-case reservations computed as the gateway does, budget figures
from GET /v1/ai/usage, and gateways started on memory:// or a shared Redis prefix."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
import openai

from gateway.access.governance import worst_case_usd
from gateway.accounting.tokens import estimate_prompt_tokens
from tests.support.clients import call
from tests.support.databases import REDIS_URL, delete_redis_keys
from tests.support.gateway import ADMIN_KEY, RunningGateway, base_config, start_gateway

HELLO = [{"role": "user", "content": "hi"}]
NANO = Decimal("0.000000001")
# base_config's `fake-model` prices, USD per million tokens.
FAKE_INPUT, FAKE_OUTPUT = Decimal("1.5"), Decimal("2.0")


class Reachable(Protocol):
    url: str


def reserve_for(
    messages: list[dict[str, Any]],
    max_tokens: int,
    input_price: Decimal = FAKE_INPUT,
    output_price: Decimal = FAKE_OUTPUT,
) -> Decimal:
    """The worst case the gateway reserves for a chat request: its prompt estimate and
    `max_tokens` at the model's prices."""
    prompt = estimate_prompt_tokens(messages)
    return worst_case_usd(prompt, max_tokens, input_price, output_price)


def room_for(reservations: int, reserve: Decimal) -> Decimal:
    """A budget with room for exactly `reservations` of `reserve` (one nano short of one more)."""
    return (reservations + 1) * reserve - NANO


def exact_usage(messages: list[dict[str, Any]], max_tokens: int) -> dict[str, int]:
    """Upstream usage that costs exactly the worst case: the prompt estimate and every token
    reserved, so settling a request neither frees nor takes budget room."""
    prompt = estimate_prompt_tokens(messages)
    return {"prompt_tokens": prompt, "completion_tokens": max_tokens,
            "total_tokens": prompt + max_tokens}  # fmt: skip


async def admin(
    gateway: Reachable, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    """One admin API call: (status, JSON body)."""
    async with aiohttp.ClientSession() as http:
        status, _, payload = await call(http, method, f"{gateway.url}{path}", ADMIN_KEY, body)
    return status, payload


async def admin_ok(gateway: Reachable, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An admin API call that must succeed; its JSON body."""
    status, payload = await admin(gateway, method, path, body)
    assert status in (200, 201), (status, payload)
    return payload


async def new_key(gateway: Reachable, **scopes: Any) -> str:
    """A key made by the admin API with these scopes (usable at once on that gateway)."""
    return str((await admin_ok(gateway, "POST", "/admin/keys", scopes))["key"])


async def set_user_budget(gateway: Reachable, uid: str, amount: Decimal, period: str) -> None:
    """PUT the user's quota override with just this budget."""
    body = {"max_budget_usd": str(amount), "budget_period": period}
    await admin_ok(gateway, "PUT", f"/admin/users/{uid}/quota", body)


def left_after(budget: Decimal, reserve: Decimal, admitted: int) -> list[Decimal]:
    """What remains after each of `admitted` reservations of `reserve`, smallest first."""
    return [budget - k * reserve for k in range(admitted, 0, -1)]


@dataclass
class Reply:
    """One SDK call as the client saw it."""

    status: int
    headers: Mapping[str, str]
    code: str | None = None
    type: str | None = None
    param: str | None = None
    text: str = ""

    @property
    def budget_left(self) -> Decimal | None:
        value = self.headers.get("x-budget-remaining-usd")
        return None if value is None else Decimal(value)


async def chat(
    client: openai.AsyncOpenAI,
    model: str = "fake-model",
    stream: bool = False,
    messages: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Reply:
    """One chat request (a stream read to its end); the answer or the error, with headers."""
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=messages or HELLO, stream=stream, **extra
        )
    except openai.APIStatusError as err:
        return Reply(err.status_code, err.response.headers, err.code, err.type, err.param)
    answer = raw.parse()
    if stream:
        text = "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])
    else:
        text = answer.choices[0].message.content or ""
    return Reply(raw.status_code, raw.headers, text=text)


async def usage(gateway: Reachable, key: str) -> dict[str, Any]:
    """GET /v1/ai/usage as `key`."""
    async with aiohttp.ClientSession() as http:
        status, _, body = await call(http, "GET", f"{gateway.url}/v1/ai/usage", key)
    assert status == 200, body
    return body


async def budgets(gateway: Reachable, key: str) -> dict[str, dict[str, Any]]:
    """The caller's budgets from GET /v1/ai/usage, by scope (user, key, team)."""
    return {b["scope"]: b for b in (await usage(gateway, key))["budgets"]}


async def settled(gateway: Reachable, key: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The caller's budgets once no reservation is held any more (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await budgets(gateway, key)
        if all(Decimal(b["reserved_usd"]) == 0 for b in found.values()):
            return found
        assert time.monotonic() < deadline, f"reservations still held: {found}"
        await asyncio.sleep(0.02)


async def until(probe: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Wait until an async condition holds (bounded)."""
    deadline = time.monotonic() + timeout_s
    while not await probe():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def budget_config(upstream_url: str, tmp_path: Any, backend: str) -> dict[str, Any]:
    """base_config on `backend` (memory or redis) with a fresh Redis key prefix, the `pro` tier
    for keys made by the admin API, a cheap model and a `fake/*` route."""
    config = base_config(upstream_url, tmp_path, redis=backend)
    config["redis"]["prefix"] = f"gwtest-gov-{uuid.uuid4().hex[:12]}"
    config["quota"]["default_tier"] = "pro"
    config["models"]["cheap"] = {
        "provider": "fake", "model": "cheap-upstream", "input_price": 0.1, "output_price": 0.2,
    }  # fmt: skip
    config["models"]["fake/*"] = {"provider": "fake"}
    config["models"]["fake/pinned"] = {"provider": "fake", "model": "pinned-upstream"}
    return config


@asynccontextmanager
async def gateways() -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[RunningGateway]]]:
    """Start gateways from config mappings; close them, then delete their Redis keys."""
    started: list[RunningGateway] = []

    async def start(mapping: dict[str, Any]) -> RunningGateway:
        running = await start_gateway(mapping)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in reversed(started):
            await running.close()
        shared = {r.config.redis.prefix for r in started if r.config.redis.url == REDIS_URL}
        if shared:
            await delete_redis_keys(shared)
