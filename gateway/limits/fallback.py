"""RateLimiter that survives its shared backend going down: per-process limits meanwhile.
Switches to the fallback on LimiterUnavailable and back once the primary answers a ping again.

Budgets while degraded: every spend the primary reports (admissions, settlements, `spend`) is
noted in the fallback, which then enforces each budget per process from the last spend this
process saw from Redis, plus what it settles itself meanwhile. So a budget that was exhausted
stays exhausted; but several processes each admit up to what remained, reservations held in
Redis by requests already in flight are not seen, and a budget this process never saw starts
from 0. Nothing counted by the fallback is replayed into the primary when it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import TypeVar

from gateway.limits.base import (
    Budget,
    BudgetUse,
    Decision,
    LimiterUnavailable,
    Limits,
    RateLimiter,
    Settlement,
    Subject,
)
from gateway.limits.memory import MemoryLimiter

T = TypeVar("T")

_LOG = logging.getLogger(__name__)


class FallbackLimiter:
    """Use `primary` (Redis); while it is unreachable use `fallback` (in-process) instead.

    While degraded, the primary is probed with `ping` at most every `retry_every_s` seconds of
    `clock`, by the first call after that interval; the switch each way is logged once.
    Counts taken by the fallback stay in this process and are not replayed into the primary.
    """

    def __init__(
        self,
        primary: RateLimiter,
        fallback: MemoryLimiter,
        retry_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = _LOG,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._retry_every_s = retry_every_s
        self._clock = clock
        self._log = log
        self._degraded = False
        self._next_probe = 0.0
        self._probing = False
        self._seen: dict[str, tuple[Budget, Decimal, float]] = {}  # budget id -> latest spend

    @property
    def degraded(self) -> bool:
        """True while requests are limited per process because the primary is unreachable."""
        return self._degraded

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        """Admit on the primary, or on the fallback while degraded."""
        return await self._call(lambda lim: lim.admit(user, limits, now))

    async def add_tokens(self, user: str, tokens: int, now: float) -> int:
        """Charge tokens on the primary, or on the fallback while degraded."""
        return await self._call(lambda lim: lim.add_tokens(user, tokens, now))

    async def peek(self, user: str, limits: Limits, now: float) -> Decision:
        """Peek on the primary, or on the fallback while degraded."""
        return await self._call(lambda lim: lim.peek(user, limits, now))

    async def admit_all(
        self,
        subjects: Sequence[Subject],
        budgets: Sequence[Budget],
        reserve_usd: Decimal,
        request_id: str,
        now: float,
    ) -> Decision:
        """Admit on the primary, or on the fallback (from the last spend seen) while degraded."""
        return await self._call(
            lambda lim: lim.admit_all(subjects, budgets, reserve_usd, request_id, now),
            lambda decision: self._note(decision.budgets, now),
        )

    async def peek_all(
        self, subjects: Sequence[Subject], budgets: Sequence[Budget], now: float
    ) -> Decision:
        """Peek on the primary, or on the fallback while degraded."""
        return await self._call(
            lambda lim: lim.peek_all(subjects, budgets, now),
            lambda decision: self._note(decision.budgets, now),
        )

    async def settle(self, settlements: Sequence[Settlement], now: float) -> dict[str, Decimal]:
        """Settle on the primary, or on the fallback while degraded."""
        named = {b.id: b for s in settlements for b in s.budgets}
        return await self._call(
            lambda lim: lim.settle(settlements, now),
            lambda spent: self._note(self._uses(named, spent), now),
        )

    async def spend(self, budgets: Sequence[Budget], now: float) -> dict[str, Decimal]:
        """Spend from the primary, or from the fallback while degraded."""
        named = {b.id: b for b in budgets}
        return await self._call(
            lambda lim: lim.spend(budgets, now),
            lambda spent: self._note(self._uses(named, spent), now),
        )

    async def ping(self) -> None:
        """Probe the primary now (for /readyz), switching either way; raise if it is down."""
        try:
            await self._primary.ping()
        except LimiterUnavailable as exc:
            self._degrade(exc)
            raise
        self._recover()

    async def close(self) -> None:
        """Close both limiters."""
        try:
            await self._primary.close()
        finally:
            await self._fallback.close()

    async def _call(
        self,
        op: Callable[[RateLimiter], Awaitable[T]],
        seen: Callable[[T], None] | None = None,
    ) -> T:
        """`op` on the primary (then `seen` with its answer), or on the fallback."""
        if self._degraded:
            await self._maybe_probe()
        if not self._degraded:
            try:
                result = await op(self._primary)
            except LimiterUnavailable as exc:
                self._degrade(exc)
            else:
                if seen is not None:
                    seen(result)
                return result
        return await op(self._fallback)

    def _note(self, uses: Iterable[BudgetUse], now: float) -> None:
        """Remember the primary's latest spend of each budget, for the fallback to enforce from
        once degraded (handed over then: spends only grow, so the latest is the most)."""
        seen = self._seen
        for use in uses:
            seen[use.budget.id] = (use.budget, use.spend_usd, now)

    @staticmethod
    def _uses(named: dict[str, Budget], spent: dict[str, Decimal]) -> list[BudgetUse]:
        return [BudgetUse(named[i], usd, Decimal(0)) for i, usd in spent.items() if i in named]

    async def _maybe_probe(self) -> None:
        """Ping the primary if the interval has passed and no other call is already probing."""
        if self._probing or self._clock() < self._next_probe:
            return
        self._probing = True
        try:
            await self._primary.ping()
        except LimiterUnavailable as exc:
            self._next_probe = self._clock() + self._retry_every_s
            self._log.debug("rate limiter backend still unavailable: %s", exc)
        else:
            self._recover()
        finally:
            self._probing = False

    def _degrade(self, exc: LimiterUnavailable) -> None:
        self._next_probe = self._clock() + self._retry_every_s
        for b, spend_usd, at in self._seen.values():
            self._fallback.observe_spend(b, spend_usd, at)
        self._seen.clear()
        if not self._degraded:
            self._degraded = True
            self._log.warning(
                "rate limiter backend unavailable, limiting per process until it is back: %s", exc
            )

    def _recover(self) -> None:
        if self._degraded:
            self._degraded = False
            self._log.info("rate limiter backend is back, shared limits resumed")
