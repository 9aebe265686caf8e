"""Budgets across processes and failures (SPEC 10): two `gateway serve` processes on one Redis and
PostgreSQL admit exactly what fits, a reservation held by a SIGKILLed process expires after
`redis.reservation_ttl_s`, and while Redis is down a process limits from the last spend it saw."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.test_quota_processes import RedisServer
from tests.support.budgets import (
    HELLO,
    budget_config,
    budgets,
    chat,
    exact_usage,
    left_after,
    reserve_for,
    room_for,
    set_user_budget,
    settled,
)
from tests.support.clients import post_chat, sdk
from tests.support.databases import delete_redis_keys
from tests.support.gateway import USER_KEY, start_gateway
from tests.support.serve import ServeProcess

MAX_TOKENS = 100
RESERVATION_TTL_S = 2


@pytest.fixture(autouse=True)
def not_near_midnight() -> None:
    """The budgets here are daily; a test spanning UTC midnight would see two periods."""
    if 86400 - time.time() % 86400 < 60:
        pytest.skip("too close to UTC midnight for daily-budget arithmetic")


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    """`gateway serve` processes a test starts; all stopped at teardown."""
    started: list[ServeProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
async def shared_prefix() -> AsyncIterator[str]:
    """A random key prefix on the shared Redis; its keys are deleted afterwards."""
    prefix = f"gwtest-budget-{uuid.uuid4().hex[:12]}"
    yield prefix
    await delete_redis_keys([prefix])


def shared_config(upstream_url: str, tmp_path: Path, database_url: str, prefix: str) -> dict:
    config = budget_config(upstream_url, tmp_path, "redis")
    config["server"]["host"] = "127.0.0.1"
    config["database"]["url"] = database_url
    config["redis"]["prefix"] = prefix
    return config


def serve(tmp_path: Path, name: str, mapping: dict[str, Any]) -> ServeProcess:
    mapping = {**mapping, "database": {**mapping["database"]}}
    mapping["database"]["spill_path"] = str(tmp_path / f"spill-{name}.jsonl")
    return ServeProcess(tmp_path, name, mapping)


async def sees_budget(process: ServeProcess) -> None:
    """Wait until the process has polled alice's budget from the database (bounded)."""
    deadline = time.monotonic() + 10
    while "user" not in await budgets(process, USER_KEY):
        assert time.monotonic() < deadline, "the budget did not reach the other process"
        await asyncio.sleep(0.05)


async def logged_costs(database_url: str, count: int) -> list[tuple[str, Decimal]]:
    """(status, cost) of the request-log rows once there are `count` of them (bounded wait)."""
    db = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + 10
        while True:
            rows = await db.fetch("SELECT status, cost_usd FROM ai_request_log")
            if len(rows) >= count or time.monotonic() > deadline:
                return [(r["status"], r["cost_usd"]) for r in rows]
            await asyncio.sleep(0.05)
    finally:
        await db.close()


async def test_two_serve_processes_admit_exactly_what_fits(
    postgres_url, shared_prefix, processes, upstream, tmp_path
):
    mapping = shared_config(upstream.base_url, tmp_path, postgres_url, shared_prefix)
    processes += [serve(tmp_path, "one", mapping), serve(tmp_path, "two", mapping)]
    for process in processes:
        process.start()
    await asyncio.gather(*(p.wait_ready() for p in processes))
    one, two = processes
    reserve = reserve_for(HELLO, MAX_TOKENS)
    budget = room_for(7, reserve)
    await set_user_budget(one, "alice", budget, "daily")
    await sees_budget(two)
    upstream.behaviour.usage = exact_usage(HELLO, MAX_TOKENS)
    async with sdk(one) as first, sdk(two) as second:
        replies = await asyncio.gather(
            *(
                chat((first, second)[i % 2], stream=i % 3 == 0, max_tokens=MAX_TOKENS)
                for i in range(40)
            )
        )
    admitted = [r for r in replies if r.status == 200]
    assert len(admitted) == 7, [(r.status, r.code) for r in replies]
    assert len(upstream.received) == 7
    assert {(r.status, r.code) for r in replies if r.status != 200} == {(429, "budget_exceeded")}
    assert sorted(r.budget_left for r in admitted) == left_after(budget, reserve, 7)

    rows = await logged_costs(postgres_url, 40)
    assert sorted(status for status, _ in rows) == ["ok"] * 7 + ["rejected"] * 33
    for process in processes:
        spend = Decimal((await settled(process, USER_KEY))["user"]["spend_usd"])
        assert spend == sum(cost for _, cost in rows) == 7 * reserve


