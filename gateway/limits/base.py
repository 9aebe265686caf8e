"""Rate-limiter vocabulary: Limits, Decision, the RateLimiter protocol and its one exception.
Imports nothing from the package; every backend and caller builds on these names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Limits:
    """A user's quota. 0 means unlimited."""

    rpm: int  # requests per minute; 0 = unlimited
    tpd: int  # tokens per UTC day; 0 = unlimited


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one admission (or peek), with what the rate-limit headers need.

    The request fields are 0 when rpm is unlimited; `tokens_remaining` is 0 when tpd is
    unlimited (callers omit the headers of an unlimited quota).
    """

    allowed: bool
    refused_by: str | None  # None, "rpm" or "tpd"
    limits: Limits
    requests_remaining: int  # whole tokens left in the bucket after this admission
    requests_reset_s: float  # seconds until the bucket is full again
    tokens_used: int  # today's token total
    tokens_remaining: int  # max(0, tpd - used)
    tokens_reset_s: float  # seconds until the next UTC midnight
    retry_after_s: float  # for a refusal: when a retry can succeed; 0.0 when allowed


class LimiterUnavailable(Exception):
    """The limiter's backend cannot be reached; backends raise this instead of client errors."""


class RateLimiter(Protocol):
    """Per-user request bucket plus daily token counter, shared by whoever shares the backend.

    `now` is a unix timestamp in seconds, passed in by the caller so tests control the clock.
    """

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        """Atomically admit one request (consuming a bucket token) or refuse it."""
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

    async def close(self) -> None:
        """Release what the limiter itself owns."""
        ...
