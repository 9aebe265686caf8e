"""Contract tests for budgets and scoped limits (admit_all, settle, spend) on MemoryLimiter and
RedisLimiter (real Redis). The clock is injected through `now`; nothing sleeps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.limits import Budget, Limits, MemoryLimiter, RateLimiter, Settlement, Subject
from gateway.limits.base import Period
from gateway.limits.redis import RedisLimiter
from tests.support.databases import REDIS_URL, delete_redis_keys
from tests.support.redis_servers import cluster_limiter, script_calls

# Tuesday 2023-11-14 22:13:20 UTC: 6400 s before midnight.
NOW = 1_700_000_000.0
TTL_S = 900.0
USD = Decimal
UNLIMITED = Limits(rpm=0, tpd=0)


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """Each backend in turn; the Redis ones under a random prefix: on the shared server (keys
    deleted afterwards) and on the session's private 3-master Cluster (slot by slot)."""
    if request.param == "memory":
        memory = MemoryLimiter(reservation_ttl_s=TTL_S)
        yield memory
        await memory.close()
        return
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        async with cluster_limiter(cluster, reservation_ttl_s=TTL_S) as on_cluster:
            yield on_cluster
        return
    client = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    prefix = f"test-budgets-{uuid.uuid4().hex}"
    try:
        yield RedisLimiter(client, prefix=prefix, reservation_ttl_s=TTL_S)
    finally:
        await client.aclose()
        await delete_redis_keys([prefix])


def settled(
    request_id: str,
    cost: str,
    budgets: Sequence[Budget] = (),
    subjects: Sequence[str] = (),
    tokens: int = 0,
) -> Settlement:
    return Settlement(request_id, tuple(subjects), tuple(budgets), USD(cost), tokens)


async def reserve(
    limiter: RateLimiter, budgets: Sequence[Budget], amount: str, request_id: str, now: float = NOW
) -> bool:
    decision = await limiter.admit_all((), budgets, USD(amount), request_id, now)
    return decision.allowed


async def test_concurrent_admissions_reserve_exactly_what_fits(limiter: RateLimiter) -> None:
    team = Budget("t:eng", USD("0.007"), "daily")
    user = Subject("u:alice", Limits(rpm=100, tpd=0))
    decisions = await asyncio.gather(
        *(limiter.admit_all([user], [team], USD("0.001"), f"r{i}", NOW) for i in range(40))
    )
    assert all(d.budget_remaining_usd is not None for d in decisions)
    admitted = [d for d in decisions if d.allowed]
    assert len(admitted) == 7
    remaining = sorted(d.budget_remaining_usd or USD(0) for d in admitted)
    assert remaining == [USD(i) / 1000 for i in range(7)]
    refused = [d for d in decisions if not d.allowed]
    assert {(d.refused_by, d.refused_id) for d in refused} == {("budget", "t:eng")}
    assert all(d.budget_remaining_usd == 0 for d in refused)
    # Refusals took no bucket token: only the 7 admissions did.
    assert (await limiter.peek_all([user], [team], NOW)).requests_remaining == 93


async def test_settling_at_the_actual_cost_frees_the_difference(limiter: RateLimiter) -> None:
    key = Budget("k:1", USD("0.010"), "monthly")
    assert await reserve(limiter, [key], "0.004", "a")
    assert await reserve(limiter, [key], "0.004", "b")
    assert not await reserve(limiter, [key], "0.004", "c")  # 0.012 > 0.010

    spent = await limiter.settle([settled("a", "0.001", [key])], NOW + 1)
    assert spent == {"k:1": USD("0.001")}
    view = await limiter.peek_all((), [key], NOW + 1)
    assert view.budget_remaining_usd == USD("0.005")
    (use,) = view.budgets
    assert (use.spend_usd, use.reserved_usd) == (USD("0.001"), USD("0.004"))

    assert await reserve(limiter, [key], "0.004", "c", NOW + 2)
    assert not await reserve(limiter, [key], "0.001000001", "d", NOW + 2)  # one nano too many
    assert await reserve(limiter, [key], "0.001", "d", NOW + 2)
    # `spend` counts settled costs only, never what is reserved.
    assert await limiter.spend([key], NOW + 2) == {"k:1": USD("0.001")}


