"""RateLimiter shared by every gateway instance through Redis: one Lua script per admission and
one per batch of settlements. Receives a built client; redis errors become LimiterUnavailable.

Keys (the `{id}` hash tag keeps a subject's and its budget's keys on one Cluster slot):
    {prefix}:{<subject>}:rpm              hash {tokens, ts}; expires once the bucket is full
    {prefix}:{<subject>}:tpd:YYYYMMDD     integer, tokens used that UTC day; expires after 2 days
    {prefix}:{<budget>}:spend:<period>    integer nano-USD settled in the period (budget.py
                                          period_key); expires 2 days after the period, total never
    {prefix}:{<budget>}:resv              hash request id -> reserved nano-USD
    {prefix}:{<budget>}:resv:exp          sorted set request id by expiry (callers' clock)
    {prefix}:{<budget>}:resv:sum          integer, the sum of the hash
    {prefix}:ping                         written by `ping`, to prove the server accepts writes
The three reservation keys expire reservation_ttl_s (+ grace) after their last reservation.

One admission is one script over every key of the request. That needs all of them on one
server: under Redis Cluster a request whose subjects and budgets sit in several slots must
reserve slot by slot and give back on a later refusal (SPEC 12), which is not done here yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.limits import admission, bucket, budget
from gateway.limits.admission import BudgetState, Request, SubjectState
from gateway.limits.autopipeline import AutoPipeline
from gateway.limits.base import Budget, Decision, LimiterUnavailable, Limits, Settlement, Subject

TPD_TTL_S = 2 * bucket.SECONDS_PER_DAY
# Kept past the moment the bucket is full, to cover clock differences between instances.
RPM_GRACE_S = 5
PING_TTL_MS = 60_000
RESERVATION_TTL_S = 900.0

# Mirrors bucket.refill / admission.first_refusal / bucket.take / budget.fits; change both
# together. Redis Lua numbers are doubles like Python floats, and `now` arrives as repr(float),
# so with the same operation order both backends compute the same values. Tokens are returned
# and stored with %.17g because Lua's tostring keeps only 14 digits. Money is whole nano-USD,
# exact in doubles below 2**53 (budget.MAX_NANOS); amounts are written from their ARGV/stored
# strings, never from a computed Lua number.
_ADMIT_LUA = """
-- ARGV[1] now, [2] '1' admit / '0' peek, [3] bucket.TOLERANCE_S, [4] rpm grace seconds,
-- [5] subjects n, [6] budgets m, [7] request id, [8] reserve (nanos), [9] reservation expiry,
-- [10] reservation keys' ttl ms; then rpm, tpd per subject; then max (nanos) per budget.
-- KEYS: rpm, tpd per subject; then spend, resv, resv:exp, resv:sum per budget.
local now = tonumber(ARGV[1])
local consume = ARGV[2] == '1'
local tolerance = tonumber(ARGV[3])
local grace = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local m = tonumber(ARGV[6])
local rid = ARGV[7]
local reserve = tonumber(ARGV[8])

local refused, refused_at = '', 0
local rpms, tokens, stamps, used = {}, {}, {}, {}
for i = 1, n do
  local rpm = tonumber(ARGV[9 + 2 * i])
  local tpd = tonumber(ARGV[10 + 2 * i])
  rpms[i] = rpm
  used[i] = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  -- bucket.refill: a missing bucket is full; elapsed * rpm / 60 in that order; never past
  -- capacity; a clock running backwards adds nothing and never moves ts backwards.
  tokens[i] = 0
  stamps[i] = now
  if rpm > 0 then
    tokens[i] = rpm
    local state = redis.call('HMGET', KEYS[2 * i - 1], 'tokens', 'ts')
    if state[1] and state[2] then
      local stored_ts = tonumber(state[2])
      local elapsed = math.max(0, now - stored_ts)
      tokens[i] = math.min(rpm, tonumber(state[1]) + elapsed * rpm / 60)
      stamps[i] = math.max(now, stored_ts)
    end
  end
  -- bucket.refusal: tpd first, then rpm (one token within `tolerance` seconds); 0 = unlimited.
  if refused == '' then
    if tpd > 0 and used[i] >= tpd then
      refused, refused_at = 'tpd', i
    elseif rpm > 0 and tokens[i] + tolerance * rpm / 60 < 1 then
      refused, refused_at = 'rpm', i
    end
  end
