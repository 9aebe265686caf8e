"""The Lua scripts of RedisLimiter: admission, give-back (a Cluster admission refused by a later
slot), settlement and token charge. They mirror bucket.py, budget.py and admission.py.

Each script touches only the keys it is given, so under Redis Cluster every call must name keys
of one slot; redis.py groups them (see its docstring).
"""

from __future__ import annotations

# Mirrors bucket.refill / admission.first_refusal / bucket.take / budget.fits; change both
# together. Redis Lua numbers are doubles like Python floats, and `now` arrives as repr(float),
# so with the same operation order both backends compute the same values. Tokens are returned
# and stored with %.17g because Lua's tostring keeps only 14 digits. Money is whole nano-USD,
# exact in doubles below 2**53 (budget.MAX_NANOS); amounts are written from their ARGV/stored
# strings, never from a computed Lua number.
ADMIT = """
-- ARGV[1] now, [2] '1' admit / '0' peek, [3] bucket.TOLERANCE_S, [4] rpm grace seconds,
-- [5] subjects n, [6] budgets m, [7] request id, [8] reserve (nanos), [9] reservation expiry,
-- [10] reservation keys' ttl ms; then rpm, tpd, parallel per subject; then max (nanos) per budget.
-- KEYS: rpm, tpd, flight per subject; then spend, resv, resv:exp, resv:sum per budget.
-- Returns refusal kind ('' admitted) and index; per subject the bucket tokens after the take
-- and today's used; per budget spend and live reservations (this request's own after the
-- reservation, its earlier one excluded); per subject the tokens before the take; per budget the
-- request's earlier live reservation replaced here, amount and expiry ('' none), for give_back;
-- per subject the live places in flight other requests hold (0 uncapped).
local now = tonumber(ARGV[1])
local consume = ARGV[2] == '1'
local tolerance = tonumber(ARGV[3])
local grace = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local m = tonumber(ARGV[6])
local rid = ARGV[7]
local reserve = tonumber(ARGV[8])

local refused, refused_at = '', 0
local rpms, tokens, stamps, used, refilled = {}, {}, {}, {}, {}
local caps, flying = {}, {}
for i = 1, n do
  local rpm = tonumber(ARGV[8 + 3 * i])
  local tpd = tonumber(ARGV[9 + 3 * i])
  local cap = tonumber(ARGV[10 + 3 * i])
  rpms[i], caps[i], flying[i] = rpm, cap, 0
  used[i] = tonumber(redis.call('GET', KEYS[3 * i - 1]) or '0')
  -- Places in flight: live ones (expiry after now) other than this request's own.
  if cap > 0 then
    flying[i] = redis.call('ZCOUNT', KEYS[3 * i], '(' .. ARGV[1], '+inf')
    local mine = rid ~= '' and redis.call('ZSCORE', KEYS[3 * i], rid)
    if mine and tonumber(mine) > now then
      flying[i] = flying[i] - 1
    end
  end
  -- bucket.refill: a missing bucket is full; elapsed * rpm / 60 in that order; never past
  -- capacity; a clock running backwards adds nothing and never moves ts backwards.
  tokens[i] = 0
  stamps[i] = now
  if rpm > 0 then
    tokens[i] = rpm
    local state = redis.call('HMGET', KEYS[3 * i - 2], 'tokens', 'ts')
    if state[1] and state[2] then
      local stored_ts = tonumber(state[2])
      local elapsed = math.max(0, now - stored_ts)
      tokens[i] = math.min(rpm, tonumber(state[1]) + elapsed * rpm / 60)
      stamps[i] = math.max(now, stored_ts)
    end
  end
  refilled[i] = tokens[i]
  -- bucket.refusal: tpd first, then rpm (one token within `tolerance` seconds); 0 = unlimited;
  -- then the cap on places in flight.
  if refused == '' then
    if tpd > 0 and used[i] >= tpd then
      refused, refused_at = 'tpd', i
    elseif rpm > 0 and tokens[i] + tolerance * rpm / 60 < 1 then
      refused, refused_at = 'rpm', i
    elseif cap > 0 and flying[i] >= cap then
      refused, refused_at = 'parallel', i
    end
  end
end

local spend, reserved, prior_amounts, prior_expiries = {}, {}, {}, {}
for j = 1, m do
  local base = 3 * n + 4 * j - 4
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
  prior_amounts[j], prior_expiries[j] = '', ''
  local held_until = rid ~= '' and redis.call('ZSCORE', exp, rid)
  if held_until and tonumber(held_until) > now then
    local amount = redis.call('HGET', hash, rid)
    if amount then
      prior = tonumber(amount)
      prior_amounts[j], prior_expiries[j] = amount, held_until
    end
  end
  reserved[j] = held - expired - prior
  -- budget.fits
  if refused == '' and spend[j] + reserved[j] + reserve > tonumber(ARGV[10 + 3 * n + j]) then
    refused, refused_at = 'budget', j
  end
end

if refused == '' and consume then
  for i = 1, n do
    local rpm = rpms[i]
    if rpm > 0 then
      -- bucket.take: consume one token; once full the bucket equals a missing one.
      tokens[i] = math.max(0, tokens[i] - 1)
      redis.call('HSET', KEYS[3 * i - 2], 'tokens', string.format('%.17g', tokens[i]),
                 'ts', string.format('%.17g', stamps[i]))
      local until_full = (rpm - tokens[i]) * 60 / rpm
      redis.call('PEXPIRE', KEYS[3 * i - 2], math.ceil((until_full + grace) * 1000))
    end
    if caps[i] > 0 then
      -- Hold a place until settled; one whose holder died expires with the reservations.
      redis.call('ZREMRANGEBYSCORE', KEYS[3 * i], '-inf', ARGV[1])
      redis.call('ZADD', KEYS[3 * i], ARGV[9], rid)
      redis.call('PEXPIRE', KEYS[3 * i], ARGV[10])
    end
  end
  for j = 1, m do
    local base = 3 * n + 4 * j - 4
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

local states, before = {}, {}
for i = 1, n do
  states[i] = string.format('%.17g', tokens[i])
  before[i] = string.format('%.17g', refilled[i])
end
return {refused, refused_at, states, used, spend, reserved, before, prior_amounts, prior_expiries,
        flying}
"""

