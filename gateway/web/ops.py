"""Operator routes: /healthz (process alive), /readyz (database and Redis answer), /metrics.
None of them need a key; /metrics speaks Prometheus' text format, summing all workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .keys import SERVICES

CHECK_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves."""
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def _check(probe: Callable[[], Awaitable[object]]) -> str:
    """Return "ok", or "down: <why>" when the probe fails or outlasts CHECK_TIMEOUT_S."""
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except Exception as exc:
        return f"down: {type(exc).__name__}: {exc}"[:200]
    return "ok"


async def readyz(request: web.Request) -> web.Response:
    """200 when the database and Redis answer, else 503 naming what is down."""
    s = request.app[SERVICES]
    checks = {"database": await _check(s.store.ping)}
    # The limiter's own ping also switches it back to Redis once Redis answers again, so a
    # recovered Redis makes the instance ready without waiting for traffic to probe it.
    checks["redis"] = await _check(s.limiter.ping) if s.redis is not None else "ok (memory)"
    if s.limiter.degraded and checks["redis"] == "ok":
        checks["redis"] = "recovering: limits are per process until the next retry"
    ready = all(v.startswith("ok") for v in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return web.Response(
        status=200 if ready else 503, body=orjson.dumps(body), content_type="application/json"
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text: this process, or every worker of `serve --workers N` summed."""
    s = request.app[SERVICES]
    s.metrics.persist_queue_depth.set(s.writer.depth)
    s.metrics.limiter_degraded.set(1 if s.limiter.degraded else 0)
    body = s.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
