"""The attempt loop: try a route's targets in order until one answers, before any byte is relayed.
Retries connect errors, timeouts, 429 and 5xx with capped backoff; other 4xx return at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .config import RoutingConfig
from .errors import GatewayError, ProviderError, ProviderTimeout, UpstreamRejected
from .metrics import Metrics
from .routing import DeploymentHealth, Target
from .upstream import Reply, Upstreams


@dataclass(slots=True)
class Answer:
    """A target that answered: a whole body (non-stream) or the first chunk and the rest."""

    target: Target
    reply: Reply
    attempts: int
    body: bytes = b""
    first_chunk: bytes = b""
    rest: AsyncIterator[bytes] | None = None


def _reason(error: GatewayError) -> str:
    if isinstance(error, ProviderTimeout):
        return "timeout"
    if isinstance(error, UpstreamRejected):
        return f"http_{error.status}"
    return "connect" if "failed" in error.message else "http_5xx"


def _retryable(error: GatewayError) -> bool:
    if isinstance(error, UpstreamRejected):
        return error.status == 429
    return isinstance(error, ProviderError | ProviderTimeout)


async def _try(
    target: Target, upstreams: Upstreams, payload: dict, request_id: str, stream: bool
) -> Answer:
    reply = await upstreams[target.provider.name].send(payload, request_id)
    try:
        if reply.status >= 400:
            body = await reply.read()
            if reply.status >= 500:
                raise ProviderError(
                    f"Provider `{target.provider.name}` returned HTTP {reply.status}."
                )
            raise UpstreamRejected(reply.status, body, reply.content_type)
        if not stream:
            return Answer(target, reply, 0, body=await reply.read())
        rest = aiter(reply.chunks())
        try:
            first = await anext(rest)
        except StopAsyncIteration:
            raise ProviderError(
                f"Provider `{target.provider.name}` closed the stream before any data."
            ) from None
        return Answer(target, reply, 0, first_chunk=first, rest=rest)
    except BaseException:
        reply.close()
        raise


async def dispatch(
    targets: list[Target],
    payload_for: Callable[[Target], dict],
    upstreams: Upstreams,
    health: DeploymentHealth,
    policy: RoutingConfig,
    metrics: Metrics,
    request_id: str,
    stream: bool,
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """The first target's answer that arrives whole (or whose stream has begun)."""
    last: GatewayError | None = None
    for attempt, target in enumerate(targets, start=1):
        if attempt > 1:
            delay = min(policy.backoff_max_s, policy.backoff_base_s * 2 ** (attempt - 2))
            await asyncio.sleep(delay)
        try:
            answer = await _try(target, upstreams, payload_for(target), request_id, stream)
        except GatewayError as error:
            error.attempts, error.target = attempt, target
            if isinstance(error, UpstreamRejected) and error.status != 429:
                raise  # the client's problem, not the deployment's
            metrics.upstream_errors.labels(target.provider.name, _reason(error)).inc()
            if health.failure(target.deployment_id, clock()):
                metrics.deployment_cooldown.labels(target.deployment_id).set(1)
            last = error
            if not _retryable(error):
                raise
            continue
        health.success(target.deployment_id)
        metrics.deployment_cooldown.labels(target.deployment_id).set(0)
        answer.attempts = attempt
        return answer
    assert last is not None
    raise last
