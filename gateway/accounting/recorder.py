"""What an API request cost and how it ended: request-log row, metrics, quota charge, log line.
Everything here runs after the answer, and nothing here waits on the database."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from .. import logs
from ..access.auth import Principal
from ..access.governance import Scope
from ..config import ModelConfig, Prices
from ..limits import RateLimiter, Settlement
from ..metrics import Metrics
from ..routing import Target
from ..store import MessageRow, RequestLogRow
from ..store.writer import Writer
from .tokens import Usage, estimate_prompt_tokens, text_parts

log = logging.getLogger("gateway.requests")

MILLION = Decimal(1_000_000)
NANO = Decimal("0.000000001")


def cost_usd(prices: Prices | None, usage: Usage | None) -> Decimal:
    """Every token kind at its own price (USD per million tokens), the tier chosen by the whole
    input; exact to 1e-9 USD. Reasoning tokens are output tokens."""
    if prices is None or usage is None:
        return Decimal(0)
    n = usage.prompt_tokens
    writes_5m = usage.cache_write_tokens - usage.cache_write_1h_tokens
    fresh = n - usage.cached_tokens - usage.cache_write_tokens
    total = (
        fresh * prices.input.at(n)
        + usage.cached_tokens * prices.cached_input.at(n)
        + writes_5m * prices.cache_write.at(n)
        + usage.cache_write_1h_tokens * prices.cache_write_1h.at(n)
        + usage.completion_tokens * prices.output.at(n)
    )
    return (total / MILLION).quantize(NANO)


@dataclass(slots=True)
class Outcome:
    """Everything known about one authenticated API request by the time it ends."""

    request_id: str
    principal: Principal
    endpoint: str = "chat"
    # Names the request's budget reservation. Made here, never the client's X-Request-Id: two
    # requests sharing one id would otherwise share (and replace) one reservation.
    reservation_id: str = field(default_factory=lambda: f"r{random.getrandbits(128):032x}")
    model: str = ""
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "ok"
    status_code: int = 200
    route_model: ModelConfig | None = None  # the public model's entry
    route_prices: Prices | None = None  # what applies until a deployment answers
    target: Target | None = None
    attempts: int = 0
    usage: Usage | None = None
    first_byte_at: float | None = None
    session_id: str | None = None
    error: str | None = None
    answer: str = ""
    new_messages: list[dict[str, Any]] = field(default_factory=list)
    scope: Scope | None = None  # set once admitted: the request is then settled when it ends
    team: str | None = None
    tags: tuple[str, ...] = ()
    cache_hit: bool = False  # answered from the response cache: `usage` is what it saved

    @property
    def billed(self) -> Usage | None:
        """The usage the request is charged for: none for a cache hit."""
        return None if self.cache_hit else self.usage

    @property
    def prices(self) -> Prices | None:
        """The serving deployment's prices, else the route's first deployment's."""
        return self.target.prices if self.target is not None else self.route_prices

    @property
    def cost(self) -> Decimal:
        return cost_usd(self.prices, self.billed)

    def cache_savings(self, cost: Decimal) -> Decimal:
        """The cost had every input token been fresh input, less `cost` (the actual one)."""
        usage = self.billed
        if usage is None or not (usage.cached_tokens or usage.cache_write_tokens):
            return Decimal(0)
        plain = Usage(usage.prompt_tokens, usage.completion_tokens)
        return cost_usd(self.prices, plain) - cost


def log_row(o: Outcome, ended: float, cost: Decimal) -> RequestLogRow:
    """The request-log row of an ended request (`ended` on the perf_counter clock)."""
    usage = o.billed or Usage()
    saved = o.usage if o.cache_hit and o.usage is not None else Usage()
    target = o.target
    return RequestLogRow(
        request_id=o.request_id,
        uid=o.principal.user,
        key_id=o.principal.key_id,
        model=o.model,
        provider=target.provider.name if target else None,
        upstream_model=target.upstream_model if target else None,
        stream=o.stream,
        status=o.status,
        status_code=o.status_code,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        usage_estimated=usage.estimated,
        cost_usd=cost,
        latency_ms=round((ended - o.started) * 1000),
        ttft_ms=round((o.first_byte_at - o.started) * 1000) if o.first_byte_at else None,
        session_id=o.session_id,
        attempts=o.attempts,
        error=o.error,
        created_at=o.created_at,
        endpoint=o.endpoint,
        team=o.team,
        tags=orjson.dumps(list(o.tags)).decode() if o.tags else None,
        key_metadata=orjson.dumps(o.principal.metadata).decode() if o.principal.metadata else None,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cache_savings_usd=o.cache_savings(cost),
        cache_hit=o.cache_hit,
        cache_saved_tokens=saved.total,
        cache_saved_usd=cost_usd(o.prices, saved) if o.cache_hit else Decimal(0),
    )


