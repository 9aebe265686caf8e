"""The attempt loop: try a plan's targets until one answers, always before any byte is relayed.
Retries connect errors, timeouts, 429 and 5xx with capped backoff; other 4xx return at once.

Rules:
- Each attempt goes to the first remaining target of the plan that is usable now (not cooling
  down, not being probed by another request); when none is, to the first remaining one.
- A deployment that timed out is not tried again by the same request (a slow model would only
  make the client wait once more), but its other targets are.
- Before attempt n+1 the loop sleeps min(backoff_max_s, backoff_base_s * 2**(n-1)).
- Every failure of a deployment counts towards its cooldown; a non-429 4xx does not (the client
  sent something the upstream refused; the upstream is alive). `attempts` counts real attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

from ..adapters.base import Call, Reply
from ..config import RoutingConfig
from ..errors import GatewayError, ProviderError, ProviderTimeout, UpstreamRejected
from ..metrics import Metrics
from ..routing import DeploymentHealth, Target
from ..tracing import NO_ATTEMPT, NO_TRACE, AttemptTrace, RequestTrace
from .upstream import Upstreams


@dataclass(slots=True)
class Answer:
    """A target that answered: a whole body (non-stream) or the first chunk and the rest."""

    target: Target
    call: Call
    reply: Reply
    attempts: int
    body: bytes = b""
    first_chunk: bytes = b""
    rest: AsyncIterator[bytes] | None = None
    # The relay calls it when the stream fails after its first byte and before its end marker:
    # the failure counts against the deployment (no wrapper around every chunk to notice it).
    on_broken: Callable[[], None] | None = None
    # The attempt's client span: ended here for a whole body, by the relay for a stream.
    span: AttemptTrace = NO_ATTEMPT
    upstream_s: float = 0.0  # time spent waiting on upstream, every attempt (Server-Timing)


class DispatchFailed(Exception):
    """Every attempt failed (or the first failure was final): the error the client gets, how
    many attempts were made, and the deployment that failed last (None if none was tried)."""

    def __init__(
        self, error: GatewayError, attempts: int, target: Target | None, upstream_s: float = 0.0
    ):
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts
        self.target = target
        self.upstream_s = upstream_s


class _UpstreamStatus(ProviderError):
    """An upstream 5xx: rendered as 502 provider_error, remembered by status for metrics."""

    def __init__(self, provider: str, status: int):
        super().__init__(f"Provider `{provider}` returned HTTP {status}.")
        self.upstream_status = status


class _EmptyStream(ProviderError):
    """A stream that ended before its first byte."""


def _reason(error: GatewayError) -> str:
    """The `reason` label of gateway_upstream_errors_total."""
    if isinstance(error, ProviderTimeout):
        return "timeout"
    if isinstance(error, UpstreamRejected):
        return f"http_{error.status}"
    if isinstance(error, _UpstreamStatus):
        return f"http_{error.upstream_status}"
    if isinstance(error, _EmptyStream):
        return "empty_stream"
    return "connect"


def _upstream_status(error: GatewayError) -> int | None:
    """The HTTP status upstream answered with, if it answered at all."""
    if isinstance(error, _UpstreamStatus):
        return error.upstream_status
    return error.status if isinstance(error, UpstreamRejected) else None


def _retry_after(upstream_value: str | None) -> str:
    """Upstream's Retry-After when it is whole seconds, else 1."""
    if upstream_value and upstream_value.strip().isdigit():
        return str(max(1, int(upstream_value.strip())))
    return "1"


def backoff_s(policy: RoutingConfig, attempts_made: int) -> float:
    """The pause before the next attempt, after `attempts_made` failed ones."""
    return min(policy.backoff_max_s, policy.backoff_base_s * 2.0 ** (attempts_made - 1))


