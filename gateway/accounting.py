"""What a chat request cost and how it ended: request-log row, metrics, quota charge, log line.
Everything here runs after the answer, and nothing here waits on the database."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .auth import Principal
from .config import ModelConfig
from .limits import RateLimiter
from .metrics import Metrics
from .routing import Target
from .store import MessageRow, RequestLogRow
from .store.writer import Writer
from .tokens import Usage, text_parts

log = logging.getLogger("gateway.requests")

MILLION = Decimal(1_000_000)
NANO = Decimal("0.000000001")


def cost_usd(model: ModelConfig | None, usage: Usage | None) -> Decimal:
    """Prices are USD per million tokens; exact to 1e-9 USD."""
    if model is None or usage is None:
        return Decimal(0)
    total = usage.prompt_tokens * model.input_price + usage.completion_tokens * model.output_price
    return (total / MILLION).quantize(NANO)


@dataclass(slots=True)
class Outcome:
    """Everything known about one authenticated chat request by the time it ends."""

    request_id: str
    principal: Principal
    model: str
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "ok"
    status_code: int = 200
    route_model: ModelConfig | None = None  # whose prices apply
    target: Target | None = None
    attempts: int = 0
    usage: Usage | None = None
    first_byte_at: float | None = None
    session_id: str | None = None
    error: str | None = None
    answer: str = ""
    new_messages: list[dict] = field(default_factory=list)


class Recorder:
    """Turns Outcomes into a request-log row (queued), metrics, a quota charge and a log line."""

    def __init__(
        self, writer: Writer, limiter: RateLimiter, metrics: Metrics, log_content: bool = False
    ):
        self.writer = writer
        self.limiter = limiter
        self.metrics = metrics
        self.log_content = log_content
        self._charges: set[asyncio.Task] = set()
        # Labelled children, made once per label set: `labels()` takes a lock and checks every
        # value on each call. Made lazily, so /metrics shows the same series as without it.
        self._children: dict[tuple, Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def finish(self, o: Outcome, message_tokens: list[int] | None = None) -> None:
        """Record an ended request; session messages are appended when there is an answer."""
        latency = time.perf_counter() - o.started
        ttft = (o.first_byte_at - o.started) if o.first_byte_at is not None else None
        target = o.target
        priced = target.model if target is not None else o.route_model
        cost = cost_usd(priced, o.usage)
        usage = o.usage or Usage()
        provider = target.provider.name if target else None
        self.writer.submit(
            RequestLogRow(
                request_id=o.request_id,
                uid=o.principal.user,
                key_id=o.principal.key_id,
                model=o.model,
                provider=provider,
                upstream_model=target.upstream_model if target else None,
                stream=o.stream,
                status=o.status,
                status_code=o.status_code,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                usage_estimated=usage.estimated,
                cost_usd=cost,
                latency_ms=round(latency * 1000),
                ttft_ms=round(ttft * 1000) if ttft is not None else None,
                session_id=o.session_id,
                attempts=o.attempts,
                error=o.error,
                created_at=o.created_at,
            )
        )
        if o.session_id and o.answer and o.status in ("ok", "client_closed"):
            self._append_turn(o, message_tokens or [])
        label = o.route_model.name if o.route_model else "unknown"
        provider_label = provider or "none"
        m = self.metrics
        stream = "true" if o.stream else "false"
        child = self._child
        child(m.requests, label, provider_label, o.status, stream).inc()
        child(m.duration, label, stream).observe(latency)
        if ttft is not None:
            child(m.ttft, label).observe(ttft)
        if usage.total:
            child(m.tokens, label, provider_label, "prompt").inc(usage.prompt_tokens)
            child(m.tokens, label, provider_label, "completion").inc(usage.completion_tokens)
            child(m.cost, label).inc(float(cost))
            task = asyncio.get_running_loop().create_task(
                self.limiter.add_tokens(o.principal.user, usage.total, time.time())
            )
            self._charges.add(task)
            task.add_done_callback(self._charged)
        fields = {
            "request_id": o.request_id,
            "user": o.principal.user,
            "model": o.model,
            "provider": provider,
            "status": o.status,
            "status_code": o.status_code,
            "stream": o.stream,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "usage_estimated": usage.estimated,
            "latency_ms": round(latency * 1000, 2),
            "ttft_ms": round(ttft * 1000, 2) if ttft is not None else None,
            "attempts": o.attempts,
        }
        if o.error:
            fields["error"] = o.error
        if self.log_content:
            fields["messages"] = o.new_messages
            fields["answer"] = o.answer
        log.info("request", extra={"fields": fields})

    def _append_turn(self, o: Outcome, message_tokens: list[int]) -> None:
        """The request's new messages, then the answer, as rows of the session."""
        answer_tokens = o.usage.completion_tokens if o.usage else 0
        turn = [
            (str(m.get("role")), "".join(text_parts(m.get("content"))), tokens, o.created_at)
            for m, tokens in zip(o.new_messages, message_tokens, strict=False)
        ]
        turn.append(("assistant", o.answer, answer_tokens, datetime.now(UTC)))
        for role, content, tokens, at in turn:
            self.writer.submit(
                MessageRow(
                    message_id=f"msg_{uuid.uuid4().hex}",
                    session_id=o.session_id or "",
                    role=role,
                    content=content,
                    tokens=tokens,
                    model=o.model,
                    created_at=at,
                )
            )

    def _charged(self, task: asyncio.Task) -> None:
        self._charges.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("quota charge failed: %s", task.exception())

    async def drain(self) -> None:
        """Wait for quota charges still in flight (at shutdown)."""
        if self._charges:
            await asyncio.gather(*self._charges, return_exceptions=True)