async def test_spend_is_the_exact_sum_of_actual_costs(limiter: RateLimiter) -> None:
    budgets = [
        Budget("u:alice", USD("5"), "daily"),
        Budget("k:7", USD("5"), "weekly"),
        Budget("t:eng", USD("5"), "total"),
    ]
    costs = ["0.000123456", "0.1", "0.2", "0.000000001", "1.234567891", "0"]
    for i, _ in enumerate(costs):
        assert await reserve(limiter, budgets, "0.5", f"r{i}")
    await limiter.settle([settled(f"r{i}", c, budgets) for i, c in enumerate(costs)], NOW)
    total = sum(USD(c) for c in costs)
    assert total == USD("1.534691348")
    assert await limiter.spend(budgets, NOW) == {b.id: total for b in budgets}
    view = await limiter.peek_all((), budgets, NOW)
    assert view.budget_remaining_usd == USD(5) - total
    assert all(use.reserved_usd == 0 for use in view.budgets)


async def test_a_tiny_budget_is_never_exceeded(limiter: RateLimiter) -> None:
    cap = Budget("u:bob", USD("0.000100"), "daily")
    reserve_nanos, actual_nanos = 7000, [7000, 3000, 1, 6999]
    expected_spend, admitted = 0, 0
    for i in range(200):
        decision = await limiter.admit_all(
            (), [cap], USD(reserve_nanos).scaleb(-9), f"r{i}", NOW + i
        )
        assert decision.allowed == (expected_spend + reserve_nanos <= 100_000)
        if decision.allowed:
            cost = actual_nanos[admitted % len(actual_nanos)]
            spent = await limiter.settle(
                [settled(f"r{i}", str(USD(cost).scaleb(-9)), [cap])], NOW + i
            )
            expected_spend += cost
            admitted += 1
            assert spent["u:bob"] == USD(expected_spend).scaleb(-9)
        assert (await limiter.spend([cap], NOW + i))["u:bob"] <= USD("0.000100")
    # 5 rounds of 7000 + 3000 + 1 + 6999, then 7000 and 3000: 100_000 - 95_000 < 7000 left.
    assert (admitted, expected_spend) == (22, 95_000)


@pytest.mark.parametrize(
    ("period", "spent_at", "same_period", "next_period"),
    [
        ("daily", NOW, at("2023-11-14T23:59:59.999"), at("2023-11-15T00:00:00")),
        ("weekly", NOW, at("2023-11-19T23:59:59"), at("2023-11-20T00:00:00")),  # Monday
        ("monthly", NOW, at("2023-11-30T23:59:59"), at("2023-12-01T00:00:00")),
        ("total", NOW, at("2030-01-01T00:00:00"), None),
    ],
)
async def test_periods_roll_over_on_the_utc_calendar(
    limiter: RateLimiter,
    period: Period,
    spent_at: float,
    same_period: float,
    next_period: float | None,
) -> None:
    cap = Budget("u:carol", USD("1"), period)
    assert await reserve(limiter, [cap], "1", "r1", spent_at)
    await limiter.settle([settled("r1", "1", [cap])], spent_at)
    assert not await reserve(limiter, [cap], "0.000000001", "r2", same_period)
    assert await limiter.spend([cap], same_period) == {"u:carol": USD(1)}
    if next_period is None:
        return
    assert await limiter.spend([cap], next_period) == {"u:carol": USD(0)}
    fresh = await limiter.admit_all((), [cap], USD("0.25"), "r3", next_period)
    assert fresh.allowed and fresh.budget_remaining_usd == USD("0.75")
    # A settlement charges the period of its own `now`.
    await limiter.settle([settled("r3", "0.25", [cap])], next_period)
    assert await limiter.spend([cap], spent_at) == {"u:carol": USD(1)}
    assert await limiter.spend([cap], next_period) == {"u:carol": USD("0.25")}


