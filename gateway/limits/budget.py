"""Pure budget arithmetic shared by every limiter backend: nano-USD money, UTC periods, the check.
No I/O, no clock; gateway/limits/redis.py carries the same check in Lua, keep them in step.

Rules:
- Money is counted in integer nano-USD (1e-9 USD), exactly: Decimal in Python, integers in
  Lua. Costs and reservations round up to the next nano (never under-charge), a budget's
  maximum rounds down (never over-admit). Redis Lua numbers are doubles, so every amount must
  stay below 2**53 nanos (about 9 million USD); larger ones are refused with ValueError.
- Periods are UTC calendar periods of `now`: daily (midnight), weekly (Monday midnight),
  monthly (the 1st, midnight), total (never ends). A period's spend counter is named by its
  period key and kept until SPEND_MARGIN_S after the period ends; total is kept forever.
- A reservation fits when spend + live reservations + it <= max. A reservation is live while
  `now < expires_at`; an expired one no longer counts (a request killed mid-flight frees it).
  Reservations belong to the budget, not to a period: one made before midnight still counts
  after it, and its settlement charges the period of the settlement's own `now`.
- A budget refusal's retry_after: when the period ends if the reservation does not fit even
  without the live reservations (0 for total: waiting does not help), else RESERVATION_RETRY_S.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from gateway.limits.base import Period

NANOS_PER_USD = 10**9
MAX_NANOS = 2**53 - 1
# Spend counters outlive their period by this much: late settlements and reports can read them.
SPEND_MARGIN_S = 2 * 86400
RESERVATION_RETRY_S = 1.0
_NANO = Decimal(1).scaleb(-9)
_DAY = 86400


def to_nanos(usd: Decimal, *, round_down: bool = False) -> int:
    """USD as whole nano-USD: rounded up (costs), or down for a budget's maximum."""
    if not usd.is_finite() or usd < 0:
        raise ValueError(f"an amount of money must be finite and >= 0, not {usd}")
    nanos = int(
        (usd * NANOS_PER_USD).to_integral_value(ROUND_FLOOR if round_down else ROUND_CEILING)
    )
    if nanos > MAX_NANOS:
        raise ValueError(f"{usd} USD is more than a budget can count ({MAX_NANOS} nano-USD)")
    return nanos


def from_nanos(nanos: int) -> Decimal:
    """Whole nano-USD as USD, with nine decimal places."""
    return Decimal(nanos).scaleb(-9).quantize(_NANO)


def _start(period: Period, now: float) -> datetime:
    """The UTC start of the period that holds `now` (the epoch for total)."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    if period == "total":
        return datetime.fromtimestamp(0, UTC)
    raise ValueError(f"unknown budget period {period!r}")


def period_key(period: Period, now: float) -> str:
    """Names the period of `now`: "d20231114", "w20231113" (its Monday), "m202311", "total"."""
    return _period_key(period, int(now // _DAY))


def period_end(period: Period, now: float) -> float | None:
    """The unix time the period of `now` ends (the next one starts); None for total."""
    return _period_end(period, int(now // _DAY))


# Periods change only at UTC midnight: the date arithmetic runs once per period and day.
@functools.lru_cache(maxsize=32)
def _period_key(period: Period, day: int) -> str:
    start = _start(period, day * _DAY)
    if period == "daily":
        return start.strftime("d%Y%m%d")
    if period == "weekly":
        return start.strftime("w%Y%m%d")
    if period == "monthly":
        return start.strftime("m%Y%m")
    return "total"


@functools.lru_cache(maxsize=32)
def _period_end(period: Period, day: int) -> float | None:
    start = _start(period, day * _DAY)
    if period == "daily":
        end = start + timedelta(days=1)
    elif period == "weekly":
        end = start + timedelta(days=7)
    elif period == "monthly":
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        return None
    return end.timestamp()


def spend_ttl_s(period: Period, now: float) -> int | None:
    """Whole seconds to keep the period's spend counter from `now`; None: keep forever."""
    end = period_end(period, now)
    if end is None:
        return None
    return math.ceil(end - now) + SPEND_MARGIN_S


def fits(max_nanos: int, spend: int, reserved: int, reserve: int) -> bool:
    """Whether a reservation of `reserve` fits beside the spend and live reservations."""
    return spend + reserved + reserve <= max_nanos


def remaining(max_nanos: int, spend: int, reserved: int) -> int:
    """What can still be reserved, never below 0."""
    return max(0, max_nanos - spend - reserved)


def retry_after(period: Period, now: float, max_nanos: int, spend: int, reserve: int) -> float:
    """Seconds after which a refused reservation can fit (see the rules above)."""
    if fits(max_nanos, spend, 0, reserve):
        return RESERVATION_RETRY_S  # only live reservations are in the way
    end = period_end(period, now)
    return 0.0 if end is None else max(0.0, end - now)
