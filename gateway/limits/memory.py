"""In-process RateLimiter for `redis.url: memory://`: plain dicts and the pure arithmetic of
bucket.py, budget.py and admission.py. Exact within one process because nothing awaits between
reading and writing."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from decimal import Decimal

from gateway.limits import admission, bucket, budget
from gateway.limits.admission import BudgetState, Request, SubjectState
from gateway.limits.base import Budget, Decision, Limits, Settlement, Subject
from gateway.limits.bucket import BucketState

# How often (in the callers' clock) full buckets and dead budget state are dropped.
SWEEP_EVERY_S = 60.0
RESERVATION_TTL_S = 900.0


class Reservations:
    """One budget's live reservations: nano-USD by request id, each with its expiry (also a
    subject's places in flight, one unit each)."""

    def __init__(self) -> None:
        self._amounts: dict[str, tuple[int, float]] = {}
        self._expiries: list[tuple[float, str]] = []  # heap; entries of replaced ids go stale
        self.total = 0

    def __len__(self) -> int:
        return len(self._amounts)

    def drop_expired(self, now: float) -> None:
        """Forget reservations whose expiry is not after `now`."""
        while self._expiries and self._expiries[0][0] <= now:
            expires_at, request_id = heapq.heappop(self._expiries)
            held = self._amounts.get(request_id)
            if held is not None and held[1] == expires_at:
                self.pop(request_id)

    def amount(self, request_id: str) -> int:
        """The request's live reservation, 0 if it holds none."""
        held = self._amounts.get(request_id)
        return 0 if held is None else held[0]

    def put(self, request_id: str, nanos: int, expires_at: float) -> None:
        """Reserve for the request, replacing what it held."""
        self.pop(request_id)
        self._amounts[request_id] = (nanos, expires_at)
        self.total += nanos
        heapq.heappush(self._expiries, (expires_at, request_id))

    def pop(self, request_id: str) -> None:
        """Release the request's reservation, if it still holds one."""
        held = self._amounts.pop(request_id, None)
        if held is not None:
            self.total -= held[0]


