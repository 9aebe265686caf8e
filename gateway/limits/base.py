"""Rate-limiter vocabulary: Limits, subjects, budgets, Decision, the RateLimiter protocol and its
one exception. Imports nothing from the package; every backend and caller builds on these names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

Period = Literal["daily", "weekly", "monthly", "total"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly", "total")


@dataclass(frozen=True, slots=True)
class Limits:
    """A user's quota. 0 means unlimited."""

    rpm: int  # requests per minute; 0 = unlimited
    tpd: int  # tokens per UTC day; 0 = unlimited
    parallel: int = 0  # requests in flight at once (max_parallel_requests); 0 = unlimited


@dataclass(frozen=True, slots=True)
class Subject:
    """Whoever a request counts against, with their own Limits.

    The id names the counters, so one id must always mean one subject: by convention
    "u:<uid>", "k:<key id>", "t:<team>". It is the Redis hash tag of its keys.
    """

    id: str
    limits: Limits


@dataclass(frozen=True, slots=True)
class Budget:
    """A USD budget per UTC calendar period ("weekly" weeks start on Monday; "total" never ends).

    `max_usd` 0 admits only requests that reserve nothing; a subject without a budget simply
    has no Budget. The id names the counters like a Subject's (a user's budget may share it).
    """

    id: str
    max_usd: Decimal
    period: Period


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One budget as an admission saw it: the period's spend and the live reservations."""

    budget: Budget
    spend_usd: Decimal
    reserved_usd: Decimal  # after this admission: includes its own reservation when admitted

    @property
    def remaining_usd(self) -> Decimal:
        """What can still be reserved, never below 0."""
        return max(Decimal(0), self.budget.max_usd - self.spend_usd - self.reserved_usd)


@dataclass(frozen=True, slots=True)
class Settlement:
    """A finished request: its reservation is replaced by `cost_usd` on every budget it held,
    `tokens` are charged to the day's counter of every subject, and its place among each
    subject's requests in flight is given back. Settle each request once."""

    request_id: str
    subjects: tuple[str, ...]  # subject ids
    budgets: tuple[Budget, ...]
    cost_usd: Decimal  # 0 releases the reservation (the upstream failed before any answer)
    tokens: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one admission (or peek), with what the rate-limit headers need.

    The request fields are 0 when rpm is unlimited; `tokens_remaining` is 0 when tpd is
    unlimited (callers omit the headers of an unlimited quota). Over several subjects, the
    request fields are the subject's with the fewest requests left (the one that refused, on an
    rpm refusal), and the token fields likewise; `limits` then pairs those two subjects' limits.
    """

    allowed: bool
    refused_by: str | None  # None, "rpm", "tpd", "parallel" or "budget"
    limits: Limits
    requests_remaining: int  # whole tokens left in the bucket after this admission
    requests_reset_s: float  # seconds until the bucket is full again
    tokens_used: int  # today's token total
    tokens_remaining: int  # max(0, tpd - used)
    tokens_reset_s: float  # seconds until the next UTC midnight
    retry_after_s: float  # for a refusal: when a retry can succeed; 0.0 when allowed
    refused_id: str | None = None  # the subject or budget id that refused
    budget_remaining_usd: Decimal | None = None  # the tightest budget; None when none applies
    budgets: tuple[BudgetUse, ...] = ()


class LimiterUnavailable(Exception):
    """The limiter's backend cannot be reached; backends raise this instead of client errors."""


class RateLimiter(Protocol):
    """Request buckets, daily token counters and USD budgets, shared by whoever shares the backend.

    `now` is a unix timestamp in seconds, passed in by the caller so tests control the clock.
    """

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        """Atomically admit one request (consuming a bucket token) or refuse it."""
        ...

    async def admit_all(
        self,
        subjects: Sequence[Subject],
        budgets: Sequence[Budget],
        reserve_usd: Decimal,
        request_id: str,
        now: float,
    ) -> Decision:
        """Atomically admit one request against every subject and budget, or refuse it.

        Admitted: one bucket token is taken from each subject with an rpm, a place in flight
        is held under `request_id` on each subject with a `parallel` cap, and `reserve_usd` is
        reserved under `request_id` on every budget, until settled or expired. Refused by any
        of them: nothing is consumed anywhere.
        """
        ...

    async def peek_all(
        self, subjects: Sequence[Subject], budgets: Sequence[Budget], now: float
    ) -> Decision:
        """Report the state as `admit_all` reserving nothing would see it, consuming nothing."""
        ...

    async def settle(self, settlements: Sequence[Settlement], now: float) -> dict[str, Decimal]:
        """Settle finished requests in one go; return each touched budget's spend after it."""
        ...

    async def spend(self, budgets: Sequence[Budget], now: float) -> dict[str, Decimal]:
        """Each budget's spend in the period of `now`, settled costs only (no reservations)."""
        ...

    async def add_tokens(self, user: str, tokens: int, now: float) -> int:
        """Charge `tokens` to the user's counter for the UTC day of `now`; return the new total."""
        ...

    async def peek(self, user: str, limits: Limits, now: float) -> Decision:
        """Report the current state as `admit` would see it, consuming nothing."""
        ...

    async def ping(self) -> None:
        """Return when the backend answers; raise LimiterUnavailable when it does not."""
        ...

    @property
    def degraded(self) -> bool:
        """True while limits are enforced per process because the shared backend is down."""
        ...

    async def close(self) -> None:
        """Release what the limiter itself owns."""
        ...
