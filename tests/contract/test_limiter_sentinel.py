"""RedisLimiter through `redis+sentinel://` on real processes (a master, its replica, 3 sentinels):
admissions reach the master the sentinels name; when it fails over, requests fall back per
process meanwhile, then count on the new master. Every wait is bounded; nothing is timed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

import pytest
from redis.asyncio import Redis

from gateway.config.redis_url import parse_redis_url
from gateway.limits import FallbackLimiter, Limits, MemoryLimiter
from gateway.limits.redis import RedisLimiter
from gateway.redis_clients import open_redis
from tests.support.redis_servers import PrivateSentinels, info

T = TypeVar("T")
NOW = 1_700_000_000.0
TIMEOUT_S = 10.0
FAILOVER_TIMEOUT_S = 30.0
LIMITS = Limits(rpm=1000, tpd=0)


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, TIMEOUT_S)


@pytest.fixture
def sentinels() -> Iterator[PrivateSentinels]:
    setup = PrivateSentinels()
    try:
        setup.start()
        yield setup
    finally:
        setup.destroy()


@pytest.fixture
async def limiter(sentinels: PrivateSentinels) -> AsyncIterator[FallbackLimiter]:
    """The app's stack: FallbackLimiter over RedisLimiter over the gateway's Sentinel client."""
    client = open_redis(parse_redis_url(sentinels.url), timeout_s=0.5)
    fallback = FallbackLimiter(RedisLimiter(client, prefix="t"), MemoryLimiter(), 0.05)
    yield fallback
    await client.aclose()


async def tokens_on(port: int) -> bytes | None:
    """The bucket of user "u" as stored on the server at `port`."""
    async with Redis(port=port, socket_timeout=2, socket_connect_timeout=2) as server:
        value = await server.hget("t:{u}:rpm", "tokens")
        return value.encode() if isinstance(value, str) else value


async def admit_until_back_on_redis(limiter: FallbackLimiter) -> int:
    """Admit (every one must be served) until the limiter is back on Redis after falling back;
    return how many were served per process meanwhile."""
    deadline = time.monotonic() + FAILOVER_TIMEOUT_S
    per_process = 0
    while time.monotonic() < deadline:
        decision = await bounded(limiter.admit("u", LIMITS, NOW))
        assert decision.allowed
        if limiter.degraded:
            per_process += 1
        elif per_process:
            return per_process
        await asyncio.sleep(0.05)
    raise AssertionError(f"still on the fallback after {FAILOVER_TIMEOUT_S}s")


async def test_admissions_follow_a_sentinel_failover(
    sentinels: PrivateSentinels, limiter: FallbackLimiter
) -> None:
    assert sentinels.master is not None and sentinels.replica is not None
    old, new = sentinels.master.port, sentinels.replica.port
    assert sentinels.master_port() == old
    for left in (999, 998, 997):
        assert (await bounded(limiter.admit("u", LIMITS, NOW))).requests_remaining == left
    assert await tokens_on(old) == b"997"

    sentinels.failover()
    # Every admission is served all along (on Redis, or per process for a moment); within a
    # bounded wait they count on the promoted replica: two in a row change its bucket, which
    # no longer replicates anything.
    deadline = time.monotonic() + FAILOVER_TIMEOUT_S
    in_a_row = 0
    while in_a_row < 2:
        assert time.monotonic() < deadline, "admissions did not follow the failover"
        decision = await bounded(limiter.admit("u", LIMITS, NOW))
        assert decision.allowed
        counted_on_new = (
            not limiter.degraded
            and sentinels.master_port() == new
            and await tokens_on(new) == str(decision.requests_remaining).encode()
        )
        in_a_row = in_a_row + 1 if counted_on_new else 0
        await asyncio.sleep(0.05)
    assert info(new, "replication")["role"] == "master"


async def test_a_killed_master_fails_over_and_admissions_fall_back_meanwhile(
    sentinels: PrivateSentinels, limiter: FallbackLimiter
) -> None:
    assert sentinels.master is not None and sentinels.replica is not None
    for _ in range(3):
        assert (await bounded(limiter.admit("u", LIMITS, NOW))).allowed
    replica = sentinels.replica.port
    # The replica holds the bucket too before its master goes (WAIT: replicated).
    async with Redis(port=sentinels.master.port, socket_timeout=2) as master:
        assert await master.wait(1, 5000) == 1
    sentinels.master.kill()

    served = await admit_until_back_on_redis(limiter)
    assert served >= 1  # while the sentinels elected a new master, this process limited alone
    assert sentinels.master_port() == replica
    # Back on Redis: the promoted replica counts, from the bucket it replicated.
    decision = await bounded(limiter.admit("u", LIMITS, NOW))
    assert decision.allowed and not limiter.degraded
    assert decision.requests_remaining == 995
    assert await tokens_on(replica) == b"995"