async def test_an_abandoned_reservation_stops_counting_after_its_ttl(
    limiter: RateLimiter,
) -> None:
    cap = Budget("u:dave", USD("0.01"), "total")
    assert await reserve(limiter, [cap], "0.01", "killed")  # the process dies; never settled
    assert not await reserve(limiter, [cap], "0.001", "r1", NOW + TTL_S - 0.001)
    late = await limiter.admit_all((), [cap], USD("0.001"), "r1", NOW + TTL_S)
    assert late.allowed and late.budget_remaining_usd == USD("0.009")
    # Settling the expired reservation after all still charges what it cost.
    await limiter.settle([settled("killed", "0.004", [cap])], NOW + TTL_S + 1)
    assert await limiter.spend([cap], NOW + TTL_S + 1) == {"u:dave": USD("0.004")}
    view = await limiter.peek_all((), [cap], NOW + TTL_S + 1)
    assert view.budget_remaining_usd == USD("0.005")  # 0.004 spent, r1's 0.001 reserved


async def test_admitting_a_request_again_replaces_its_reservation(limiter: RateLimiter) -> None:
    cap = Budget("u:erin", USD("0.010"), "daily")
    assert await reserve(limiter, [cap], "0.006", "r1")
    assert await reserve(limiter, [cap], "0.008", "r1")  # not 0.014: r1 holds only the latter
    view = await limiter.peek_all((), [cap], NOW)
    assert view.budgets[0].reserved_usd == USD("0.008")
    await limiter.settle([settled("r1", "0.002", [cap])], NOW)
    assert (await limiter.peek_all((), [cap], NOW)).budget_remaining_usd == USD("0.008")


async def test_key_rpm_on_top_of_user_rpm(limiter: RateLimiter) -> None:
    user = Subject("u:alice", Limits(rpm=10, tpd=0))
    key1 = Subject("k:1", Limits(rpm=3, tpd=0))
    key2 = Subject("k:2", Limits(rpm=3, tpd=0))
    key3 = Subject("k:3", UNLIMITED)

    first = await limiter.admit_all([user, key1], (), USD(0), "", NOW)
    # The headers speak of the tighter bucket: the key's.
    assert first.limits.rpm == 3 and first.requests_remaining == 2
    assert first.budget_remaining_usd is None
    for _ in range(2):
        assert (await limiter.admit_all([user, key1], (), USD(0), "", NOW)).allowed
    refused = await limiter.admit_all([user, key1], (), USD(0), "", NOW)
    assert (refused.refused_by, refused.refused_id) == ("rpm", "k:1")
    assert refused.limits.rpm == 3 and refused.retry_after_s == pytest.approx(20.0)

    for _ in range(3):
        assert (await limiter.admit_all([user, key2], (), USD(0), "", NOW)).allowed
    for _ in range(4):  # the user has 10 - 6 = 4 left; the third key has no limit of its own
        assert (await limiter.admit_all([user, key3], (), USD(0), "", NOW)).allowed
    by_user = await limiter.admit_all([user, key3], (), USD(0), "", NOW)
    assert (by_user.refused_by, by_user.refused_id) == ("rpm", "u:alice")
    assert by_user.limits.rpm == 10 and by_user.retry_after_s == pytest.approx(6.0)


async def test_team_tpd_counts_the_sum_of_its_members(limiter: RateLimiter) -> None:
    team = Subject("t:eng", Limits(rpm=0, tpd=1000))
    alice = Subject("u:alice", Limits(rpm=0, tpd=800))
    bob = Subject("u:bob", Limits(rpm=0, tpd=800))
    assert (await limiter.admit_all([alice, team], (), USD(0), "", NOW)).allowed
    assert (await limiter.admit_all([bob, team], (), USD(0), "", NOW)).allowed
    await limiter.settle(
        [
            settled("a", "0", subjects=["u:alice", "t:eng"], tokens=600),
            settled("b", "0", subjects=["u:bob", "t:eng"], tokens=399),
        ],
        NOW,
    )
    nearly = await limiter.admit_all([alice, team], (), USD(0), "", NOW)
    assert nearly.allowed and nearly.tokens_used == 999 and nearly.tokens_remaining == 1
    assert nearly.limits.tpd == 1000  # the team's: fewer tokens left than alice's 200
    await limiter.settle([settled("c", "0", subjects=["u:bob", "t:eng"], tokens=1)], NOW)
    for member in (alice, bob):
        refused = await limiter.admit_all([member, team], (), USD(0), "", NOW)
        assert (refused.refused_by, refused.refused_id) == ("tpd", "t:eng")
        assert refused.retry_after_s == pytest.approx(6400.0)
    # Each member's own counter holds only their own tokens.
    assert (await limiter.peek("u:alice", alice.limits, NOW)).tokens_used == 600
    assert (await limiter.peek("u:bob", bob.limits, NOW)).tokens_used == 400
    # A new day starts the team afresh.
    assert (await limiter.admit_all([alice, team], (), USD(0), "", NOW + 6400)).allowed


