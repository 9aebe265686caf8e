"""Pure quota arithmetic shared by every limiter backend: token bucket, UTC day, Decision.
No I/O; gateway/limits/redis.py carries the same rules as a Lua script, keep them in step.

Rules:
- The bucket holds at most `rpm` tokens and refills continuously at rpm/60 per second,
  computed as `elapsed * rpm / 60` (that order, in both Python and Lua, so results match).
- A user with no stored bucket starts full. A clock that runs backwards adds nothing, and the
  bucket's timestamp never moves backwards (several gateways share one bucket).
- Admission, in this order: tpd > 0 and today's used >= tpd refuses with "tpd" and consumes
  nothing; else rpm > 0 and fewer than one token refuses with "rpm"; else one token is consumed.
  A limit of 0 never refuses.
- "At least one token" means "one token within TOLERANCE_S seconds": float error (a unix
  timestamp near 1.7e9 has a resolution of ~2.4e-7 s) must not make a retry at exactly
  `now + retry_after_s` fail. Whole tokens reported are counted with the same tolerance.
- The day is the UTC calendar day of `now`, as "YYYYMMDD"; it resets at UTC midnight.
- retry_after_s: 0 when admitted; "rpm": until one token; "tpd": until midnight, or until one
  token if that is later (a retry must pass both checks).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

from gateway.limits.base import Decision, Limits

TOLERANCE_S = 1e-6
SECONDS_PER_DAY = 86400
RPM = "rpm"
TPD = "tpd"


@dataclass(frozen=True, slots=True)
class BucketState:
    """A stored bucket: `tokens` as of `updated_at` (unix seconds)."""

    tokens: float
    updated_at: float


def refill(state: BucketState | None, rpm: int, now: float) -> BucketState:
    """The bucket as of `now`: a missing bucket is full; refill never passes capacity."""
    if state is None:
        return BucketState(float(rpm), now)
    elapsed = max(0.0, now - state.updated_at)
    tokens = min(float(rpm), state.tokens + elapsed * rpm / 60)
    return BucketState(tokens, max(now, state.updated_at))


def slack(rpm: int) -> float:
    """The tokens that refill in TOLERANCE_S: how far below 1 still counts as one token."""
    return TOLERANCE_S * rpm / 60


def has_token(tokens: float, rpm: int) -> bool:
    """Whether at least one token is there, within TOLERANCE_S of float error."""
    return tokens + slack(rpm) >= 1


def take(state: BucketState | None, rpm: int, now: float) -> tuple[bool, BucketState]:
    """Refill to `now`, then take one token if there is one: (taken, new state)."""
    current = refill(state, rpm, now)
    if not has_token(current.tokens, rpm):
        return False, current
    return True, BucketState(max(0.0, current.tokens - 1), current.updated_at)


def whole_tokens(tokens: float, rpm: int) -> int:
    """Tokens reported to clients: whole ones, with the same tolerance as admission."""
    return max(0, math.floor(tokens + slack(rpm)))


def seconds_until_full(tokens: float, rpm: int) -> float:
    """Seconds until a bucket holding `tokens` reaches capacity `rpm` (0 when unlimited)."""
    if rpm <= 0:
        return 0.0
    return max(0.0, rpm - tokens) * 60 / rpm


def seconds_until_token(tokens: float, rpm: int) -> float:
    """Seconds until a bucket holding `tokens` holds one whole token (0 if it already does)."""
    if rpm <= 0 or has_token(tokens, rpm):
        return 0.0
    return (1 - tokens) * 60 / rpm


def day_key(now: float) -> str:
    """The UTC day of `now` as "YYYYMMDD", the key of that day's token counter."""
    return _day_key(int(now // SECONDS_PER_DAY))


@functools.lru_cache(maxsize=8)
def _day_key(day: int) -> str:
    # Formatting a date costs more than the rest of an admission's arithmetic: once a day.
    return time.strftime("%Y%m%d", time.gmtime(day * SECONDS_PER_DAY))


def seconds_until_midnight(now: float) -> float:
    """Seconds from `now` to the next UTC midnight, in (0, 86400]."""
    return SECONDS_PER_DAY - now % SECONDS_PER_DAY


def refusal(limits: Limits, tokens: float, used: int) -> str | None:
    """The admission rule on a refilled bucket: None (admit), "tpd" or "rpm"."""
    if limits.tpd > 0 and used >= limits.tpd:
        return TPD
    if limits.rpm > 0 and not has_token(tokens, limits.rpm):
        return RPM
    return None


def decide(
    limits: Limits, refused_by: str | None, tokens: float, used: int, now: float
) -> Decision:
    """Build the Decision from the bucket's tokens after admission and today's total."""
    to_midnight = seconds_until_midnight(now)
    rpm_wait = seconds_until_token(tokens, limits.rpm)
    if refused_by is None:
        retry_after = 0.0
    elif refused_by == RPM:
        retry_after = rpm_wait
    else:
        # Normally midnight; a retry then must also find a bucket token.
        retry_after = max(to_midnight, rpm_wait)
    unlimited_rpm = limits.rpm <= 0
    return Decision(
        allowed=refused_by is None,
        refused_by=refused_by,
        limits=limits,
        requests_remaining=0 if unlimited_rpm else whole_tokens(tokens, limits.rpm),
        requests_reset_s=seconds_until_full(tokens, limits.rpm),
        tokens_used=used,
        tokens_remaining=max(0, limits.tpd - used),
        tokens_reset_s=to_midnight,
        retry_after_s=retry_after,
    )


def evaluate(
    state: BucketState | None, used: int, limits: Limits, now: float, consume: bool
) -> tuple[Decision, BucketState | None]:
    """Apply the admission rule; return the Decision and the bucket to store (None: no write).

    With `consume` False (a peek) nothing is ever written and no token is taken.
    """
    if limits.rpm <= 0:
        return decide(limits, refusal(limits, 0.0, used), 0.0, used, now), None
    current = refill(state, limits.rpm, now)
    refused_by = refusal(limits, current.tokens, used)
    if refused_by is not None or not consume:
        return decide(limits, refused_by, current.tokens, used, now), None
    _, after = take(current, limits.rpm, now)
    return decide(limits, None, after.tokens, used, now), after
