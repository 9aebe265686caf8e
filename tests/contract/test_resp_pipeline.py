"""The limiter's own Redis connection (gateway/limits/resp.py) on real, private redis-servers:
scripts flushed under it, a password and a database, a unix socket, a server that stops
answering, a server killed and started again. Every wait is bounded; nothing is timed."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from decimal import Decimal as USD
from pathlib import Path
from typing import TypeVar

import pytest
from redis.asyncio import Redis

from gateway.config.redis_url import parse_redis_url
from gateway.limits import LimiterUnavailable, Limits, Settlement, Subject
from gateway.limits.redis import RedisLimiter, resp_address
from gateway.limits.resp import RespPipeline
from gateway.redis_clients import open_redis
from tests.support.redis_servers import RedisProcess, _Servers

T = TypeVar("T")
NOW = 1_700_000_000.0
BOUND_S = 10.0
LIMITS = Limits(rpm=5, tpd=0)


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, BOUND_S)


@pytest.fixture
def servers() -> Iterator[_Servers]:
    s = _Servers("gw-resp-")
    try:
        yield s
    finally:
        s.destroy()


@pytest.fixture
async def limiter(servers: _Servers) -> AsyncIterator[tuple[RedisLimiter, Redis, RedisProcess]]:
    server = servers.spawn()
    client = open_redis(parse_redis_url(f"redis://127.0.0.1:{server.port}/0"), timeout_s=2)
    lim = RedisLimiter(client, prefix=f"t{uuid.uuid4().hex[:8]}")
    assert isinstance(lim._pipeline, RespPipeline)  # the plain-server path under test
    try:
        yield lim, client, server
    finally:
        await lim.close()
        await client.aclose()


async def test_scripts_flushed_under_a_burst_are_loaded_again(
    limiter: tuple[RedisLimiter, Redis, RedisProcess],
) -> None:
    lim, client, _ = limiter
    assert (await bounded(lim.admit("warm", LIMITS, NOW))).requests_remaining == 4
    await client.script_flush()
    users = [f"u{i}" for i in range(30)]
    decisions = await bounded(
        asyncio.gather(*(lim.admit(u, LIMITS, NOW) for u in users for _ in range(2)))
    )
    assert all(d.allowed for d in decisions)
    # Each user's two admissions took two tokens from that user's own bucket, in order.
    by_user = [decisions[i : i + 2] for i in range(0, len(decisions), 2)]
    assert [sorted(d.requests_remaining for d in pair) for pair in by_user] == [[3, 4]] * 30
    assert await client.hget(lim.rpm_key("u7"), "tokens") == b"3"


async def test_a_killed_server_fails_the_call_and_a_restarted_one_serves_again(
    limiter: tuple[RedisLimiter, Redis, RedisProcess],
) -> None:
    lim, _, server = limiter
    assert (await bounded(lim.admit("u", LIMITS, NOW))).allowed
    server.kill()
    with pytest.raises(LimiterUnavailable):
        await bounded(lim.admit("u", LIMITS, NOW))
    server.start()  # same port, empty: the scripts are gone too
    decision = await bounded(lim.admit("u", LIMITS, NOW))
    assert decision.allowed and decision.requests_remaining == 4


async def test_password_and_database_from_the_url(servers: _Servers) -> None:
    server = servers.spawn("--requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
    client = open_redis(parse_redis_url(url), timeout_s=2)
    lim = RedisLimiter(client, prefix="p")
    try:
        assert (await bounded(lim.admit("u", LIMITS, NOW))).requests_remaining == 4
        db3 = Redis(port=server.port, password="s3cret", db=3)
        db0 = Redis(port=server.port, password="s3cret", db=0)
        assert await db3.hget("p:{u}:rpm", "tokens") == b"4"
        assert await db0.exists("p:{u}:rpm") == 0
        await db3.aclose()
        await db0.aclose()
    finally:
        await lim.close()
        await client.aclose()
    wrong = open_redis(parse_redis_url(f"redis://:nope@127.0.0.1:{server.port}/0"), timeout_s=2)
    lim = RedisLimiter(wrong, prefix="p")
    try:
        with pytest.raises(LimiterUnavailable):
            await bounded(lim.admit("u", LIMITS, NOW))
    finally:
        await lim.close()
        await wrong.aclose()


async def test_unix_socket(servers: _Servers) -> None:
    sock = servers.root / "redis.sock"
    server = servers.spawn("--unixsocket", str(sock), "--unixsocketperm", "700")
    assert server.port
    client = Redis.from_url(f"unix://{sock}?db=1", socket_timeout=2)
    address = resp_address(client)
    assert address is not None and address.path == str(sock) and address.db == 1
    lim = RedisLimiter(client, prefix="s")
    try:
        assert (await bounded(lim.admit("u", LIMITS, NOW))).requests_remaining == 4
        assert await client.hget("s:{u}:rpm", "tokens") == b"4"
    finally:
        await lim.close()
        await client.aclose()


async def test_a_server_that_stops_answering_fails_the_waiting_calls(tmp_path: Path) -> None:
    # Accepts connections, reads, never answers: a hung server.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []

    async def accept() -> None:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        while True:
            conn, _ = await loop.sock_accept(listener)
            accepted.append(conn)

    acceptor = asyncio.create_task(accept())
    client = Redis(host="127.0.0.1", port=port, socket_timeout=0.2)
    lim = RedisLimiter(client, prefix="h")
    try:
        results = await bounded(
            asyncio.gather(
                *(lim.admit(f"u{i}", LIMITS, NOW) for i in range(5)), return_exceptions=True
            )
        )
        assert all(isinstance(r, LimiterUnavailable) for r in results), results
        assert "no reply" in str(results[0])
    finally:
        acceptor.cancel()
        await lim.close()
        await client.aclose()
        for conn in accepted:
            conn.close()
        listener.close()


def test_other_clients_keep_redis_py() -> None:
    assert resp_address(Redis.from_url("rediss://127.0.0.1:6380/0")) is None
    address = resp_address(Redis.from_url("redis://u:pw@10.0.0.5:6390/2", socket_timeout=0.3))
    assert address is not None
    assert (address.host, address.port, address.db, address.username, address.password) == (
        "10.0.0.5",
        6390,
        2,
        "u",
        "pw",
    )
    assert address.timeout_s == 0.3


async def test_a_lingering_settlement_is_run_before_the_next_admission(
    limiter: tuple[RedisLimiter, Redis, RedisProcess],
) -> None:
    lim, client, _ = limiter
    tight = Limits(rpm=100, tpd=50)
    assert (await bounded(lim.admit_all([Subject("u", tight)], (), USD(0), "r1", NOW))).allowed
    writes = _count_writes(lim)
    # The answer used 50 tokens; its settlement lingers, and the caller's next request comes.
    settling = asyncio.ensure_future(lim.settle([Settlement("r1", ("u",), (), USD(0), 50)], NOW))
    await asyncio.sleep(0)
    refused = await bounded(lim.admit_all([Subject("u", tight)], (), USD(0), "r2", NOW))
    assert not refused.allowed and refused.refused_by == "tpd"
    assert (await bounded(settling)) == {}
    assert writes == [2]  # the settlement and the admission: one write
    assert await client.get(lim.tpd_key("u", "20231114")) == b"50"


async def test_closing_sends_the_settlements_that_linger(
    limiter: tuple[RedisLimiter, Redis, RedisProcess],
) -> None:
    lim, client, _ = limiter
    assert (await bounded(lim.admit("u", LIMITS, NOW))).allowed
    settling = asyncio.ensure_future(lim.settle([Settlement("r1", ("u",), (), USD(0), 7)], NOW))
    await asyncio.sleep(0)
    await bounded(lim.close())
    assert (await bounded(settling)) == {}
    assert await client.get(lim.tpd_key("u", "20231114")) == b"7"


def _count_writes(lim: RedisLimiter) -> list[int]:
    """The number of commands in each write the limiter's connection makes from now on."""
    pipe = lim._pipeline
    assert isinstance(pipe, RespPipeline) and pipe.transport is not None
    transport, writes = pipe.transport, []
    original = transport.write

    def write(data: bytes | bytearray | memoryview) -> None:
        writes.append(bytes(data).count(b"EVALSHA"))
        original(data)

    transport.write = write  # type: ignore[method-assign]
    return writes