async def test_a_refusal_anywhere_consumes_nothing_anywhere(limiter: RateLimiter) -> None:
    subjects = [Subject("u:alice", Limits(rpm=5, tpd=100)), Subject("k:1", Limits(rpm=5, tpd=0))]
    roomy = [Budget("u:alice", USD("1"), "daily"), Budget("k:1", USD("1"), "monthly")]
    tight = Budget("t:eng", USD("0.001"), "weekly")
    budgets = [*roomy, tight]

    refused = await limiter.admit_all(subjects, budgets, USD("0.002"), "r1", NOW)
    assert (refused.refused_by, refused.refused_id) == ("budget", "t:eng")
    assert refused.budget_remaining_usd == USD("0.001")
    assert refused.retry_after_s == pytest.approx(6400 + 5 * 86400)  # spend alone: next week

    view = await limiter.peek_all(subjects, budgets, NOW)
    assert view.requests_remaining == 5 and view.tokens_used == 0
    assert [u.reserved_usd for u in view.budgets] == [0, 0, 0]
    # A refusal by the second subject leaves the first subject's bucket and every budget alone.
    blocked = [subjects[0], Subject("k:2", Limits(rpm=1, tpd=0))]
    assert (await limiter.admit_all(blocked, roomy, USD("0.1"), "r2", NOW)).allowed
    for i in range(3):
        no = await limiter.admit_all(blocked, roomy, USD("0.1"), f"r{i + 3}", NOW)
        assert (no.refused_by, no.refused_id) == ("rpm", "k:2")
    after = await limiter.peek_all([subjects[0]], roomy, NOW)
    assert after.requests_remaining == 4
    assert [u.reserved_usd for u in after.budgets] == [USD("0.1"), USD("0.1")]


async def test_a_budget_refusal_while_reservations_are_in_flight_says_retry_soon(
    limiter: RateLimiter,
) -> None:
    cap = Budget("k:1", USD("0.010"), "daily")
    assert await reserve(limiter, [cap], "0.006", "r1")
    refused = await limiter.admit_all((), [cap], USD("0.006"), "r2", NOW)
    assert refused.refused_by == "budget" and refused.retry_after_s == 1.0


async def test_settlements_of_several_answers_in_one_call(limiter: RateLimiter) -> None:
    user, team = Budget("u:alice", USD("1"), "daily"), Budget("t:eng", USD("1"), "monthly")
    bob = Budget("u:bob", USD("1"), "daily")
    assert await reserve(limiter, [user, team], "0.3", "a")
    assert await reserve(limiter, [bob, team], "0.3", "b")
    assert await reserve(limiter, [user, team], "0.3", "c")
    spent = await limiter.settle(
        [
            settled("a", "0.01", [user, team], ["u:alice", "t:eng"], tokens=10),
            settled("b", "0.02", [bob, team], ["u:bob", "t:eng"], tokens=20),
            settled("c", "0", [user, team], ["u:alice", "t:eng"]),  # upstream failed: released
        ],
        NOW,
    )
    assert spent == {"u:alice": USD("0.01"), "u:bob": USD("0.02"), "t:eng": USD("0.03")}
    view = await limiter.peek_all((), [user, bob, team], NOW)
    assert [u.reserved_usd for u in view.budgets] == [0, 0, 0]
    assert view.budget_remaining_usd == USD("0.97")
    team_tokens = await limiter.peek_all([Subject("t:eng", Limits(0, 1000))], (), NOW)
    assert team_tokens.tokens_used == 30
    assert (await limiter.settle([], NOW)) == {}


