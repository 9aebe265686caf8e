"""What one MCP tool call costs and leaves behind: admission against the caller's rpm (a call
spends no tokens and no budget), a request-log row (`endpoint: mcp`), a metric and a log line."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .. import logs
from ..access.auth import Principal
from ..access.governance import Scope
from ..limits import RateLimiter
from ..limits.base import Limits, Subject
from ..metrics import Metrics
from ..store import RequestLogRow
from ..store.writer import Writer

log = logging.getLogger("gateway.mcp")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent one HTTP request to /mcp: the key, its team's tool list and the limits to admit
    its tool calls against (the web layer resolves them per request)."""

    principal: Principal
    team_tools: tuple[str, ...] | None
    scope: Scope
    request_id: str


@dataclass(slots=True)
class ToolCall:
    """One tools/call on its way: who, which tool of which server, and how it ended."""

    caller: Caller
    tool: str  # the public name, `<server>__<tool>`
    server: str | None = None
    upstream_tool: str | None = None
    arguments: Mapping[str, Any] | None = None
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "ok"  # ok | tool_error | rejected | rate_limited | upstream_error
    status_code: int = 200
    error: str | None = None

    def fail(self, status: str, status_code: int, error: str) -> None:
        self.status, self.status_code, self.error = status, status_code, error


@dataclass(frozen=True, slots=True)
class Ledger:
    """The limiter, the request-log writer and the metrics a tool call reaches."""

    limiter: RateLimiter
    writer: Writer
    metrics: Metrics
    log_content: bool
    wall_clock: Callable[[], float] = time.time

    async def admit(self, caller: Caller) -> int | None:
        """Take one request from every rpm bucket of the caller's scope (tokens and budgets
        are not touched: a tool call spends neither); the rpm that refused it, or None."""
        subjects = [
            Subject(s.id, Limits(s.limits.rpm, 0)) for s in caller.scope.subjects if s.limits.rpm
        ]
        if not subjects:
            return None
        reservation = f"m{random.getrandbits(128):032x}"
        decision = await self.limiter.admit_all(
            subjects, (), Decimal(0), reservation, self.wall_clock()
        )
        if decision.allowed:
            return None
        self.metrics.rate_limited.labels("rpm").inc()
        return decision.limits.rpm

    def record(self, call: ToolCall) -> None:
        """The call's request-log row (queued), its metric and its log line (arguments only
        when logging.content is on)."""
        principal = call.caller.principal
        latency_ms = int((time.perf_counter() - call.started) * 1000)
        row = RequestLogRow(
            request_id=call.caller.request_id,
            uid=principal.user,
            key_id=principal.key_id,
            model=call.tool,
            provider=call.server,
            upstream_model=call.upstream_tool,
            stream=False,
            status=call.status,
            status_code=call.status_code,
            prompt_tokens=0,
            completion_tokens=0,
            usage_estimated=False,
            cost_usd=Decimal(0),
            latency_ms=latency_ms,
            ttft_ms=None,
            session_id=None,
            attempts=1,
            error=call.error,
            created_at=call.created_at,
            endpoint="mcp",
            team=call.caller.scope.team.id if call.caller.scope.team else principal.team,
        )
        try:
            self.writer.submit(row)
        except Exception:
            log.exception("recording MCP call %s failed", call.caller.request_id)
        self.metrics.mcp_calls.labels(call.server or "none", call.status).inc()
        if log.isEnabledFor(logging.INFO):
            fields: dict[str, Any] = {
                "request_id": row.request_id,
                "user": row.uid,
                "endpoint": "mcp",
                "tool": call.tool,
                "server": call.server,
                "status": call.status,
                "latency_ms": latency_ms,
            }
            if call.error:
                fields["error"] = call.error
            if self.log_content and call.arguments is not None:
                fields["arguments"] = dict(call.arguments)
            logs.line(log, "mcp call", fields)
