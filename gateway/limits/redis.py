"""RateLimiter shared by every gateway instance through one Redis server or a Redis Cluster: Lua
scripts (scripts.py) over hash-tagged keys. Receives a built client; its errors become
LimiterUnavailable.

Keys (the `{id}` hash tag keeps a subject's and its budget's keys on one Cluster slot):
    {prefix}:{<subject>}:rpm              hash {tokens, ts}; expires once the bucket is full
    {prefix}:{<subject>}:tpd:YYYYMMDD     integer, tokens used that UTC day; expires after 2 days
    {prefix}:{<subject>}:flight           sorted set request id by expiry: the places in flight
                                          of a subject with a parallel cap (max_parallel_requests)
    {prefix}:{<budget>}:spend:<period>    integer nano-USD settled in the period (budget.py
                                          period_key); expires 2 days after the period, total never
    {prefix}:{<budget>}:resv              hash request id -> reserved nano-USD
    {prefix}:{<budget>}:resv:exp          sorted set request id by expiry (callers' clock)
    {prefix}:{<budget>}:resv:sum          integer, the sum of the hash
    {prefix}:ping                         written by `ping`, to prove the server accepts writes
The three reservation keys expire reservation_ttl_s (+ grace) after their last reservation.

One server (a plain client): every admission is ONE script over all of its keys, and a batch of
settlements one more; `spend` is one MGET. That is the fast path, and stays so.

Redis Cluster (a RedisCluster client, or by_slot=True): a script may touch one slot only, so an
admission whose subjects and budgets live in several slots goes slot by slot (slots.py groups
them; ascending slot order, the same for every request):
- admit_all runs the admission script on each slot group in turn, each taking as it admits.
  When a group refuses, the give-back script undoes, on every earlier group, what it took (one
  bucket token back per subject, this request's reservation removed and an earlier live one of
  the same request id put back), while the later groups are only peeked (for the headers).
  A request is admitted only if every group admitted it, and each group's check is atomic on its
  slot, so no slot ever holds more than it can admit: nothing is over-admitted, and once the
  give-back has run a refusal has consumed nothing.
- The window: between a group's take and its give-back (one round trip), a concurrent request
  needing the same subject or budget may be refused for want of a token or of room that is about
  to be given back. It is told to retry soon (the bucket's own wait, or RESERVATION_RETRY_S).
  Should the give-back not run at all (the node went away, the caller was cancelled), the take
  stays until the bucket refills and the reservation expires: again a refusal, never an excess.
- A refusal names the first refusing group in slot order (on one server: the request's first).
- peek_all peeks every group at once; settle sends each slot its share of the batch (one script
  per slot, concurrently: a settlement is atomic per slot, not across slots); spend is one MGET
  per slot, never a cross-slot one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, UnixDomainSocketConnection
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

from gateway.limits import admission, bucket, budget, scripts, slots
from gateway.limits.admission import BudgetState, Request, SubjectState
from gateway.limits.autopipeline import AutoPipeline
from gateway.limits.base import Budget, Decision, LimiterUnavailable, Limits, Settlement, Subject
from gateway.limits.resp import Address, RespPipeline
from gateway.limits.slots import Group

T = TypeVar("T")

TPD_TTL_S = 2 * bucket.SECONDS_PER_DAY
# Kept past the moment the bucket is full, to cover clock differences between instances.
RPM_GRACE_S = 5
PING_TTL_MS = 60_000
RESERVATION_TTL_S = 900.0
# A settlement waits this long for the next admission (or other settlements) to go out with;
# it is still run before any admission sent after it.
SETTLE_LINGER_S = 0.01
RESP_TIMEOUT_S = 0.5  # a server that does not answer the scripts' connection for this long is down

# Not only "cannot reach the server": a server that answers but refuses the work (a read-only
# replica after a failover, MISCONF, OOM, LOADING, CLUSTERDOWN) cannot keep the counters either,
# and the request must still be served (per process, by FallbackLimiter) rather than fail with a
# 500. RedisClusterException (no reachable node, no topology) is not a RedisError.
_UNAVAILABLE = (RedisError, RedisClusterException, OSError)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn every redis client error into LimiterUnavailable."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise LimiterUnavailable(f"redis: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _sha(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()


async def _all(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await every call, concurrently when there are several."""
    if len(calls) <= 1:
        return [await call for call in calls]
    return list(await asyncio.gather(*calls))