async def test_a_settlement_batch_is_one_redis_call() -> None:
    client = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    prefix = f"test-budgets-{uuid.uuid4().hex}"
    limiter = RedisLimiter(client, prefix=prefix)
    calls = script_calls(limiter)
    try:
        budgets = [Budget(f"u:{i}", USD(1), "daily") for i in range(5)]
        await limiter.admit_all([Subject("u:0", Limits(60, 1000))], budgets, USD("0.1"), "x", NOW)
        assert len(calls) == 1  # one admission, one script call
        batch = [settled(f"r{i}", "0.1", budgets, ["u:0"], 5) for i in range(8)]
        await limiter.settle(batch, NOW)
        assert len(calls) == 2
    finally:
        await client.aclose()
        await delete_redis_keys([prefix])


async def test_redis_budget_keys_share_their_owners_slot_and_expire() -> None:
    client = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    prefix = f"test-budgets-{uuid.uuid4().hex}"
    limiter = RedisLimiter(client, prefix=prefix, reservation_ttl_s=TTL_S)
    try:
        alice = Subject("u:alice", Limits(rpm=10, tpd=100))
        budgets = [Budget("u:alice", USD(1), "daily"), Budget("t:eng", USD(1), "total")]
        assert (await limiter.admit_all([alice], budgets, USD("0.1"), "r1", NOW)).allowed
        assert (await limiter.admit_all([alice], budgets, USD("0.1"), "r2", NOW)).allowed
        await limiter.settle([settled("r1", "0.05", budgets, ["u:alice"], 7)], NOW)
        keys = sorted([k.decode() async for k in client.scan_iter(match=f"{prefix}:*")])
        assert keys == sorted(
            [
                f"{prefix}:{{u:alice}}:rpm",
                f"{prefix}:{{u:alice}}:tpd:20231114",
                f"{prefix}:{{u:alice}}:spend:d20231114",
                f"{prefix}:{{u:alice}}:resv",
                f"{prefix}:{{u:alice}}:resv:exp",
                f"{prefix}:{{u:alice}}:resv:sum",
                f"{prefix}:{{t:eng}}:spend:total",
                f"{prefix}:{{t:eng}}:resv",
                f"{prefix}:{{t:eng}}:resv:exp",
                f"{prefix}:{{t:eng}}:resv:sum",
            ]
        )
        alice_slots = {key_slot(k.encode()) for k in keys if "{u:alice}" in k}
        team_slots = {key_slot(k.encode()) for k in keys if "{t:eng}" in k}
        assert len(alice_slots) == 1 and len(team_slots) == 1
        assert await client.get(f"{prefix}:{{u:alice}}:spend:d20231114") == b"50000000"
        assert await client.get(f"{prefix}:{{t:eng}}:resv:sum") == b"100000000"  # r2's
        daily_ttl = await client.ttl(f"{prefix}:{{u:alice}}:spend:d20231114")
        assert 6400 < daily_ttl <= 6400 + 2 * 86400
        assert await client.ttl(f"{prefix}:{{t:eng}}:spend:total") == -1  # kept forever
        assert 0 < await client.pttl(f"{prefix}:{{t:eng}}:resv") <= (TTL_S + 5) * 1000
    finally:
        await client.aclose()
        await delete_redis_keys([prefix])


async def test_arguments_a_backend_refuses(limiter: RateLimiter) -> None:
    alice = Subject("u:alice", UNLIMITED)
    cap = Budget("u:alice", USD(1), "daily")
    with pytest.raises(ValueError):
        await limiter.admit_all([alice, alice], (), USD(0), "r", NOW)
    with pytest.raises(ValueError):
        await limiter.admit_all([alice], [cap], USD("0.1"), "", NOW)  # no id to settle by
    with pytest.raises(ValueError):
        await limiter.admit_all([alice], [cap], USD("-0.1"), "r", NOW)
    with pytest.raises(ValueError):
        await limiter.settle([settled("r", "0.1", [cap], tokens=-1)], NOW)
    assert (await limiter.peek_all([alice], [cap], NOW)).budget_remaining_usd == USD(1)