def session_turn(o: Outcome) -> list[MessageRow]:
    """The request's new messages, then the answer, as rows of its session."""
    answer_tokens = o.usage.completion_tokens if o.usage else 0
    turn = [
        (
            str(m.get("role")),
            "".join(text_parts(m.get("content"))),
            estimate_prompt_tokens([m]),
            o.created_at,
        )
        for m in o.new_messages
    ]
    turn.append(("assistant", o.answer, answer_tokens, datetime.now(UTC)))
    return [
        MessageRow(
            message_id=f"msg_{uuid.uuid4().hex}",
            session_id=o.session_id or "",
            role=role,
            content=content,
            tokens=tokens,
            model=o.model,
            created_at=at,
        )
        for role, content, tokens, at in turn
    ]


def log_fields(row: RequestLogRow, o: Outcome, with_content: bool) -> dict[str, Any]:
    """The JSON log line of a request: the row's figures, the content only when asked."""
    fields: dict[str, Any] = {
        "request_id": row.request_id,
        "user": row.uid,
        "endpoint": row.endpoint,
        "model": row.model,
        "provider": row.provider,
        "status": row.status,
        "status_code": row.status_code,
        "stream": row.stream,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "usage_estimated": row.usage_estimated,
        "cache_hit": row.cache_hit,
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "attempts": row.attempts,
    }
    if row.error:
        fields["error"] = row.error
    if with_content:
        fields["messages"] = o.new_messages
        fields["answer"] = o.answer
    return fields


class Recorder:
    """Turns Outcomes into a request-log row (queued), metrics, a quota charge and a log line."""

    def __init__(
        self,
        writer: Writer,
        limiter: RateLimiter,
        metrics: Metrics,
        log_content: bool = False,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.writer = writer
        self.limiter = limiter
        self.wall_clock = wall_clock  # settlement's `now`: the budget period charged
        self.metrics = metrics
        self.log_content = log_content
        self._settling: set[asyncio.Task[Any]] = set()
        self._pending: list[Settlement] = []  # settled together, in one limiter round trip
        # Labelled children, made once per label set: `labels()` takes a lock and checks every
        # value on each call. Made lazily, so /metrics shows the same series as without it.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def configure(self, log_content: bool) -> None:
        """Whether log lines carry prompts and answers (a config reload may change it)."""
        self.log_content = log_content

    def finish(self, o: Outcome) -> Decimal:
        """Record an ended request; session messages are appended when there is an answer.
        The reservation is settled and the tokens charged even if recording the rest fails.
        Returns the request's cost (computed once: the row's, the settlement's, the trace's)."""
        ended = time.perf_counter()
        cost = o.cost
        try:
            self._record(o, ended, cost)
        except Exception:
            log.exception("recording request %s failed", o.request_id)
        finally:
            if o.scope is not None and not o.cache_hit:  # a hit reserved nothing, owes nothing
                usage = o.usage or Usage()
                tokens = usage.prompt_tokens + usage.completion_tokens
                scope = o.scope
                self.settle(
                    Settlement(o.reservation_id, scope.subject_ids, scope.budgets, cost, tokens)
                )
        return cost

    def _record(self, o: Outcome, ended: float, cost: Decimal) -> None:
        row = log_row(o, ended, cost)
        self.writer.submit(row)
        if o.session_id and o.answer and o.status in ("ok", "client_closed"):
            for message in session_turn(o):
                self.writer.submit(message)
        self.observe(o, row, ended)
        if log.isEnabledFor(logging.INFO):
            logs.line(log, "request", log_fields(row, o, self.log_content))

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, o: Outcome, row: RequestLogRow, ended: float) -> None:
        """Move the request's metrics."""
        label = o.route_model.name if o.route_model else "unknown"
        provider = row.provider or "none"
        m, child = self.metrics, self._child
        stream = "true" if o.stream else "false"
        child(m.requests, label, provider, o.status, stream, o.endpoint).inc()
        child(m.duration, label, stream).observe(ended - o.started)
        if o.first_byte_at is not None:
            child(m.ttft, label).observe(o.first_byte_at - o.started)
        if row.prompt_tokens or row.completion_tokens:
            for kind, count in (
                ("prompt", row.prompt_tokens),
                ("completion", row.completion_tokens),
                ("cached", row.cached_tokens),
                ("cache_write", row.cache_write_tokens),
                ("reasoning", row.reasoning_tokens),
            ):
                if count or kind in ("prompt", "completion"):
                    child(m.tokens, label, provider, kind).inc(count)
            child(m.cost, label).inc(float(row.cost_usd))

    def settle(self, settlement: Settlement) -> None:
        """Replace the request's reservation by its cost and charge its tokens, off the request
        path; the settlements of one event-loop turn ride one limiter round trip. They are sent
        at once (not lingering for company) so the caller's next request sees its tokens."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(settlement)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self.limiter.settle(batch, self.wall_clock()))
        self._settling.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("settlement failed: %s", task.exception())

    async def drain(self) -> None:
        """Wait for settlements still in flight (at shutdown)."""
        self._flush()
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