@dataclass(frozen=True, slots=True)
class _Reply:
    """The admission script's answer for one group, indexes local to the group."""

    refused: tuple[str, int] | None
    subjects: list[SubjectState]  # after the take when admitted
    budgets: list[BudgetState]  # this request's reservation included when admitted
    before: list[SubjectState]  # before the take
    priors: list[tuple[str, str]]  # the earlier live reservation replaced: (amount, expiry) or ''

    def untaken(self, reserve: int) -> list[BudgetState]:
        """The budgets as a refusal reports them: without this request's reservation."""
        return [BudgetState(b.spend, b.reserved - reserve) for b in self.budgets]


class RedisLimiter:
    """RateLimiter over a caller-owned redis-py asyncio client; exact across instances.

    `by_slot` (default: whether the client is a RedisCluster) takes admissions slot by slot.
    The prefix must not contain braces (it would move the Cluster hash tag).
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        prefix: str = "gw",
        reservation_ttl_s: float = RESERVATION_TTL_S,
        by_slot: bool | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._reservation_ttl_s = reservation_ttl_s
        self._by_slot = isinstance(client, RedisCluster) if by_slot is None else by_slot
        self._admit_sha = _sha(scripts.ADMIT)
        self._give_back_sha = _sha(scripts.GIVE_BACK)
        self._settle_sha = _sha(scripts.SETTLE)
        self._charge_sha = _sha(scripts.CHARGE)
        # EVALSHA, loading the script again if the server lost it (restart, SCRIPT FLUSH);
        # the calls of one event-loop turn share one pipeline (one write, one read).
        sources = {
            _sha(source): source
            for source in (scripts.ADMIT, scripts.GIVE_BACK, scripts.SETTLE, scripts.CHARGE)
        }
        address = resp_address(client)
        self._pipeline: AutoPipeline | RespPipeline = (
            AutoPipeline(client, sources) if address is None else RespPipeline(address, sources)
        )

    def rpm_key(self, subject: str) -> str:
        """The key of the subject's request bucket."""
        return f"{self._prefix}:{{{subject}}}:rpm"

    def tpd_key(self, subject: str, day: str) -> str:
        """The key of the subject's token counter for `day` ("YYYYMMDD")."""
        return f"{self._prefix}:{{{subject}}}:tpd:{day}"

    def flight_key(self, subject: str) -> str:
        """The key of the subject's places in flight (request id by expiry)."""
        return f"{self._prefix}:{{{subject}}}:flight"

    def spend_key(self, budget_id: str, period_key: str) -> str:
        """The key of the budget's spend counter for one period (budget.period_key)."""
        return f"{self._prefix}:{{{budget_id}}}:spend:{period_key}"

    def reservation_keys(self, budget_id: str) -> list[str]:
        """The budget's reservation hash, its expiry index and their sum."""
        base = f"{self._prefix}:{{{budget_id}}}:resv"
        return [base, f"{base}:exp", f"{base}:sum"]

    def slot(self, owner: str) -> int:
        """The Cluster slot of every key of a subject or budget id."""
        return key_slot(self.rpm_key(owner).encode())

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
        """Admit against every subject and budget, or refuse consuming nothing (admission.py
        has the rule): one script call, or one per slot group on a Cluster."""
        req = admission.request(subjects, budgets, reserve_usd, request_id)
        return await self._evaluate(req, now, consume=True)

    async def peek_all(
        self, subjects: Sequence[Subject], budgets: Sequence[Budget], now: float
    ) -> Decision:
        """The state as an admission reserving nothing would see it; writes nothing."""
        req = admission.request(subjects, budgets, Decimal(0), "", peek=True)
        return await self._evaluate(req, now, consume=False)

    async def settle(self, settlements: Sequence[Settlement], now: float) -> dict[str, Decimal]:
        """Settle the batch (one script call, or one per slot); return budgets' new spend."""
        for s in settlements:  # every argument checked before anything is written
            if s.tokens < 0:
                raise ValueError("tokens must be >= 0")
            budget.to_nanos(s.cost_usd)
        if not settlements:
            return {}
        shares = (
            slots.split_settlements(settlements, self.slot)
            if self._by_slot
            else [list(settlements)]
        )
        calls = [self._settle_call(share, now) for share in shares]
        pipe, sha = self._pipeline, self._settle_sha
        with _translated():
            replies = await _all(
                [pipe.evalsha(sha, keys, args, SETTLE_LINGER_S) for keys, args, _ in calls]
            )
        spent: dict[str, Decimal] = {}
        for (_, _, order), totals in zip(calls, replies, strict=True):
            for budget_id, total in zip(order, totals, strict=True):
                spent[budget_id] = budget.from_nanos(int(total))
        return spent

    async def spend(self, budgets: Sequence[Budget], now: float) -> dict[str, Decimal]:
        """Each budget's settled spend in the period of `now` (one MGET per slot)."""
        if not budgets:
            return {}
        groups: dict[int, list[Budget]] = {}
        for b in budgets:
            groups.setdefault(self.slot(b.id) if self._by_slot else 0, []).append(b)
        shares = [groups[slot] for slot in sorted(groups)]
        keys = [[self.spend_key(b.id, budget.period_key(b.period, now)) for b in s] for s in shares]
        pipe = self._pipeline  # in order after the settlements that linger there
        with _translated():
            replies = await _all([pipe.execute(("MGET", *share)) for share in keys])
        found: dict[str, Decimal] = {}
        for share, values in zip(shares, replies, strict=True):
            for b, v in zip(share, values, strict=True):
                found[b.id] = budget.from_nanos(int(v) if v is not None else 0)
        return {b.id: found[b.id] for b in budgets}

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
        a write keeps FallbackLimiter from switching back to a server that cannot count. On a
        Cluster every primary must answer too (a write reaches only one of them).
        """
        with _translated():
            if isinstance(self._client, RedisCluster):
                await self._client.execute_command("PING", target_nodes=RedisCluster.PRIMARIES)
            await self._client.set(f"{self._prefix}:ping", b"1", px=PING_TTL_MS)

    async def close(self) -> None:
        """Close the scripts' own connection, if any (the client belongs to whoever built it)."""
        await self._pipeline.close()

    async def _evaluate(self, req: Request, now: float, consume: bool) -> Decision:
        if self._by_slot:
            groups = slots.group(req.subjects, req.budgets, self.slot)
        else:
            groups = [slots.whole(req.subjects, req.budgets)]
        if len(groups) > 1 and consume:
            return await self._admit_by_slot(req, groups, now)
        replies = await _all([self._run(req, g, now, consume) for g in groups])
        subjects, budgets = slots.merge(
            [(g, r.subjects, r.budgets) for g, r in zip(groups, replies, strict=True)],
            len(req.subjects),
            len(req.budgets),
        )
        # One group: its own verdict; peeking several: the request's first refusal.
        refused = (
            _in_request(groups[0], replies[0].refused)
            if len(groups) == 1
            else admission.first_refusal(req, subjects, budgets)
        )
        return admission.decide_all(req, subjects, budgets, refused, now)

    async def _admit_by_slot(self, req: Request, groups: list[Group], now: float) -> Decision:
        """Take slot group after slot group; on a refusal give back what the earlier ones took."""
        taken: list[tuple[Group, _Reply]] = []
        for k, g in enumerate(groups):
            try:
                reply = await self._run(req, g, now, consume=True)
            except LimiterUnavailable:
                with contextlib.suppress(LimiterUnavailable):
                    await self._give_back(req, taken, now)
                raise
            if reply.refused is None:
                taken.append((g, reply))
                continue
            later = groups[k + 1 :]
            _, peeked = await asyncio.gather(
                self._give_back(req, taken, now),
                _all([self._run(req, other, now, consume=False) for other in later]),
            )
            parts = [(tg, tr.before, tr.untaken(req.reserve)) for tg, tr in taken]
            parts.append((g, reply.subjects, reply.budgets))
            parts += [(lg, lr.subjects, lr.budgets) for lg, lr in zip(later, peeked, strict=True)]
            subjects, budgets = slots.merge(parts, len(req.subjects), len(req.budgets))
            return admission.decide_all(req, subjects, budgets, _in_request(g, reply.refused), now)
        subjects, budgets = slots.merge(
            [(g, r.subjects, r.budgets) for g, r in taken], len(req.subjects), len(req.budgets)
        )
        return admission.decide_all(req, subjects, budgets, None, now)

    async def _run(self, req: Request, g: Group, now: float, consume: bool) -> _Reply:
        """The admission script over one group's keys."""
        day = bucket.day_key(now)
        subjects = [req.subjects[i] for i in g.subjects]
        keys: list[str] = []
        for s in subjects:
            keys += [self.rpm_key(s.id), self.tpd_key(s.id, day), self.flight_key(s.id)]
        for j in g.budgets:
            b = req.budgets[j]
            keys.append(self.spend_key(b.id, budget.period_key(b.period, now)))
            keys += self.reservation_keys(b.id)
        args: list[Any] = [
            repr(float(now)),
            "1" if consume else "0",
            repr(bucket.TOLERANCE_S),
            RPM_GRACE_S,
            len(subjects),
            len(g.budgets),
            req.request_id,
            req.reserve,
            repr(float(now + self._reservation_ttl_s)),
            math.ceil((self._reservation_ttl_s + RPM_GRACE_S) * 1000),
        ]
        for s in subjects:
            args += [s.limits.rpm, s.limits.tpd, s.limits.parallel]
        args += [req.max_nanos[j] for j in g.budgets]
        with _translated():
            reply = await self._pipeline.evalsha(self._admit_sha, keys, args)
        kind, at, tokens, used, spend, reserved, before, amounts, expiries, flying = reply
        return _Reply(
            refused=(_text(kind), int(at) - 1) if _text(kind) else None,
            subjects=[
                SubjectState(float(_text(t)), int(u), int(f))
                for t, u, f in zip(tokens, used, flying, strict=True)
            ],
            budgets=[BudgetState(int(s), int(r)) for s, r in zip(spend, reserved, strict=True)],
            before=[
                SubjectState(float(_text(t)), int(u)) for t, u in zip(before, used, strict=True)
            ],
            priors=[(_text(a), _text(e)) for a, e in zip(amounts, expiries, strict=True)],
        )

    async def _give_back(
        self, req: Request, taken: Sequence[tuple[Group, _Reply]], now: float
    ) -> None:
        """Undo what admission took in each of these groups (see scripts.GIVE_BACK)."""
        calls = []
        for g, reply in taken:
            subjects = [req.subjects[i] for i in g.subjects]
            keys = []
            for s in subjects:
                keys += [self.rpm_key(s.id), self.flight_key(s.id)]
            for j in g.budgets:
                keys += self.reservation_keys(req.budgets[j].id)
            args: list[Any] = [repr(float(now)), RPM_GRACE_S, len(subjects), len(g.budgets)]
            args.append(req.request_id)
            args += [s.limits.rpm for s in subjects]
            for amount, expiry in reply.priors:
                args += [amount, expiry]
            calls.append(self._pipeline.evalsha(self._give_back_sha, keys, args))
        if calls:
            with _translated():
                await _all(calls)

    def _settle_call(
        self, settlements: Sequence[Settlement], now: float
    ) -> tuple[list[str], list[Any], list[str]]:
        """Keys and arguments of one settlement script call, and the budget id of each total."""
        keys: list[str] = []
        args: list[Any] = [len(settlements), TPD_TTL_S]
        day = bucket.day_key(now)
        order: list[str] = []
        for s in settlements:
            args += [s.request_id, budget.to_nanos(s.cost_usd), s.tokens, len(s.budgets)]
            args.append(len(s.subjects))
            for b in s.budgets:
                keys.append(self.spend_key(b.id, budget.period_key(b.period, now)))
                keys += self.reservation_keys(b.id)
                ttl = budget.spend_ttl_s(b.period, now)
                args.append("" if ttl is None else ttl)
                order.append(b.id)
            for subject in s.subjects:
                keys += [self.tpd_key(subject, day), self.flight_key(subject)]
        return keys, args, order


def resp_address(client: Redis | RedisCluster) -> Address | None:
    """Where a plain client's one server is (TCP or unix socket, no TLS, not found through
    sentinels), for the scripts' own connection; None for any other client."""
    if not isinstance(client, Redis):
        return None
    pool = client.connection_pool
    kind = pool.connection_class
    if type(pool) is not ConnectionPool or kind not in (Connection, UnixDomainSocketConnection):
        return None
    kw = pool.connection_kwargs
    timeout = kw.get("socket_timeout")
    return Address(
        host=kw.get("host", "127.0.0.1"),
        port=int(kw.get("port", 6379)),
        path=kw.get("path") if kind is UnixDomainSocketConnection else None,
        db=int(kw.get("db", 0) or 0),
        username=kw.get("username"),
        password=kw.get("password"),
        timeout_s=float(timeout) if timeout else RESP_TIMEOUT_S,
    )


def _in_request(g: Group, refused: tuple[str, int] | None) -> tuple[str, int] | None:
    """A group's refusal with its index turned into the request's."""
    if refused is None:
        return None
    kind, local = refused
    return kind, (g.budgets if kind == admission.BUDGET else g.subjects)[local]
