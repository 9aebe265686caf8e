"""In-process RateLimiter for `redis.url: memory://`: plain dicts and the bucket.py arithmetic.
Exact within one process because nothing awaits between reading and writing a user's state."""

from __future__ import annotations

from gateway.limits import bucket
from gateway.limits.base import Decision, Limits
from gateway.limits.bucket import BucketState

# How often (in the callers' clock) full buckets are dropped; a dropped bucket reads as full.
SWEEP_EVERY_S = 60.0


class MemoryLimiter:
    """RateLimiter over dicts, for one process (the embedded default, and Redis's stand-in)."""

    def __init__(self) -> None:
        # user -> (bucket, time it is full again); a full bucket is the same as no bucket.
        self._buckets: dict[str, tuple[BucketState, float]] = {}
        # day key -> user -> tokens used that day; only today and yesterday are kept.
        self._days: dict[str, dict[str, int]] = {}
        self._newest_day = ""
        self._next_sweep = 0.0

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        """Atomically admit one request or refuse it (see bucket.py for the rule)."""
        return self._evaluate(user, limits, now, consume=True)

    async def peek(self, user: str, limits: Limits, now: float) -> Decision:
        """The current state as admit would see it; consumes nothing."""
        return self._evaluate(user, limits, now, consume=False)

    async def add_tokens(self, user: str, tokens: int, now: float) -> int:
        """Charge `tokens` to the user's counter for the UTC day of `now`; return the new total."""
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        counters = self._day(bucket.day_key(now))
        counters[user] = counters.get(user, 0) + tokens
        return counters[user]

    async def ping(self) -> None:
        """Always answers: the backend is this process."""

    async def close(self) -> None:
        """Forget all state."""
        self._buckets.clear()
        self._days.clear()

    def _evaluate(self, user: str, limits: Limits, now: float, consume: bool) -> Decision:
        self._sweep(now)
        used = self._day(bucket.day_key(now)).get(user, 0)
        stored = self._buckets.get(user)
        decision, after = bucket.evaluate(stored[0] if stored else None, used, limits, now, consume)
        if after is not None:
            full_at = after.updated_at + bucket.seconds_until_full(after.tokens, limits.rpm)
            self._buckets[user] = (after, full_at)
        return decision

    def _day(self, day: str) -> dict[str, int]:
        """The counters of `day`, dropping days older than the one before the newest seen."""
        if day > self._newest_day:
            self._newest_day = day
            # Keep yesterday for requests still in flight across midnight.
            for old in sorted(self._days)[:-1]:
                del self._days[old]
        return self._days.setdefault(day, {})

    def _sweep(self, now: float) -> None:
        """Drop buckets that are full by now, so idle users cost nothing."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        for user in [u for u, (_, full_at) in self._buckets.items() if full_at <= now]:
            del self._buckets[user]
