"""RateLimiter shared by every gateway instance through Redis: one Lua script per admission.
Receives a built client; redis errors become LimiterUnavailable here, at the boundary.

Keys (the `{user}` hash tag keeps both keys of a user on one Redis Cluster slot):
    {prefix}:{<user>}:rpm            hash {tokens, ts}; expires once the bucket would be full
    {prefix}:{<user>}:tpd:YYYYMMDD   integer, tokens used that UTC day; expires after 2 days
    {prefix}:ping                    written by `ping`, to prove the server accepts writes
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.limits import bucket
from gateway.limits.autopipeline import AutoPipeline
from gateway.limits.base import Decision, LimiterUnavailable, Limits

TPD_TTL_S = 2 * bucket.SECONDS_PER_DAY
# Kept past the moment the bucket is full, to cover clock differences between instances.
RPM_GRACE_S = 5
PING_TTL_MS = 60_000

# Mirrors bucket.refill / bucket.refusal / bucket.take; change both together.
# Redis Lua numbers are doubles like Python floats, and `now` arrives as repr(float), so with
# the same operation order both backends compute the same values. Tokens are stored and
# returned with %.17g because Lua's tostring keeps only 14 digits.
_ADMIT_LUA = """
-- KEYS[1] bucket hash {tokens, ts}; KEYS[2] today's token counter
-- ARGV[1] rpm, ARGV[2] tpd, ARGV[3] now (unix seconds), ARGV[4] '1' admit / '0' peek
-- ARGV[5] bucket.TOLERANCE_S, ARGV[6] grace seconds added to the bucket's expiry
local rpm = tonumber(ARGV[1])
local tpd = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local consume = ARGV[4] == '1'
local tolerance = tonumber(ARGV[5])
local grace = tonumber(ARGV[6])

local used = tonumber(redis.call('GET', KEYS[2]) or '0')

-- bucket.refill: a missing bucket is full; elapsed * rpm / 60 in that order; never past
-- capacity; a clock running backwards adds nothing and never moves ts backwards.
local tokens = 0
local ts = now
if rpm > 0 then
  tokens = rpm
  local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  if state[1] and state[2] then
    local stored_ts = tonumber(state[2])
    local elapsed = math.max(0, now - stored_ts)
    tokens = math.min(rpm, tonumber(state[1]) + elapsed * rpm / 60)
    ts = math.max(now, stored_ts)
  end
end

-- bucket.refusal: tpd first (consumes nothing), then rpm; 0 means unlimited.
-- bucket.has_token: one token within `tolerance` seconds counts (bucket.slack).
local refused = ''
if tpd > 0 and used >= tpd then
  refused = 'tpd'
elseif rpm > 0 and tokens + tolerance * rpm / 60 < 1 then
  refused = 'rpm'
end

-- bucket.take: consume one token; only an admission writes.
if refused == '' and consume and rpm > 0 then
  tokens = math.max(0, tokens - 1)
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
             'ts', string.format('%.17g', ts))
  -- Once full, the bucket equals a missing one: let idle users cost nothing.
  local until_full = (rpm - tokens) * 60 / rpm
  redis.call('PEXPIRE', KEYS[1], math.ceil((until_full + grace) * 1000))
end

return {refused, string.format('%.17g', tokens), used}
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

    def __init__(self, client: Redis, prefix: str = "gw") -> None:
        self._client = client
        self._prefix = prefix
        # EVALSHA, loading the script again if the server lost it (restart, SCRIPT FLUSH);
        # the calls of one event-loop turn share one pipeline (one write, one read).
        self._admit_sha = client.register_script(_ADMIT_LUA).sha
        self._charge_sha = client.register_script(_CHARGE_LUA).sha
        self._pipeline = AutoPipeline(
            client, {self._admit_sha: _ADMIT_LUA, self._charge_sha: _CHARGE_LUA}
        )

    def rpm_key(self, user: str) -> str:
        """The key of the user's request bucket."""
        return f"{self._prefix}:{{{user}}}:rpm"

    def tpd_key(self, user: str, day: str) -> str:
        """The key of the user's token counter for `day` ("YYYYMMDD")."""
        return f"{self._prefix}:{{{user}}}:tpd:{day}"

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        """Atomically admit one request or refuse it (see bucket.py for the rule)."""
        return await self._evaluate(user, limits, now, consume=True)

    async def peek(self, user: str, limits: Limits, now: float) -> Decision:
        """The current state as admit would see it; consumes and writes nothing."""
        return await self._evaluate(user, limits, now, consume=False)

    async def add_tokens(self, user: str, tokens: int, now: float) -> int:
        """Charge `tokens` to the user's counter for the UTC day of `now`; return the new total."""
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        key = self.tpd_key(user, bucket.day_key(now))
        with _translated():
            total = await self._pipeline.evalsha(self._charge_sha, [key], [tokens, TPD_TTL_S])
        return int(total)

    async def ping(self) -> None:
        """Return when Redis answers and accepts writes; raise LimiterUnavailable otherwise.

        A plain PING succeeds on a read-only replica, where every admission would then fail:
        a write keeps FallbackLimiter from switching back to a server that cannot count.
        """
        with _translated():
            await self._client.set(f"{self._prefix}:ping", b"1", px=PING_TTL_MS)

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever built it."""

    async def _evaluate(self, user: str, limits: Limits, now: float, consume: bool) -> Decision:
        keys = [self.rpm_key(user), self.tpd_key(user, bucket.day_key(now))]
        args = [
            limits.rpm,
            limits.tpd,
            repr(float(now)),
            "1" if consume else "0",
            repr(bucket.TOLERANCE_S),
            RPM_GRACE_S,
        ]
        with _translated():
            refused, tokens, used = await self._pipeline.evalsha(self._admit_sha, keys, args)
        refused_by = _text(refused) or None
        return bucket.decide(limits, refused_by, float(_text(tokens)), int(used), now)
