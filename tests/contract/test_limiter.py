"""Contract tests for RateLimiter: the same tests on MemoryLimiter and RedisLimiter (real Redis).
The clock is injected through `now`; nothing sleeps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.limits import Limits, MemoryLimiter, RateLimiter, Settlement, Subject
from gateway.limits.redis import RedisLimiter
from tests.support.databases import REDIS_URL, delete_redis_keys
from tests.support.redis_servers import cluster_limiter

# 2023-11-14 22:13:20 UTC: 6400 s before midnight.
NOW = 1_700_000_000.0
MIDNIGHT = NOW + 6400


@pytest.fixture(params=["memory", "redis", "cluster"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """Each backend in turn; the Redis ones under a random prefix: on the shared server (keys
    deleted afterwards) and on the session's private 3-master Cluster (slot by slot)."""
    if request.param == "memory":
        memory = MemoryLimiter()
        yield memory
        await memory.close()
        return
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        async with cluster_limiter(cluster) as on_cluster:
            yield on_cluster
        return
    client = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    prefix = f"test-limits-{uuid.uuid4().hex}"
    try:
        yield RedisLimiter(client, prefix=prefix)
    finally:
        await client.aclose()
        await delete_redis_keys([prefix])


async def test_concurrent_admissions_admit_exactly_the_bucket(limiter: RateLimiter) -> None:
    limits = Limits(rpm=10, tpd=0)
    decisions = await asyncio.gather(*(limiter.admit("u", limits, NOW) for _ in range(30)))
    assert sum(d.allowed for d in decisions) == 10
    assert {d.refused_by for d in decisions if not d.allowed} == {"rpm"}
    assert sorted(d.requests_remaining for d in decisions if d.allowed) == list(range(10))


async def test_refill_over_the_injected_clock(limiter: RateLimiter) -> None:
    limits = Limits(rpm=10, tpd=0)
    for _ in range(10):
        assert (await limiter.admit("u", limits, NOW)).allowed
    assert not (await limiter.admit("u", limits, NOW)).allowed
    assert not (await limiter.admit("u", limits, NOW + 5.9)).allowed
    # 6 s at 10/60 per second is exactly one token.
    assert (await limiter.admit("u", limits, NOW + 6)).allowed
    assert not (await limiter.admit("u", limits, NOW + 6)).allowed


async def test_full_after_a_minute_and_never_more(limiter: RateLimiter) -> None:
    limits = Limits(rpm=3, tpd=0)
    for _ in range(3):
        await limiter.admit("u", limits, NOW)
    results = [(await limiter.admit("u", limits, NOW + 3600)).allowed for _ in range(4)]
    assert results == [True, True, True, False]


async def test_decision_values(limiter: RateLimiter) -> None:
    limits = Limits(rpm=10, tpd=1000)
    await limiter.add_tokens("u", 250, NOW)

    first = await limiter.admit("u", limits, NOW)
    assert first.allowed and first.refused_by is None and first.limits == limits
    assert first.requests_remaining == 9
    assert first.requests_reset_s == pytest.approx(6.0)  # 1 token at 1/6 per s
    assert first.tokens_used == 250 and first.tokens_remaining == 750
    assert first.tokens_reset_s == pytest.approx(6400.0)
    assert first.retry_after_s == 0.0

    for _ in range(9):
        await limiter.admit("u", limits, NOW)
    refused = await limiter.admit("u", limits, NOW + 3)
    assert not refused.allowed and refused.refused_by == "rpm"
    assert refused.requests_remaining == 0
    assert refused.requests_reset_s == pytest.approx(57.0)  # 9.5 tokens missing
    assert refused.retry_after_s == pytest.approx(3.0)  # 0.5 token missing
    assert refused.tokens_reset_s == pytest.approx(6397.0)

    # Retrying exactly when told succeeds.
    retry = await limiter.admit("u", limits, NOW + 3 + refused.retry_after_s)
    assert retry.allowed and retry.requests_remaining == 0


async def test_retry_after_is_exact_at_an_awkward_rate(limiter: RateLimiter) -> None:
    limits = Limits(rpm=7, tpd=0)
    now = NOW + 0.123
    for _ in range(7):
        await limiter.admit("u", limits, now)
    refused = await limiter.admit("u", limits, now)
    assert refused.retry_after_s == pytest.approx(60 / 7)
    assert (await limiter.admit("u", limits, now + refused.retry_after_s)).allowed
    assert not (await limiter.admit("u", limits, now + refused.retry_after_s)).allowed


