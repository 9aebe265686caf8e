"""RedisLimiter on a real 3-master Redis Cluster when one request's user, key and team live in
different slots, on different primaries: slot-by-slot admission under concurrency, give-back on a
later slot's refusal, settlement and spend per slot, lost scripts, an unreachable cluster.
(test_limiter.py and test_budgets.py run their whole contract on this cluster too.)"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import RedisCluster
from redis.crc import key_slot

from gateway.config.redis_url import parse_redis_url
from gateway.limits import (
    Budget,
    FallbackLimiter,
    LimiterUnavailable,
    Limits,
    MemoryLimiter,
    Settlement,
    Subject,
)
from gateway.limits.redis import RedisLimiter
from gateway.redis_clients import open_redis
from tests.support.gateway import free_port
from tests.support.redis_servers import PrivateRedisCluster, script_calls

NOW = 1_700_000_000.0  # Tuesday 2023-11-14 22:13:20 UTC
USD = Decimal
# `redis-cli --cluster create` gives 3 masters these slot ranges, one each.
THIRDS = [(0, 5460), (5461, 10922), (10923, 16383)]


def owner(kind: str, third: int) -> str:
    """An id such as "u:3" whose keys live in that third of the slots."""
    lo, hi = THIRDS[third]
    for n in itertools.count():
        candidate = f"{kind}:{n}"
        if lo <= key_slot(f"{{{candidate}}}".encode()) <= hi:
            return candidate
    raise AssertionError("unreachable")


USER, KEY, TEAM = owner("u", 0), owner("k", 1), owner("t", 2)


@pytest.fixture
async def client(redis_cluster: PrivateRedisCluster) -> AsyncIterator[RedisCluster]:
    """The gateway's own client for the session cluster (redis+cluster://)."""
    cluster_client = open_redis(parse_redis_url(redis_cluster.url), timeout_s=5)
    assert isinstance(cluster_client, RedisCluster)
    yield cluster_client
    await cluster_client.aclose()


@pytest.fixture
def limiter(client: RedisCluster) -> RedisLimiter:
    return RedisLimiter(client, prefix=f"test-{uuid.uuid4().hex}")


async def keys_of(client: RedisCluster, limiter: RedisLimiter, owner_id: str) -> dict[str, Any]:
    """Every counter of one subject/budget id, as stored."""
    base = limiter.rpm_key(owner_id).removesuffix(":rpm")
    hash_key, exp_key, sum_key = limiter.reservation_keys(owner_id)
    return {
        "rpm": await client.hgetall(f"{base}:rpm"),
        "tpd": await client.get(f"{base}:tpd:20231114"),
        "resv": await client.hgetall(hash_key),
        "exp": await client.zrange(exp_key, 0, -1, withscores=True),
        "sum": await client.get(sum_key),
    }


def test_user_key_and_team_live_on_three_primaries(limiter: RedisLimiter) -> None:
    slots = [limiter.slot(i) for i in (USER, KEY, TEAM)]
    assert slots == sorted(slots) and all(
        lo <= s <= hi for s, (lo, hi) in zip(slots, THIRDS, strict=True)
    )


@pytest.mark.parametrize("tight", [USER, KEY, TEAM])
async def test_forty_concurrent_admissions_with_room_for_seven_admit_exactly_seven(
    limiter: RedisLimiter, tight: str
) -> None:
    """The room for 7 sits in the first, second or third slot; the others have plenty."""
    subjects = [Subject(i, Limits(rpm=7 if i == tight else 100, tpd=0)) for i in (USER, TEAM)]
    subjects.insert(1, Subject(KEY, Limits(rpm=7 if tight == KEY else 100, tpd=0)))
    budgets = [
        Budget(i, USD("0.007") if i == tight else USD(1), "daily") for i in (USER, KEY, TEAM)
    ]
    decisions = await asyncio.gather(
        *(limiter.admit_all(subjects, budgets, USD("0.001"), f"r{i}", NOW) for i in range(40))
    )
    assert sum(d.allowed for d in decisions) == 7
    assert {d.refused_id for d in decisions if not d.allowed} == {tight}
    # Every refusal gave back what the slots before the refusing one took.
    for s in subjects:
        assert (await limiter.peek(s.id, s.limits, NOW)).requests_remaining == s.limits.rpm - 7
    view = await limiter.peek_all((), budgets, NOW)
    assert [u.reserved_usd for u in view.budgets] == [USD("0.007")] * 3


