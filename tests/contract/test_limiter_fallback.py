"""FallbackLimiter over a real, private redis-server that the test kills and restarts.
Limiter time is injected (`now`, `clock`); only process start-up is waited for, with timeouts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.limits import (
    Decision,
    FallbackLimiter,
    LimiterUnavailable,
    Limits,
    MemoryLimiter,
)
from gateway.limits.redis import RedisLimiter
from tests.support.gateway import free_port

T = TypeVar("T")
NOW = 1_700_000_000.0
TIMEOUT_S = 10.0
LOGGER = "gateway.limits.fallback"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value


async def bounded(awaitable: Awaitable[T]) -> T:
    """Every wait in these tests ends, one way or the other, within TIMEOUT_S."""
    return await asyncio.wait_for(awaitable, TIMEOUT_S)


class RedisServer:
    """A throwaway redis-server on a fixed port, without persistence."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the server and return once it logs that it accepts connections."""
        self.process = await asyncio.create_subprocess_exec(
            *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            *("--dir", str(self.workdir)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        output = []
        while True:
            line = await bounded(self.process.stdout.readline())
            if not line:
                raise RuntimeError("redis-server exited:\n" + b"".join(output).decode())
            output.append(line)
            if b"Ready to accept connections" in line:
                return

    async def kill(self) -> None:
        """SIGKILL: the server vanishes without a goodbye, as in a crash."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await bounded(self.process.wait())
        self.process = None


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


async def test_falls_back_while_redis_is_down_and_returns(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    # No retries: the limiter, not the client, decides what happens when Redis is gone.
    client = Redis(
        host="127.0.0.1",
        port=server.port,
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )
    clock = FakeClock()
    limiter = FallbackLimiter(
        RedisLimiter(client, prefix="t"), MemoryLimiter(), retry_every_s=5.0, clock=clock
    )
    limits = Limits(rpm=5, tpd=0)

    async def admit() -> Decision:
        return await bounded(limiter.admit("u", limits, NOW))

    def records() -> list[tuple[int, str]]:
        return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]

    try:
        # Up: the bucket lives in Redis.
        assert (await admit()).requests_remaining == 4
        assert (await admit()).requests_remaining == 3
        assert await bounded(limiter.add_tokens("u", 10, NOW)) == 10
        assert await client.hget("t:{u}:rpm", "tokens") == b"3"
        await bounded(limiter.ping())
        assert not limiter.degraded

        # Down: still admits, against a fresh per-process bucket; warned once.
        await server.kill()
        decision = await admit()
        assert decision.allowed and decision.requests_remaining == 4
        assert limiter.degraded
        assert (await admit()).requests_remaining == 3
        assert await bounded(limiter.add_tokens("u", 10, NOW)) == 10  # process-local count
        with pytest.raises(LimiterUnavailable):
            await bounded(limiter.ping())
        assert [lvl for lvl, _ in records()] == [logging.WARNING]

        # A probe after the interval that still finds Redis down changes nothing.
        clock.value += 5.0
        assert (await admit()).requests_remaining == 2
        assert limiter.degraded and len(records()) == 1

        # Back up, but the next probe is not due yet: still per process.
        await server.start()
        clock.value += 4.9
        assert (await admit()).requests_remaining == 1
        assert limiter.degraded

        # Probe due: back on the (restarted, empty) Redis by itself, logged once.
        clock.value += 0.1
        decision = await admit()
        assert not limiter.degraded
        assert decision.allowed and decision.requests_remaining == 4
        assert await client.hget("t:{u}:rpm", "tokens") == b"4"
        assert (await admit()).requests_remaining == 3
        assert [lvl for lvl, _ in records()] == [logging.WARNING, logging.INFO]
    finally:
        await limiter.close()
        await client.aclose()


class FlakyPrimary(MemoryLimiter):
    """A primary whose backend is down while `down` is set; counts the pings it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.pings = 0

    async def admit(self, user: str, limits: Limits, now: float) -> Decision:
        if self.down:
            raise LimiterUnavailable("down")
        return await super().admit(user, limits, now)

    async def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise LimiterUnavailable("down")


async def test_probes_the_primary_at_most_once_per_interval() -> None:
    primary, clock = FlakyPrimary(), FakeClock()
    limiter = FallbackLimiter(primary, MemoryLimiter(), retry_every_s=5.0, clock=clock)
    limits = Limits(rpm=100, tpd=0)

    await asyncio.gather(*(limiter.admit("u", limits, NOW) for _ in range(20)))
    assert limiter.degraded and primary.pings == 0
    clock.value += 4.0
    await asyncio.gather(*(limiter.admit("u", limits, NOW) for _ in range(20)))
    assert primary.pings == 0
    clock.value += 1.0
    await asyncio.gather(*(limiter.admit("u", limits, NOW) for _ in range(20)))
    assert primary.pings == 1

    primary.down = False
    clock.value += 5.0
    decision = await limiter.admit("u", limits, NOW)
    assert not limiter.degraded and primary.pings == 2
    assert decision.requests_remaining == 99  # the primary's own, untouched bucket
