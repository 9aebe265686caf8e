"""Budgets through FallbackLimiter: while the shared backend is down, each process enforces every
budget from the last spend it saw from the backend. Time is injected (`now`, `clock`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.limits import (
    Budget,
    Decision,
    FallbackLimiter,
    LimiterUnavailable,
    Limits,
    MemoryLimiter,
    Settlement,
    Subject,
)
from gateway.limits.redis import RedisLimiter
from tests.support.gateway import free_port

NOW = 1_700_000_000.0
USD = Decimal


class FakeClock:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


class SwitchedOff(MemoryLimiter):
    """A shared backend stand-in that raises LimiterUnavailable for everything while `down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise LimiterUnavailable("down")

    async def admit_all(
        self,
        subjects: Sequence[Subject],
        budgets: Sequence[Budget],
        reserve_usd: Decimal,
        request_id: str,
        now: float,
    ) -> Decision:
        self._check()
        return await super().admit_all(subjects, budgets, reserve_usd, request_id, now)

    async def settle(self, settlements: Sequence[Settlement], now: float) -> dict[str, Decimal]:
        self._check()
        return await super().settle(settlements, now)

    async def spend(self, budgets: Sequence[Budget], now: float) -> dict[str, Decimal]:
        self._check()
        return await super().spend(budgets, now)

    async def ping(self) -> None:
        self._check()


def settle(request_id: str, cost: str, budget: Budget) -> list[Settlement]:
    return [Settlement(request_id, (), (budget,), USD(cost), 0)]


async def test_budgets_hold_per_process_from_the_last_spend_seen() -> None:
    shared, clock = SwitchedOff(), FakeClock()
    limiter = FallbackLimiter(shared, MemoryLimiter(), retry_every_s=5.0, clock=clock)
    team = Budget("t:eng", USD("0.010"), "daily")
    bob = Budget("u:bob", USD("0.010"), "daily")
    unseen = Budget("k:9", USD("0.010"), "daily")

    async def fits(budget: Budget, amount: str, request_id: str) -> bool:
        decision = await limiter.admit_all((), [budget], USD(amount), request_id, NOW)
        return decision.allowed

    # Up: spend is counted in the shared backend, and this process sees it go by.
    assert await fits(team, "0.008", "r1")
    await limiter.settle(settle("r1", "0.008", team), NOW)
    for budget, spent in ((bob, "0.005"), (unseen, "0.009")):  # spent by other processes
        assert (await shared.admit_all((), [budget], USD(spent), "x", NOW)).allowed
        await shared.settle(settle("x", spent, budget), NOW)
    assert await limiter.spend([bob], NOW) == {"u:bob": USD("0.005")}

    # Down: this process enforces from 0.008 spent, counting its own reservations and costs.
    shared.down = True
    assert await fits(team, "0.001", "r2")
    assert limiter.degraded
    assert await fits(team, "0.001", "r3")
    assert not await fits(team, "0.001", "r4")
    await limiter.settle(settle("r2", "0.0005", team), NOW)
    assert not await fits(team, "0.000500001", "r4")
    assert await fits(team, "0.0005", "r4")
    assert not await fits(bob, "0.006", "b1")  # seen through `spend`: 0.005 of 0.010
    assert await fits(bob, "0.005", "b1")
    # A budget this process never saw from the backend starts from nothing here.
    assert await fits(unseen, "0.010", "u1")

    # Back: the shared counts resume, without what the fallback counted meanwhile.
    shared.down = False
    clock.value += 5.0
    assert await fits(team, "0.002", "r5")
    assert not limiter.degraded
    assert await shared.spend([team], NOW) == {"t:eng": USD("0.008")}


async def test_redis_errors_on_budget_calls_become_limiter_unavailable() -> None:
    client = Redis(
        host="127.0.0.1",
        port=free_port(),  # nothing listens there
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )
    limiter = RedisLimiter(client, prefix="t")
    budget = Budget("u:a", USD(1), "daily")
    try:
        with pytest.raises(LimiterUnavailable):
            await limiter.admit_all([Subject("u:a", Limits(1, 1))], [budget], USD(0), "r", NOW)
        with pytest.raises(LimiterUnavailable):
            await limiter.settle(settle("r", "0.1", budget), NOW)
        with pytest.raises(LimiterUnavailable):
            await limiter.spend([budget], NOW)
    finally:
        await client.aclose()