class MemoryLimiter:
    """RateLimiter over dicts, for one process (the embedded default, and Redis's stand-in)."""

    def __init__(self, reservation_ttl_s: float = RESERVATION_TTL_S) -> None:
        self._reservation_ttl_s = reservation_ttl_s
        # subject -> (bucket, time it is full again); a full bucket is the same as no bucket.
        self._buckets: dict[str, tuple[BucketState, float]] = {}
        # day key -> subject -> tokens used that day; only today and yesterday are kept.
        self._days: dict[str, dict[str, int]] = {}
        self._newest_day = ""
        # (budget id, period key) -> (spend in nanos, time the counter may be dropped)
        self._spend: dict[tuple[str, str], tuple[int, float]] = {}
        self._reservations: dict[str, Reservations] = {}
        self._in_flight: dict[str, Reservations] = {}  # subject -> places held, 1 per request
        self._next_sweep = 0.0

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        """Atomically admit one request or refuse it (see bucket.py for the rule)."""
        req = admission.request([Subject(user, limits)], (), Decimal(0), "")
        return self._evaluate(req, now, consume=True)

    async def peek(self, user: str, limits: Limits, now: float) -> Decision:
        """The current state as admit would see it; consumes nothing."""
        req = admission.request([Subject(user, limits)], (), Decimal(0), "")
        return self._evaluate(req, now, consume=False)

    async def admit_all(
        self,
        subjects: Sequence[Subject],
        budgets: Sequence[Budget],
        reserve_usd: Decimal,
        request_id: str,
        now: float,
    ) -> Decision:
        """Admit against every subject and budget, or refuse consuming nothing (admission.py)."""
        req = admission.request(subjects, budgets, reserve_usd, request_id)
        return self._evaluate(req, now, consume=True)

    async def peek_all(
        self, subjects: Sequence[Subject], budgets: Sequence[Budget], now: float
    ) -> Decision:
        """The state as an admission reserving nothing would see it; consumes nothing."""
        req = admission.request(subjects, budgets, Decimal(0), "", peek=True)
        return self._evaluate(req, now, consume=False)

    async def settle(self, settlements: Sequence[Settlement], now: float) -> dict[str, Decimal]:
        """Replace each reservation by its actual cost; charge tokens to every subject's day."""
        costs = [_checked_cost(s) for s in settlements]  # all valid before anything changes
        counters = self._day(bucket.day_key(now))
        spent: dict[str, Decimal] = {}
        for settlement, cost in zip(settlements, costs, strict=True):
            for b in settlement.budgets:
                book = self._reservations.get(b.id)
                if book is not None:
                    book.pop(settlement.request_id)
                spent[b.id] = budget.from_nanos(self._charge(b, cost, now))
            for subject in settlement.subjects:
                places = self._in_flight.get(subject)
                if places is not None:
                    places.pop(settlement.request_id)
                if settlement.tokens:
                    counters[subject] = counters.get(subject, 0) + settlement.tokens
        return spent

    async def spend(self, budgets: Sequence[Budget], now: float) -> dict[str, Decimal]:
        """Each budget's settled spend in the period of `now`."""
        return {b.id: budget.from_nanos(self._spend_of(b, now)) for b in budgets}

    def observe_spend(self, b: Budget, spend_usd: Decimal, now: float) -> None:
        """Raise the budget's spend for the period of `now` to at least what the shared backend
        reported, so that this process limits from there while the backend is away."""
        nanos = budget.to_nanos(spend_usd)
        if nanos > self._spend_of(b, now):
            self._charge(b, nanos - self._spend_of(b, now), now)

    async def add_tokens(self, user: str, tokens: int, now: float) -> int:
        """Charge `tokens` to the user's counter for the UTC day of `now`; return the new total."""
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        counters = self._day(bucket.day_key(now))
        counters[user] = counters.get(user, 0) + tokens
        return counters[user]

    @property
    def degraded(self) -> bool:
        """Never: this backend is the one the limits live in (FallbackLimiter degrades)."""
        return False

    async def ping(self) -> None:
        """Always answers: the backend is this process."""

    async def close(self) -> None:
        """Forget all state."""
        self._buckets.clear()
        self._days.clear()
        self._spend.clear()
        self._reservations.clear()
        self._in_flight.clear()

    def _evaluate(self, req: Request, now: float, consume: bool) -> Decision:
        self._sweep(now)
        counters = self._day(bucket.day_key(now))
        subjects = [
            SubjectState(
                self._tokens(s.id, s.limits.rpm, now),
                counters.get(s.id, 0),
                self._others_in_flight(s, req.request_id, now),
            )
            for s in req.subjects
        ]
        books = [self._reservations.get(b.id) for b in req.budgets]
        for book in books:
            if book is not None:
                book.drop_expired(now)
        budgets = [
            BudgetState(
                self._spend_of(b, now),
                0 if book is None else book.total - book.amount(req.request_id),
            )
            for b, book in zip(req.budgets, books, strict=True)
        ]
        refused = admission.first_refusal(req, subjects, budgets)
        if refused is None and consume:
            subjects = [
                self._take(s, st, now) for s, st in zip(req.subjects, subjects, strict=True)
            ]
            budgets = [BudgetState(st.spend, st.reserved + req.reserve) for st in budgets]
            expires_at = now + self._reservation_ttl_s
            for b in req.budgets:
                book = self._reservations.setdefault(b.id, Reservations())
                book.put(req.request_id, req.reserve, expires_at)
            for s in req.subjects:
                if s.limits.parallel > 0:
                    places = self._in_flight.setdefault(s.id, Reservations())
                    places.put(req.request_id, 1, expires_at)
        return admission.decide_all(req, subjects, budgets, refused, now)

    def _others_in_flight(self, subject: Subject, request_id: str, now: float) -> int:
        """The live places in flight other requests hold on a capped subject (0 uncapped)."""
        places = self._in_flight.get(subject.id) if subject.limits.parallel > 0 else None
        if places is None:
            return 0
        places.drop_expired(now)
        return places.total - places.amount(request_id)

    def _tokens(self, subject: str, rpm: int, now: float) -> float:
        """The subject's bucket refilled to `now` (0 when rpm is unlimited)."""
        if rpm <= 0:
            return 0.0
        stored = self._buckets.get(subject)
        return bucket.refill(stored[0] if stored else None, rpm, now).tokens

    def _take(self, subject: Subject, state: SubjectState, now: float) -> SubjectState:
        """Take the admitted request's bucket token; the state the Decision reports."""
        rpm = subject.limits.rpm
        if rpm <= 0:
            return state
        stored = self._buckets.get(subject.id)
        _, after = bucket.take(stored[0] if stored else None, rpm, now)
        full_at = after.updated_at + bucket.seconds_until_full(after.tokens, rpm)
        self._buckets[subject.id] = (after, full_at)
        return SubjectState(after.tokens, state.used)

    def _spend_of(self, b: Budget, now: float) -> int:
        held = self._spend.get((b.id, budget.period_key(b.period, now)))
        return 0 if held is None else held[0]

    def _charge(self, b: Budget, nanos: int, now: float) -> int:
        """Add to the budget's spend for the period of `now`; return the new spend."""
        key = (b.id, budget.period_key(b.period, now))
        ttl = budget.spend_ttl_s(b.period, now)
        total = self._spend.get(key, (0, 0.0))[0] + nanos
        self._spend[key] = (total, math.inf if ttl is None else now + ttl)
        return total

    def _day(self, day: str) -> dict[str, int]:
        """The counters of `day`, dropping days older than the one before the newest seen."""
        if day > self._newest_day:
            self._newest_day = day
            # Keep yesterday for requests still in flight across midnight.
            for old in sorted(self._days)[:-1]:
                del self._days[old]
        return self._days.setdefault(day, {})

    def _sweep(self, now: float) -> None:
        """Drop full buckets, past spend counters and empty reservation books."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        for subject in [s for s, (_, full_at) in self._buckets.items() if full_at <= now]:
            del self._buckets[subject]
        for key in [k for k, (_, until) in self._spend.items() if until <= now]:
            del self._spend[key]
        for books in (self._reservations, self._in_flight):
            for owner, book in list(books.items()):
                book.drop_expired(now)
                if not book:
                    del books[owner]


def _checked_cost(settlement: Settlement) -> int:
    if settlement.tokens < 0:
        raise ValueError("tokens must be >= 0")
    return budget.to_nanos(settlement.cost_usd)