async def test_a_killed_requests_reservation_expires(
    postgres_url, shared_prefix, processes, upstream, tmp_path
):
    mapping = shared_config(upstream.base_url, tmp_path, postgres_url, shared_prefix)
    mapping["redis"]["reservation_ttl_s"] = RESERVATION_TTL_S
    doomed = serve(tmp_path, "doomed", mapping)
    processes.append(doomed)
    doomed.start()
    survivor = await start_gateway(mapping)
    try:
        await doomed.wait_ready()
        reserve = reserve_for(HELLO, MAX_TOKENS)
        await set_user_budget(survivor, "alice", room_for(1, reserve), "daily")
        await sees_budget(doomed)
        b = upstream.behaviour
        b.pieces, b.split, b.chunk_delay_s = ["slow"] * 50, 64, 0.2  # about 10 s of stream

        body = {"model": "fake-model", "messages": HELLO, "stream": True, "max_tokens": MAX_TOKENS}
        async with aiohttp.ClientSession() as http, post_chat(http, doomed, body) as resp:
            assert resp.status == 200
            assert (await resp.content.readany()).startswith(b"data: ")
            assert doomed.proc is not None
            doomed.proc.kill()  # mid-stream: the request is never settled
            doomed.proc.wait(10)
        held = (await budgets(survivor, USER_KEY))["user"]
        assert (Decimal(held["reserved_usd"]), Decimal(held["spend_usd"])) == (reserve, 0)

        b.pieces, b.split, b.chunk_delay_s = ["ok"], 0, 0.0
        async with sdk(survivor) as client:
            first = await chat(client, max_tokens=MAX_TOKENS)
            # Only the dead request's reservation is in the way: retry in a second.
            assert (first.status, first.code, first.headers["retry-after"]) == (
                429, "budget_exceeded", "1"
            )  # fmt: skip
            deadline = time.monotonic() + 5 * RESERVATION_TTL_S
            reply = first
            while reply.status != 200:
                assert (reply.status, reply.code) == (429, "budget_exceeded")
                assert time.monotonic() < deadline, "the reservation did not expire"
                await asyncio.sleep(0.1)
                reply = await chat(client, max_tokens=MAX_TOKENS)
        assert len(upstream.received) == 2  # the killed stream and the one admitted after
        state = await settled(survivor, USER_KEY)
        # The killed request was never charged; the one after it was, at its actual cost.
        cost = (11 * Decimal("1.5") + 3 * Decimal("2.0")) / 1_000_000
        assert Decimal(state["user"]["spend_usd"]) == cost
    finally:
        await survivor.close()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    server.kill()


async def test_budgets_hold_per_process_while_redis_is_down(private_redis, upstream, tmp_path):
    config = budget_config(upstream.base_url, tmp_path, "memory")
    config["redis"].update(url=private_redis.url, fallback_retry_s=0.2)
    gateway = await start_gateway(config)
    try:
        reserve = reserve_for(HELLO, MAX_TOKENS)
        await set_user_budget(gateway, "alice", room_for(5, reserve), "daily")
        upstream.behaviour.usage = exact_usage(HELLO, MAX_TOKENS)
        async with sdk(gateway) as client:
            up = [await chat(client, max_tokens=MAX_TOKENS) for _ in range(2)]
            assert [r.status for r in up] == [200, 200]
            spent = Decimal((await settled(gateway, USER_KEY))["user"]["spend_usd"])
            assert spent == 2 * reserve

            private_redis.kill()
            down = [await chat(client, max_tokens=MAX_TOKENS) for _ in range(5)]
            assert gateway.services.limiter.degraded
            # The process carries on from the 2 reservations' spend it last saw in Redis.
            assert [(r.status, r.code) for r in down] == [(200, None)] * 3 + [
                (429, "budget_exceeded")
            ] * 2
            assert len(upstream.received) == 5
            state = (await settled(gateway, USER_KEY))["user"]
            assert Decimal(state["spend_usd"]) == 5 * reserve

            await private_redis.start()
            deadline = time.monotonic() + 10
            async with aiohttp.ClientSession() as http:
                while gateway.services.limiter.degraded:
                    assert time.monotonic() < deadline, "the gateway did not return to Redis"
                    await asyncio.sleep(0.1)
                    async with http.get(f"{gateway.url}/readyz"):
                        pass
            # The restarted Redis is empty (no persistence) and what the fallback counted is not
            # replayed into it (limits/fallback.py): the budget starts over there.
            back = await chat(client, max_tokens=MAX_TOKENS)
            assert back.status == 200 and back.budget_left == room_for(5, reserve) - reserve
    finally:
        await gateway.close()