end

local spend, reserved = {}, {}
for j = 1, m do
  local base = 2 * n + 4 * j - 4
  local hash, exp, sum = KEYS[base + 2], KEYS[base + 3], KEYS[base + 4]
  -- Expired reservations no longer count; an admission also deletes them.
  local held = tonumber(redis.call('GET', sum) or '0')
  local expired = 0
  local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', ARGV[1])
  for _, old in ipairs(gone) do
    local amount = redis.call('HGET', hash, old)
    if amount then
      expired = expired + tonumber(amount)
      if consume then
        redis.call('HDEL', hash, old)
        redis.call('DECRBY', sum, amount)
      end
    end
  end
  if consume and #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', exp, '-inf', ARGV[1])
  end
  spend[j] = tonumber(redis.call('GET', KEYS[base + 1]) or '0')
  -- A request admitted again replaces its reservation: count the others only.
  local prior = 0
  local held_until = rid ~= '' and redis.call('ZSCORE', exp, rid)
  if held_until and tonumber(held_until) > now then
    prior = tonumber(redis.call('HGET', hash, rid) or '0')
  end
  reserved[j] = held - expired - prior
  -- budget.fits
  if refused == '' and spend[j] + reserved[j] + reserve > tonumber(ARGV[10 + 2 * n + j]) then
    refused, refused_at = 'budget', j
  end
end

if refused == '' and consume then
  for i = 1, n do
    local rpm = rpms[i]
    if rpm > 0 then
      -- bucket.take: consume one token; once full the bucket equals a missing one.
      tokens[i] = math.max(0, tokens[i] - 1)
      redis.call('HSET', KEYS[2 * i - 1], 'tokens', string.format('%.17g', tokens[i]),
                 'ts', string.format('%.17g', stamps[i]))
      local until_full = (rpm - tokens[i]) * 60 / rpm
      redis.call('PEXPIRE', KEYS[2 * i - 1], math.ceil((until_full + grace) * 1000))
    end
  end
  for j = 1, m do
    local base = 2 * n + 4 * j - 4
    local hash, exp, sum = KEYS[base + 2], KEYS[base + 3], KEYS[base + 4]
    local old = redis.call('HGET', hash, rid)
    if old then
      redis.call('DECRBY', sum, old)
    end
    redis.call('HSET', hash, rid, ARGV[8])
    redis.call('ZADD', exp, ARGV[9], rid)
    redis.call('INCRBY', sum, ARGV[8])
    for _, key in ipairs({hash, exp, sum}) do
      redis.call('PEXPIRE', key, ARGV[10])
    end
    reserved[j] = reserved[j] + reserve
  end
end

local states = {}
for i = 1, n do
  states[i] = string.format('%.17g', tokens[i])