# Settlements in order: each releases its reservation on every budget it names and charges its
# cost to the budget's period counter, and its tokens to every subject's day counter; it gives
# back its place in flight on every subject.
SETTLE = """
-- ARGV[1] settlements, [2] tpd ttl seconds; then per settlement: request id, cost (nanos),
-- tokens, budgets m, subjects n, then the spend counter's ttl per budget ('' = keep forever).
-- KEYS per settlement: spend, resv, resv:exp, resv:sum per budget; then tpd, flight per subject.
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
    redis.call('ZREM', KEYS[k + 1], rid)
    k = k + 2
  end
end
return spent
"""

# Undoes what ADMIT (consume) took in one slot when a later slot refused the same request: one
# bucket token back to each subject with an rpm (bucket.refill to `now` first, never past
# capacity) and its place in flight, and on each budget the request's reservation removed and
# its earlier one, if ADMIT replaced a live one, put back.
GIVE_BACK = """
-- ARGV[1] now, [2] rpm grace seconds, [3] subjects n, [4] budgets m, [5] request id;
-- then rpm per subject; then the earlier reservation's amount and expiry per budget ('' none).
-- KEYS: rpm, flight per subject; then resv, resv:exp, resv:sum per budget.
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local n, m = tonumber(ARGV[3]), tonumber(ARGV[4])
local rid = ARGV[5]
for i = 1, n do
  local rpm = tonumber(ARGV[5 + i])
  redis.call('ZREM', KEYS[2 * i], rid)
  local state = redis.call('HMGET', KEYS[2 * i - 1], 'tokens', 'ts')
  -- A missing bucket is full: there is nothing to give back to it.
  if rpm > 0 and state[1] and state[2] then
    local stored_ts = tonumber(state[2])
    local elapsed = math.max(0, now - stored_ts)
    local tokens = math.min(rpm, tonumber(state[1]) + elapsed * rpm / 60)
    tokens = math.min(rpm, tokens + 1)
    redis.call('HSET', KEYS[2 * i - 1], 'tokens', string.format('%.17g', tokens),
               'ts', string.format('%.17g', math.max(now, stored_ts)))
    local until_full = (rpm - tokens) * 60 / rpm
    redis.call('PEXPIRE', KEYS[2 * i - 1], math.ceil((until_full + grace) * 1000))
  end
end
for j = 1, m do
  local hash, exp, sum = KEYS[2 * n + 3 * j - 2], KEYS[2 * n + 3 * j - 1], KEYS[2 * n + 3 * j]
  local mine = redis.call('HGET', hash, rid)
  if mine then
    redis.call('HDEL', hash, rid)
    redis.call('DECRBY', sum, mine)
  end
  redis.call('ZREM', exp, rid)
  local amount, expiry = ARGV[5 + n + 2 * j - 1], ARGV[5 + n + 2 * j]
  if amount ~= '' then
    redis.call('HSET', hash, rid, amount)
    redis.call('ZADD', exp, expiry, rid)
    redis.call('INCRBY', sum, amount)
  end
end
return 1
"""

# INCRBY and EXPIRE as one atomic call, so a charge can share a pipeline with admissions.
CHARGE = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return total
"""