async def test_tpd_refuses_once_used_reaches_the_limit(limiter: RateLimiter) -> None:
    limits = Limits(rpm=10, tpd=1000)
    assert await limiter.add_tokens("u", 600, NOW) == 600
    assert await limiter.add_tokens("u", 399, NOW) == 999
    assert (await limiter.admit("u", limits, NOW)).allowed  # 999 < 1000: in flight may overshoot
    assert await limiter.add_tokens("u", 500, NOW) == 1499

    refused = await limiter.admit("u", limits, NOW)
    assert not refused.allowed and refused.refused_by == "tpd"
    assert refused.tokens_used == 1499 and refused.tokens_remaining == 0
    assert refused.retry_after_s == pytest.approx(6400.0)


async def test_tpd_refusal_consumes_no_bucket_token(limiter: RateLimiter) -> None:
    limits = Limits(rpm=3, tpd=100)
    await limiter.add_tokens("u", 100, NOW)
    for _ in range(5):
        refused = await limiter.admit("u", limits, NOW)
        assert refused.refused_by == "tpd" and refused.requests_remaining == 3
    # The same bucket under a quota without tpd still holds all three tokens.
    no_tpd = Limits(rpm=3, tpd=0)
    results = [(await limiter.admit("u", no_tpd, NOW)).allowed for _ in range(4)]
    assert results == [True, True, True, False]


async def test_day_rollover_resets_tpd(limiter: RateLimiter) -> None:
    limits = Limits(rpm=0, tpd=1000)
    await limiter.add_tokens("u", 1000, NOW)
    assert (await limiter.admit("u", limits, MIDNIGHT - 0.001)).refused_by == "tpd"

    fresh = await limiter.admit("u", limits, MIDNIGHT)
    assert fresh.allowed and fresh.tokens_used == 0 and fresh.tokens_remaining == 1000
    assert fresh.tokens_reset_s == pytest.approx(86400.0)
    # add_tokens charges the day of its own `now`.
    assert await limiter.add_tokens("u", 5, MIDNIGHT + 1) == 5
    assert await limiter.add_tokens("u", 5, MIDNIGHT - 1) == 1005


async def test_unlimited_limits(limiter: RateLimiter) -> None:
    limits = Limits(rpm=0, tpd=0)
    await limiter.add_tokens("u", 10**9, NOW)
    decisions = await asyncio.gather(*(limiter.admit("u", limits, NOW) for _ in range(50)))
    assert all(d.allowed for d in decisions)
    last = decisions[-1]
    assert last.requests_remaining == 0 and last.requests_reset_s == 0.0
    assert last.tokens_used == 10**9 and last.tokens_remaining == 0
    assert last.retry_after_s == 0.0


async def test_unlimited_rpm_with_tpd_and_unlimited_tpd_with_rpm(limiter: RateLimiter) -> None:
    await limiter.add_tokens("u", 10, NOW)
    assert (await limiter.admit("u", Limits(rpm=0, tpd=10), NOW)).refused_by == "tpd"
    assert (await limiter.admit("u", Limits(rpm=1, tpd=0), NOW)).allowed
    assert (await limiter.admit("u", Limits(rpm=1, tpd=0), NOW)).refused_by == "rpm"


async def test_peek_consumes_nothing(limiter: RateLimiter) -> None:
    limits = Limits(rpm=2, tpd=100)
    await limiter.add_tokens("u", 40, NOW)
    fresh = await limiter.peek("u", limits, NOW)
    assert fresh.allowed and fresh.requests_remaining == 2 and fresh.requests_reset_s == 0.0
    assert fresh.tokens_used == 40 and fresh.tokens_remaining == 60
    for _ in range(5):
        await limiter.peek("u", limits, NOW)

    assert (await limiter.admit("u", limits, NOW)).requests_remaining == 1
    assert (await limiter.peek("u", limits, NOW)).requests_remaining == 1
    assert (await limiter.admit("u", limits, NOW)).allowed
    empty = await limiter.peek("u", limits, NOW)
    assert not empty.allowed and empty.refused_by == "rpm"
    assert empty.retry_after_s == pytest.approx(30.0)  # 1 token at 2/60 per s