end
return {refused, refused_at, states, used, spend, reserved}
"""

# Settlements in order: each releases its reservation on every budget it names and charges its
# cost to the budget's period counter, and its tokens to every subject's day counter.
_SETTLE_LUA = """
-- ARGV[1] settlements, [2] tpd ttl seconds; then per settlement: request id, cost (nanos),
-- tokens, budgets m, subjects n, then the spend counter's ttl per budget ('' = keep forever).
-- KEYS per settlement: spend, resv, resv:exp, resv:sum per budget; then tpd per subject.
local a, k = 3, 1
local spent = {}
for s = 1, tonumber(ARGV[1]) do
  local rid, cost, tokens = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local m, n = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 5
  for j = 1, m do
    local spend, hash, exp, sum = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
    k = k + 4
    local held = redis.call('HGET', hash, rid)
    if held then
      redis.call('HDEL', hash, rid)
      redis.call('DECRBY', sum, held)
    end
    redis.call('ZREM', exp, rid)
    local total
    if cost == '0' then
      total = tonumber(redis.call('GET', spend) or '0')
    else
      total = redis.call('INCRBY', spend, cost)
      if ARGV[a] ~= '' then
        redis.call('EXPIRE', spend, ARGV[a])
      end
    end
    a = a + 1
    spent[#spent + 1] = total
  end
  for i = 1, n do
    if tokens ~= '0' then
      redis.call('INCRBY', KEYS[k], tokens)
      redis.call('EXPIRE', KEYS[k], ARGV[2])
    end
    k = k + 1
  end
end
return spent
"""

# Not only "cannot reach the server": a server that answers but refuses the work (a read-only
# replica after a failover, MISCONF, OOM, LOADING) cannot keep the counters either, and the
# request must still be served (per process, by FallbackLimiter) rather than fail with a 500.
_UNAVAILABLE = (RedisError, OSError)

# INCRBY and EXPIRE as one atomic call, so a charge can share a pipeline with admissions.
_CHARGE_LUA = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return total
"""


@contextmanager
def _translated() -> Iterator[None]:
    """Turn every redis client error into LimiterUnavailable."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise LimiterUnavailable(f"redis: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisLimiter:
    """RateLimiter over a caller-owned `redis.asyncio.Redis`; exact across instances.

    The prefix must not contain braces (it would move the Cluster hash tag).
    """

    def __init__(
        self, client: Redis, prefix: str = "gw", reservation_ttl_s: float = RESERVATION_TTL_S
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._reservation_ttl_s = reservation_ttl_s
        # EVALSHA, loading the script again if the server lost it (restart, SCRIPT FLUSH);
        # the calls of one event-loop turn share one pipeline (one write, one read).
        self._admit_sha = client.register_script(_ADMIT_LUA).sha
        self._settle_sha = client.register_script(_SETTLE_LUA).sha
        self._charge_sha = client.register_script(_CHARGE_LUA).sha
        self._pipeline = AutoPipeline(
            client,
            {
                self._admit_sha: _ADMIT_LUA,
                self._settle_sha: _SETTLE_LUA,
                self._charge_sha: _CHARGE_LUA,
            },
        )

    def rpm_key(self, subject: str) -> str:
        """The key of the subject's request bucket."""
        return f"{self._prefix}:{{{subject}}}:rpm"

    def tpd_key(self, subject: str, day: str) -> str:
        """The key of the subject's token counter for `day` ("YYYYMMDD")."""
        return f"{self._prefix}:{{{subject}}}:tpd:{day}"

    def spend_key(self, budget_id: str, period_key: str) -> str:
        """The key of the budget's spend counter for one period (budget.period_key)."""
        return f"{self._prefix}:{{{budget_id}}}:spend:{period_key}"

    def reservation_keys(self, budget_id: str) -> list[str]:
        """The budget's reservation hash, its expiry index and their sum."""
        base = f"{self._prefix}:{{{budget_id}}}:resv"
        return [base, f"{base}:exp", f"{base}:sum"]

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        """Atomically admit one request or refuse it (see bucket.py for the rule)."""
        req = admission.request([Subject(user, limits)], (), Decimal(0), "")
        return await self._evaluate(req, now, consume=True)

    async def peek(self, user: str, limits: Limits, now: float) -> Decision:
        """The current state as admit would see it; consumes and writes nothing."""
        req = admission.request([Subject(user, limits)], (), Decimal(0), "")
        return await self._evaluate(req, now, consume=False)

    async def admit_all(
        self,
        subjects: Sequence[Subject],
        budgets: Sequence[Budget],
        reserve_usd: Decimal,
        request_id: str,
        now: float,
    ) -> Decision:
        """Admit against every subject and budget in one script call, or refuse consuming
        nothing (admission.py has the rule)."""
        req = admission.request(subjects, budgets, reserve_usd, request_id)
        return await self._evaluate(req, now, consume=True)

    async def peek_all(
        self, subjects: Sequence[Subject], budgets: Sequence[Budget], now: float
    ) -> Decision:
        """The state as an admission reserving nothing would see it; writes nothing."""
        req = admission.request(subjects, budgets, Decimal(0), "", peek=True)
        return await self._evaluate(req, now, consume=False)

    async def settle(self, settlements: Sequence[Settlement], now: float) -> dict[str, Decimal]:
        """Settle every request of the batch in one script call; return budgets' new spend."""
        if not settlements:
            return {}
        keys: list[str] = []
        args: list[Any] = [len(settlements), TPD_TTL_S]
        day = bucket.day_key(now)
        order: list[str] = []
        for s in settlements:
            if s.tokens < 0:
                raise ValueError("tokens must be >= 0")
            args += [s.request_id, budget.to_nanos(s.cost_usd), s.tokens, len(s.budgets)]
            args.append(len(s.subjects))
            for b in s.budgets:
                keys.append(self.spend_key(b.id, budget.period_key(b.period, now)))
                keys += self.reservation_keys(b.id)
                ttl = budget.spend_ttl_s(b.period, now)
                args.append("" if ttl is None else ttl)
                order.append(b.id)
            keys += [self.tpd_key(subject, day) for subject in s.subjects]
        with _translated():
            spent = await self._pipeline.evalsha(self._settle_sha, keys, args)
        return {b: budget.from_nanos(int(total)) for b, total in zip(order, spent, strict=True)}

    async def spend(self, budgets: Sequence[Budget], now: float) -> dict[str, Decimal]:
        """Each budget's settled spend in the period of `now`."""
        if not budgets:
            return {}
        keys = [self.spend_key(b.id, budget.period_key(b.period, now)) for b in budgets]
        with _translated():
            values = await self._client.mget(keys)
        return {
            b.id: budget.from_nanos(int(v) if v is not None else 0)
            for b, v in zip(budgets, values, strict=True)
        }

    async def add_tokens(self, user: str, tokens: int, now: float) -> int:
        """Charge `tokens` to the user's counter for the UTC day of `now`; return the new total."""
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        key = self.tpd_key(user, bucket.day_key(now))
        with _translated():
            total = await self._pipeline.evalsha(self._charge_sha, [key], [tokens, TPD_TTL_S])
        return int(total)

    @property
    def degraded(self) -> bool:
        """Never: this backend is the one the limits live in (FallbackLimiter degrades)."""
        return False

    async def ping(self) -> None:
        """Return when Redis answers and accepts writes; raise LimiterUnavailable otherwise.

        A plain PING succeeds on a read-only replica, where every admission would then fail:
        a write keeps FallbackLimiter from switching back to a server that cannot count.
        """
        with _translated():
            await self._client.set(f"{self._prefix}:ping", b"1", px=PING_TTL_MS)

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever built it."""

    async def _evaluate(self, req: Request, now: float, consume: bool) -> Decision:
        day = bucket.day_key(now)
        keys: list[str] = []
        for s in req.subjects:
            keys += [self.rpm_key(s.id), self.tpd_key(s.id, day)]
        for b in req.budgets:
            keys.append(self.spend_key(b.id, budget.period_key(b.period, now)))
            keys += self.reservation_keys(b.id)
        args: list[Any] = [
            repr(float(now)),
            "1" if consume else "0",
            repr(bucket.TOLERANCE_S),
            RPM_GRACE_S,
            len(req.subjects),
            len(req.budgets),
            req.request_id,
            req.reserve,
            repr(float(now + self._reservation_ttl_s)),
            math.ceil((self._reservation_ttl_s + RPM_GRACE_S) * 1000),
        ]
        for s in req.subjects:
            args += [s.limits.rpm, s.limits.tpd]
        args += req.max_nanos
        with _translated():
            reply = await self._pipeline.evalsha(self._admit_sha, keys, args)
        refused_kind, refused_at, tokens, used, spend, reserved = reply
        subjects = [
            SubjectState(float(_text(t)), int(u)) for t, u in zip(tokens, used, strict=True)
        ]
        budgets = [BudgetState(int(s), int(r)) for s, r in zip(spend, reserved, strict=True)]
        kind = _text(refused_kind)
        refused = (kind, int(refused_at) - 1) if kind else None
        return admission.decide_all(req, subjects, budgets, refused, now)
