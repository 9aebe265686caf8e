"""The attempt loop without sockets: scripted upstream replies, an injected clock, no real backoff.
Which target each attempt goes to, what counts as a failure, and what a probe leaves behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.adapters.base import Call
from gateway.config import RoutingConfig, parse
from gateway.errors import ProviderError, ProviderTimeout, UpstreamRejected
from gateway.metrics import Metrics
from gateway.proxy.dispatch import DispatchFailed, backoff_s, dispatch
from gateway.proxy.upstream import Upstreams
from gateway.routing import DeploymentHealth, Router, Target

POLICY = RoutingConfig(max_attempts=4, backoff_base_s=0.0, backoff_max_s=0.0)


class ScriptedReply:
    def __init__(self, status: int, body: bytes = b"{}", chunks: tuple[bytes, ...] = ()):
        self.status, self.content_type, self._body, self._chunks = status, "x", body, chunks
        self.retry_after = None
        self.closed = False

    async def read(self) -> bytes:
        return self._body

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    def close(self) -> None:
        self.closed = True


class Scripted:
    """An upstream answering from a script: a status, an exception, or 'hang'."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = 0

    async def send(self, call: Call):
        self.calls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step == "hang":
            await asyncio.sleep(60)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, ScriptedReply):
            return step
        return ScriptedReply(step, chunks=(b"data: 1\n\n",))

    async def close(self) -> None:
        return None


def targets(*names: str) -> tuple[list[Target], dict[str, Target]]:
    providers = {
        n: {"type": "openai", "base_url": "http://x.test/v1", "api_key": "k"} for n in "ab"
    }
    models = {"m": {"deployments": [{"provider": n, "model": "m"} for n in "ab"]}}
    cfg = parse({"providers": providers, "models": models}, "t", {})
    router = Router(cfg, DeploymentHealth(3, 30))
    by_name = {t.provider.name: t for t in router.plan("m", 0.0)}
    return [by_name[n] for n in names], by_name


async def run(plan, upstreams: dict, health: DeploymentHealth, now: float = 0.0, stream=False):
    def call_for(target: Target) -> Call:
        return Call("chat", {}, "r", "m", target.upstream_model, stream=stream)

    return await dispatch(
        plan, call_for, Upstreams(upstreams), health, POLICY, Metrics(), clock=lambda: now
    )


def test_backoff_doubles_and_is_capped():
    policy = RoutingConfig(backoff_base_s=0.05, backoff_max_s=0.3)
    assert [backoff_s(policy, n) for n in range(1, 6)] == [0.05, 0.1, 0.2, 0.3, 0.3]


async def test_first_success_wins_and_counts_attempts():
    plan, _ = targets("a", "b")
    a, b = Scripted(503), Scripted(200)
    answer = await run(plan, {"a": a, "b": b}, DeploymentHealth(3, 30), stream=True)
    assert (answer.target.provider.name, answer.attempts, answer.first_chunk) == (
        "b",
        2,
        b"data: 1\n\n",
    )
    assert (a.calls, b.calls) == (1, 1)


async def test_a_deployment_that_starts_cooling_mid_request_is_passed_over():
    plan, _ = targets("a", "a", "b")
    a, b = Scripted(503), Scripted(200)
    health = DeploymentHealth(1, 30)
    answer = await run(plan, {"a": a, "b": b}, health)
    assert (answer.target.provider.name, answer.attempts, a.calls) == ("b", 2, 1)


async def test_a_deployment_probed_by_another_request_is_passed_over():
    plan, _ = targets("a", "b")
    health = DeploymentHealth(1, 30)
    health.failure("a/m", 0.0)
    health.begin("a/m", 30.0)  # another request's probe in flight
    a, b = Scripted(200), Scripted(200)
    answer = await run(plan, {"a": a, "b": b}, health, now=31.0)
    assert (answer.target.provider.name, a.calls) == ("b", 0)


async def test_cooling_targets_are_still_tried_as_a_last_resort():
    plan, _ = targets("a")
    health = DeploymentHealth(1, 30)
    health.failure("a/m", 0.0)
    answer = await run(plan, {"a": Scripted(200)}, health, now=1.0)
    assert answer.target.provider.name == "a"
    assert health.state("a/m", 1.0) == "healthy", "a success closes it"


async def test_timeouts_skip_the_deployment_for_the_rest_of_the_request():
    plan, _ = targets("a", "a", "a", "b")
    a, b = Scripted(ProviderTimeout("slow")), Scripted(200)
    answer = await run(plan, {"a": a, "b": b}, DeploymentHealth(9, 30))
    assert (a.calls, answer.attempts, answer.target.provider.name) == (1, 2, "b")


async def test_the_last_failure_is_raised_with_attempts_and_target():
    plan, _ = targets("a", "b")
    health = DeploymentHealth(9, 30)
    with pytest.raises(DispatchFailed) as err:
        await run(plan, {"a": Scripted(502), "b": Scripted(ProviderTimeout("slow"))}, health)
    assert isinstance(err.value.error, ProviderTimeout)
    assert err.value.attempts == 2 and err.value.target.provider.name == "b"
    assert health.snapshot(0.0)["a/m"]["last_error"] == "http_502"
    assert health.snapshot(0.0)["b/m"]["last_error"] == "timeout"


async def test_connect_errors_and_empty_streams_are_retried():
    plan, _ = targets("a", "b", "b")
    a = Scripted(ProviderError("Provider `a` failed: ClientConnectorError."))
    b = Scripted(ScriptedReply(200, chunks=()), 200)
    health = DeploymentHealth(9, 30)
    answer = await run(plan, {"a": a, "b": b}, health, stream=True)
    assert (answer.attempts, answer.target.provider.name, b.calls) == (3, "b", 2)
    assert health.snapshot(0.0)["a/m"]["last_error"] == "connect"


async def test_a_4xx_is_raised_at_once_and_ends_a_probe_without_verdict():
    plan, _ = targets("a", "b")
    health = DeploymentHealth(1, 30)
    health.failure("a/m", 0.0)
    b = Scripted(200)
    with pytest.raises(DispatchFailed) as err:
        await run(plan, {"a": Scripted(400), "b": b}, health, now=30.0)
    assert isinstance(err.value.error, UpstreamRejected)
    assert err.value.error.status == 400 and err.value.attempts == 1 and b.calls == 0
    assert health.state("a/m", 30.0) == "half_open", "probe released, state unchanged"


async def test_a_cancelled_probe_is_released():
    plan, _ = targets("a")
    health = DeploymentHealth(1, 30)
    health.failure("a/m", 0.0)
    task = asyncio.create_task(run(plan, {"a": Scripted("hang")}, health, now=30.0))
    await asyncio.sleep(0.01)
    assert health.state("a/m", 30.0) == "probing"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert health.state("a/m", 30.0) == "half_open"