async def test_users_are_isolated(limiter: RateLimiter) -> None:
    limits = Limits(rpm=1, tpd=100)
    assert (await limiter.admit("alice", limits, NOW)).allowed
    assert not (await limiter.admit("alice", limits, NOW)).allowed
    await limiter.add_tokens("alice", 100, NOW)

    bob = await limiter.admit("bob", limits, NOW)
    assert bob.allowed and bob.tokens_used == 0
    assert await limiter.add_tokens("bob", 1, NOW) == 1


async def test_ping(limiter: RateLimiter) -> None:
    await limiter.ping()


async def test_redis_key_layout_uses_one_hash_tag_per_user() -> None:
    client = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    prefix = f"test-limits-{uuid.uuid4().hex}"
    limiter = RedisLimiter(client, prefix=prefix)
    try:
        await limiter.admit("alice", Limits(rpm=10, tpd=100), NOW)
        await limiter.add_tokens("alice", 7, NOW)
        keys = sorted([k.decode() async for k in client.scan_iter(match=f"{prefix}:*")])
        assert keys == [f"{prefix}:{{alice}}:rpm", f"{prefix}:{{alice}}:tpd:20231114"]
        assert key_slot(keys[0].encode()) == key_slot(keys[1].encode())
        rpm_ttl = await client.pttl(keys[0])
        assert 0 < rpm_ttl <= 11_000  # 6 s until full + 5 s grace
        assert 0 < await client.ttl(keys[1]) <= 2 * 86400
        assert await client.get(keys[1]) == b"7"
    finally:
        await client.aclose()
        await delete_redis_keys([prefix])


async def test_places_in_flight_are_capped_and_given_back_on_settlement(
    limiter: RateLimiter,
) -> None:
    key = Subject("k:cap", Limits(rpm=100, tpd=0, parallel=2))
    admitted = [await limiter.admit_all([key], (), Decimal(0), f"r{i}", NOW) for i in range(2)]
    assert all(d.allowed for d in admitted)
    refused = await limiter.admit_all([key], (), Decimal(0), "r2", NOW)
    assert (refused.refused_by, refused.refused_id) == ("parallel", "k:cap")
    assert refused.retry_after_s == 1.0
    assert refused.requests_remaining == 98  # the refusal took no bucket token
    again = await limiter.admit_all([key], (), Decimal(0), "r0", NOW)  # r0 holds its own place
    assert again.allowed
    await limiter.settle([Settlement("r0", ("k:cap",), (), Decimal(0), 0)], NOW)
    assert (await limiter.admit_all([key], (), Decimal(0), "r3", NOW)).allowed


async def test_concurrent_admissions_hold_exactly_the_cap(limiter: RateLimiter) -> None:
    team = Subject("t:squad", Limits(rpm=0, tpd=0, parallel=5))
    decisions = await asyncio.gather(
        *(limiter.admit_all([team], (), Decimal(0), f"c{i}", NOW) for i in range(20))
    )
    assert sum(d.allowed for d in decisions) == 5


async def test_a_place_whose_holder_never_settles_expires(limiter: RateLimiter) -> None:
    user = Subject("lost", Limits(rpm=0, tpd=0, parallel=1))
    assert (await limiter.admit_all([user], (), Decimal(0), "crashed", NOW)).allowed
    assert not (await limiter.admit_all([user], (), Decimal(0), "next", NOW + 60)).allowed
    assert (await limiter.admit_all([user], (), Decimal(0), "next", NOW + 901)).allowed


async def test_a_refusal_by_one_cap_holds_no_place_under_the_others(limiter: RateLimiter) -> None:
    """Key and team (in different Cluster slots): the team's cap refuses, and the key's place
    taken on the way is given back."""
    key = Subject("k:roomy", Limits(rpm=0, tpd=0, parallel=1))
    team = Subject("t:full", Limits(rpm=0, tpd=0, parallel=1))
    assert (await limiter.admit_all([team], (), Decimal(0), "other", NOW)).allowed
    refused = await limiter.admit_all([key, team], (), Decimal(0), "mine", NOW)
    assert (refused.refused_by, refused.refused_id) == ("parallel", "t:full")
    assert (await limiter.admit_all([key], (), Decimal(0), "later", NOW)).allowed
