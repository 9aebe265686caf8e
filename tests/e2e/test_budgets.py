"""USD budgets end to end (SPEC 10) through the official SDK and the admin API, on memory:// and
on Redis: exact admission of concurrent requests against user, key and team budgets, spend equal
to the request log, a tiny budget never exceeded, x-budget-remaining-usd, and periods rolling over
at UTC midnight (the gateway's wall clock moved by the test)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.support.budgets import (
    HELLO,
    admin_ok,
    budget_config,
    chat,
    exact_usage,
    gateways,
    left_after,
    new_key,
    reserve_for,
    room_for,
    set_user_budget,
    settled,
    usage,
)
from tests.support.clients import sdk
from tests.support.gateway import OTHER_KEY, USER_KEY, RunningGateway
from tests.support.logrows import rows_when

MAX_TOKENS = 100
FITS = 7  # reservations a budget has room for
REQUESTS = 40


@pytest.fixture(autouse=True)
def not_near_midnight() -> None:
    """Daily budgets roll over at UTC midnight; a test spanning it would see two periods."""
    if 86400 - time.time() % 86400 < 60:
        pytest.skip("too close to UTC midnight for daily-budget arithmetic")


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def start() -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[RunningGateway]]]:
    async with gateways() as starter:
        yield starter


async def budget_holders(gateway: RunningGateway, scope: str, amount: Decimal) -> list[str]:
    """Keys whose requests all count against one budget of `amount` of this scope: alice's user
    budget; a key's own budget; a team's budget shared by a key's team and a user's team."""
    money = str(amount)
    if scope == "user":
        await set_user_budget(gateway, "alice", amount, "daily")
        return [USER_KEY]
    if scope == "key":
        return [await new_key(gateway, user="kim", max_budget_usd=money, budget_period="weekly")]
    team = {"id": "squad", "max_budget_usd": money, "budget_period": "monthly"}
    await admin_ok(gateway, "POST", "/admin/teams", team)
    await admin_ok(gateway, "PUT", "/admin/users/bob/quota", {"team": "squad"})
    return [await new_key(gateway, user="tina", team="squad"), OTHER_KEY]


@pytest.mark.parametrize("scope", ["user", "key", "team"])
async def test_concurrent_requests_admit_exactly_the_reservations_that_fit(
    backend, scope, upstream, tmp_path, start
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, backend))
    reserve = reserve_for(HELLO, MAX_TOKENS)
    budget = room_for(FITS, reserve)
    keys = await budget_holders(gateway, scope, budget)
    # Answers cost exactly their reservation: settling one frees no room, so however requests
    # and settlements interleave, exactly FITS reservations fit.
    upstream.behaviour.usage = exact_usage(HELLO, MAX_TOKENS)
    clients = [sdk(gateway, key) for key in keys]
    try:
        replies = await asyncio.gather(
            *(
                chat(clients[i % len(clients)], stream=i % 2 == 1, max_tokens=MAX_TOKENS)
                for i in range(REQUESTS)
            )
        )
    finally:
        for client in clients:
            await client.close()

    admitted = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status != 200]
    assert len(admitted) == FITS, [(r.status, r.code) for r in replies]
    assert len(upstream.received) == FITS, "a refused request reached upstream"
    assert {(r.status, r.type, r.code) for r in refused} == {
        (429, "insufficient_quota", "budget_exceeded")
    }
    # Each admission reserved its own share: what was left after it is budget - k x reserve.
    assert sorted(r.budget_left for r in admitted) == left_after(budget, reserve, 7)
    assert {r.budget_left for r in refused} == {budget - FITS * reserve}

    rows = await rows_when(gateway, REQUESTS)
    costs = [Decimal(r["cost_usd"]) for r in rows]
    assert sorted((r["status"], r["status_code"]) for r in rows) == sorted(
        [("ok", 200)] * FITS + [("rejected", 429)] * (REQUESTS - FITS)
    )
    for key in keys:  # a team's members all see the one team budget
        state = (await settled(gateway, key))[scope]
        assert Decimal(state["spend_usd"]) == sum(costs) == FITS * reserve
        assert Decimal(state["max_budget_usd"]) == budget
        assert Decimal(state["remaining_usd"]) == budget - sum(costs)


async def test_a_tiny_budget_is_never_exceeded(backend, upstream, tmp_path, start):
    gateway = await start(budget_config(upstream.base_url, tmp_path, backend))
    limit = Decimal("0.000100")
    await set_user_budget(gateway, "alice", Decimal("0.000100"), "total")
    max_tokens = 50
    reserve = reserve_for(HELLO, max_tokens, Decimal("0.1"), Decimal("0.2"))
    prompt = exact_usage(HELLO, 0)["prompt_tokens"]
    replies = []
    async with sdk(gateway) as client:
        for i in range(200):
            # Answers of every length up to what was reserved, never longer.
            completion = (i * 17) % (max_tokens + 1)
            upstream.behaviour.usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                                        "total_tokens": prompt + completion}  # fmt: skip
            replies.append(await chat(client, "cheap", stream=i % 2 == 1, max_tokens=max_tokens))
    admitted = [r for r in replies if r.status == 200]
    assert len(admitted) == len(upstream.received) > limit // reserve
    assert {r.code for r in replies if r.status != 200} == {"budget_exceeded"}

    rows = await rows_when(gateway, 200)
    spent = sum(Decimal(r["cost_usd"]) for r in rows)
    assert spent <= limit
    state = (await settled(gateway, USER_KEY))["user"]
    assert Decimal(state["spend_usd"]) == spent
    # The refusals at the end were due: not even one more reservation fits what is left.
    assert limit - spent < reserve


async def test_remaining_budget_header_decreases_and_is_omitted_without_a_budget(
    upstream, tmp_path, start
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    budget = Decimal("0.01")
    await set_user_budget(gateway, "alice", Decimal("0.01"), "daily")
    reserve = reserve_for(HELLO, MAX_TOKENS)
    async with sdk(gateway) as alice, sdk(gateway, OTHER_KEY) as bob:
        seen = []
        for stream in (False, True, False):
            reply = await chat(alice, stream=stream, max_tokens=MAX_TOKENS)
            spent_before = Decimal((await settled(gateway, USER_KEY))["user"]["spend_usd"])
            assert reply.status == 200
            seen.append(reply.budget_left)
        unbudgeted = await chat(bob, max_tokens=MAX_TOKENS)
    # The fake answers 11 + 3 tokens: each request leaves its actual cost spent, and the header
    # shows what remained with its own worst case still reserved.
    cost = (11 * Decimal("1.5") + 3 * Decimal("2.0")) / 1_000_000
    assert spent_before == 3 * cost
    assert seen == [budget - k * cost - reserve for k in range(3)]
    assert seen[0] > seen[1] > seen[2]
    assert unbudgeted.status == 200 and "x-budget-remaining-usd" not in unbudgeted.headers
    assert (await usage(gateway, OTHER_KEY))["budgets"] == []


async def test_usage_reports_every_budget_and_the_header_the_tightest(upstream, tmp_path, start):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    team = {"id": "core", "max_budget_usd": "0.5", "budget_period": "weekly"}
    await admin_ok(gateway, "POST", "/admin/teams", team)
    await set_user_budget(gateway, "lee", Decimal(1), "monthly")
    key = await new_key(gateway, user="lee", team="core", max_budget_usd="0.25",
                        budget_period="total")  # fmt: skip
    async with sdk(gateway, key) as client:
        reply = await chat(client, max_tokens=MAX_TOKENS)
    assert reply.status == 200
    cost = (11 * Decimal("1.5") + 3 * Decimal("2.0")) / 1_000_000
    assert reply.budget_left == Decimal("0.25") - reserve_for(HELLO, MAX_TOKENS)
    found = await settled(gateway, key)
    assert sorted(found) == ["key", "team", "user"]
    assert (found["user"]["id"], found["team"]["id"]) == ("lee", "core")
    assert [(b["budget_period"], Decimal(b["max_budget_usd"])) for b in found.values()] == [
        ("monthly", 1), ("total", Decimal("0.25")), ("weekly", Decimal("0.5"))
    ]  # fmt: skip
    for b in found.values():
        assert Decimal(b["spend_usd"]) == cost
        assert Decimal(b["remaining_usd"]) == Decimal(b["max_budget_usd"]) - cost


class WallClock:
    """The gateway's wall clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_daily_budget_admits_again_on_the_next_utc_day(backend, upstream, tmp_path, start):
    gateway = await start(budget_config(upstream.base_url, tmp_path, backend))
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = WallClock((midnight + timedelta(hours=23, minutes=59, seconds=30)).timestamp())
    gateway.services.use_wall_clock(clock)
    reserve = reserve_for(HELLO, MAX_TOKENS)
    budget = room_for(2, reserve)
    await set_user_budget(gateway, "alice", budget, "daily")
    upstream.behaviour.usage = exact_usage(HELLO, MAX_TOKENS)
    async with sdk(gateway) as client:
        today = [await chat(client, max_tokens=MAX_TOKENS) for _ in range(3)]
        assert [r.status for r in today] == [200, 200, 429]
        assert today[2].code == "budget_exceeded"
        # Nothing is in flight: waiting helps only once the day is over, 30 s from now.
        assert today[2].headers["retry-after"] == "30"
        assert Decimal((await settled(gateway, USER_KEY))["user"]["spend_usd"]) == 2 * reserve

        clock.now += 60  # 00:00:30 the next day
        tomorrow = [await chat(client, max_tokens=MAX_TOKENS) for _ in range(3)]
    assert [r.status for r in tomorrow] == [200, 200, 429]
    assert tomorrow[0].budget_left == budget - reserve
    assert len(upstream.received) == 4
    state = (await settled(gateway, USER_KEY))["user"]
    assert Decimal(state["spend_usd"]) == 2 * reserve  # the new day's spend only