async def _try(target: Target, upstreams: Upstreams, call: Call) -> Answer:
    reply = await upstreams[target.provider.name].send(call)
    try:
        if reply.status >= 400:
            body = await reply.read()
            if reply.status >= 500:
                raise _UpstreamStatus(target.provider.name, reply.status)
            rejected = UpstreamRejected(reply.status, body, reply.content_type)
            if reply.status == 429:  # a 429 always says when to come back
                rejected.headers["Retry-After"] = _retry_after(reply.retry_after)
            raise rejected
        if not call.stream:
            return Answer(target, call, reply, 0, body=await reply.read())
        rest = aiter(reply.chunks())
        try:
            first = await anext(rest)
        except StopAsyncIteration:
            raise _EmptyStream(
                f"Provider `{target.provider.name}` closed the stream before any data."
            ) from None
        return Answer(target, call, reply, 0, first_chunk=first, rest=rest)
    except BaseException:
        reply.close()
        raise


def record_failure(
    health: DeploymentHealth, metrics: Metrics, target: Target, reason: str, now: float
) -> None:
    """Count a failed attempt (before or after the first byte) in metrics and health."""
    metrics.upstream_errors.labels(target.provider.name, reason).inc()
    if health.failure(target.deployment_id, now, reason):
        metrics.deployment_cooldown.labels(target.deployment_id).set(1)


def _broken(
    health: DeploymentHealth, metrics: Metrics, target: Target, clock: Callable[[], float]
) -> None:
    record_failure(health, metrics, target, "mid_stream", clock())


def _next(remaining: list[Target], health: DeploymentHealth, now: float) -> Target:
    for target in remaining:
        if health.usable(target.deployment_id, now):
            return target
    return remaining[0]


async def dispatch(
    targets: list[Target],
    call_for: Callable[[Target], Call],
    upstreams: Upstreams,
    health: DeploymentHealth,
    policy: RoutingConfig,
    metrics: Metrics,
    clock: Callable[[], float] = time.monotonic,
    trace: RequestTrace = NO_TRACE,
) -> Answer:
    """The first target's answer that arrives whole (or whose stream has begun); else raises
    DispatchFailed with the last failure. Each attempt is a client span of `trace`."""
    remaining = list(targets)
    attempts = 0
    waited = 0.0
    last: GatewayError | None = None
    last_target: Target | None = None
    while remaining:
        if attempts:
            await asyncio.sleep(backoff_s(policy, attempts))
        now = clock()
        target = _next(remaining, health, now)
        remaining.remove(target)
        deployment = target.deployment_id
        attempts += 1
        health.begin(deployment, now)
        call = call_for(target)
        span = trace.attempt(target, call, attempts)
        call.trace.update(span.headers)  # a fresh Call per attempt: no copy needed
        began = time.perf_counter()
        try:
            answer = await _try(target, upstreams, call)
        except GatewayError as error:
            waited += time.perf_counter() - began
            span.end(_upstream_status(error), _reason(error))
            if isinstance(error, UpstreamRejected) and error.status != 429:
                health.release(deployment)
                raise DispatchFailed(error, attempts, target, waited) from None  # client's fault
            if not isinstance(error, ProviderError | ProviderTimeout | UpstreamRejected):
                health.release(deployment)  # refused before reaching upstream (bad input)
                raise DispatchFailed(error, attempts, target, waited) from None
            record_failure(health, metrics, target, _reason(error), clock())
            if isinstance(error, ProviderTimeout):
                remaining = [t for t in remaining if t.deployment_id != deployment]
            last, last_target = error, target
            continue
        except BaseException:
            health.release(deployment)  # cancelled (client gone): no verdict on the upstream
            span.end(None, "cancelled")
            raise
        answer.upstream_s = waited + time.perf_counter() - began
        if health.success(deployment):
            metrics.deployment_cooldown.labels(deployment).set(0)
        answer.attempts = attempts
        answer.span = span
        if answer.rest is not None:
            answer.on_broken = partial(_broken, health, metrics, target, clock)
            span.answered(answer.reply.status)
            trace.first_byte()
        else:
            span.end(answer.reply.status)
        return answer
    assert last is not None
    raise DispatchFailed(last, attempts, last_target, waited)