async def test_a_refusal_by_the_third_slot_leaves_the_first_two_untouched(
    limiter: RedisLimiter, client: RedisCluster
) -> None:
    subjects = [
        Subject(USER, Limits(rpm=5, tpd=100)),
        Subject(KEY, Limits(rpm=5, tpd=0)),
        Subject(TEAM, Limits(rpm=0, tpd=1000)),
    ]
    budgets = [
        Budget(USER, USD(1), "daily"),
        Budget(KEY, USD(1), "monthly"),
        Budget(TEAM, USD("0.010"), "weekly"),
    ]
    assert (await limiter.admit_all(subjects, budgets, USD("0.004"), "r1", NOW)).allowed
    before = [await keys_of(client, limiter, i) for i in (USER, KEY)]
    assert before[0]["rpm"][b"tokens"] == b"4" and before[1]["resv"] == {b"r1": b"4000000"}

    refused = await limiter.admit_all(subjects, budgets, USD("0.007"), "r2", NOW)
    assert (refused.refused_by, refused.refused_id) == ("budget", TEAM)
    # The decision shows the first two slots as the refused request left them.
    assert refused.requests_remaining == 4 and refused.budget_remaining_usd == USD("0.006")
    # r1 asking again for more than the team has: its first two reservations are restored.
    again = await limiter.admit_all(subjects, budgets, USD("0.011"), "r1", NOW)
    assert (again.refused_by, again.refused_id) == ("budget", TEAM)
    assert [await keys_of(client, limiter, i) for i in (USER, KEY)] == before
    view = await limiter.peek_all(subjects, budgets, NOW)
    assert [u.reserved_usd for u in view.budgets] == [USD("0.004")] * 3
    assert view.requests_remaining == 4


async def test_one_script_call_per_slot_group(limiter: RedisLimiter) -> None:
    calls = script_calls(limiter)
    own = await limiter.admit_all(
        [Subject(USER, Limits(10, 0))], [Budget(USER, USD(1), "daily")], USD("0.1"), "a", NOW
    )
    assert own.allowed and len(calls) == 1  # the user and the user's budget share a slot
    subjects = [Subject(i, Limits(10, 0)) for i in (USER, KEY, TEAM)]
    assert (await limiter.admit_all(subjects, (), USD(0), "", NOW)).allowed
    assert len(calls) == 1 + 3
    await limiter.add_tokens(TEAM, 1, NOW)  # the team's day is used up
    refused = await limiter.admit_all(
        [*subjects[:2], Subject(TEAM, Limits(0, 1))], (), USD(0), "", NOW
    )
    assert (refused.refused_by, refused.refused_id) == ("tpd", TEAM)
    # The charge, 3 admissions, then a give-back to each of the first two slots.
    assert len(calls) == 1 + 3 + 1 + 3 + 2


async def test_settlement_and_spend_per_slot(limiter: RedisLimiter) -> None:
    budgets = [Budget(i, USD(1), "daily") for i in (USER, KEY, TEAM)]
    subjects = [Subject(i, Limits(0, 1000)) for i in (USER, KEY, TEAM)]
    for rid in ("a", "b"):
        assert (await limiter.admit_all(subjects, budgets, USD("0.5"), rid, NOW)).allowed
    calls = script_calls(limiter)
    ids = (USER, KEY, TEAM)
    spent = await limiter.settle(
        [
            Settlement("a", ids, tuple(budgets), USD("0.000000001"), 7),
            Settlement("b", ids[1:], tuple(budgets[1:]), USD("0.25"), 5),
        ],
        NOW,
    )
    assert len(calls) == 3  # one script per slot
    assert spent == {USER: USD("0.000000001"), KEY: USD("0.250000001"), TEAM: USD("0.250000001")}
    assert await limiter.spend(budgets, NOW) == spent
    view = await limiter.peek_all(subjects, budgets, NOW)
    # b's reservation on the user's budget was not settled there: it is still held.
    assert [u.reserved_usd for u in view.budgets] == [USD("0.5"), 0, 0]
    assert [(await limiter.peek(i, Limits(0, 1000), NOW)).tokens_used for i in ids] == [7, 12, 12]


async def test_scripts_are_loaded_again_on_every_primary(
    limiter: RedisLimiter, client: RedisCluster
) -> None:
    subjects = [Subject(i, Limits(10, 0)) for i in (USER, KEY, TEAM)]
    assert (await limiter.admit_all(subjects, (), USD(0), "", NOW)).allowed
    await client.script_flush()  # on every primary
    decisions = await asyncio.gather(
        *(limiter.admit_all(subjects, (), USD(0), "", NOW) for _ in range(5))
    )
    assert all(d.allowed for d in decisions) and decisions[-1].requests_remaining >= 4


async def test_an_unreachable_cluster_falls_back_per_process() -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    dead = open_redis(parse_redis_url(url), timeout_s=0.5)
    limiter = FallbackLimiter(RedisLimiter(dead, prefix="t"), MemoryLimiter(), retry_every_s=60)
    try:
        with pytest.raises(LimiterUnavailable):
            await asyncio.wait_for(limiter.ping(), 10)
        limits = Limits(rpm=2, tpd=0)
        results = [(await limiter.admit("u", limits, NOW)).allowed for _ in range(3)]
        assert results == [True, True, False] and limiter.degraded
    finally:
        await dead.aclose()
