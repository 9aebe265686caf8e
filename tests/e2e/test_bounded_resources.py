"""Bounded resources (issue 24): a `gateway serve` process closes idle connections and slowloris
request heads after server.idle_timeout_s, answers a body that does not arrive in time with 408,
the echo provider refuses an embeddings request too large to compute on the event loop, and a
key, user or team with max_parallel_requests gets 429 beyond that many requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest

from tests.support.budgets import admin_ok, budget_config, gateways, new_key, until
from tests.support.clients import bearer, sdk
from tests.support.gateway import USER_KEY, base_config
from tests.support.serve import ServeProcess

WAIT_S = 10.0  # a bound on waiting for the server to act, far above the 0.5 s it is given


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServeProcess]:
    mapping = base_config("http://127.0.0.1:9/v1", tmp_path)
    mapping["server"] = {"host": "127.0.0.1", "shutdown_grace_s": 1,
                         "idle_timeout_s": 0.5, "body_timeout_s": 0.5}  # fmt: skip
    process = ServeProcess(tmp_path, "bounded", mapping)
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (reads until EOF) within WAIT_S."""
    try:
        async with asyncio.timeout(WAIT_S):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_idle_connections_and_slow_heads_are_closed(served: ServeProcess) -> None:
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", served.port)
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", served.port)
    slow_writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n")

    async def dribble() -> None:  # one header line at a time, never the end of the head
        for i in range(100):
            await asyncio.sleep(0.1)
            slow_writer.write(f"X-Slow-{i}: x\r\n".encode())
            await slow_writer.drain()

    dribbling = asyncio.create_task(dribble())
    try:
        assert await closed_by_server(idle_reader)
        assert await closed_by_server(slow_reader)
    finally:
        dribbling.cancel()
        for writer in (idle_writer, slow_writer):
            writer.close()


async def test_a_body_that_does_not_arrive_in_time_is_a_408(served: ServeProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {USER_KEY}\r\nContent-Length: 100\r\n\r\n".encode()
        + b'{"model": "echo",'
    )
    try:
        async with asyncio.timeout(WAIT_S):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = orjson.loads(await reader.readexactly(length))
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 408")
    assert body["error"]["code"] == "request_timeout"


async def test_echo_refuses_an_embeddings_request_too_large_to_compute(
    served: ServeProcess,
) -> None:
    async with sdk(served) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.embeddings.create(model="echo", input=["text"] * 2048, dimensions=8192)
        assert refused.value.body["param"] == "input"
        fine = await client.embeddings.create(model="echo", input=["a", "b"], dimensions=8192)
    assert len(fine.data[1].embedding) == 8192


async def stream_open(http: aiohttp.ClientSession, url: str, key: str) -> aiohttp.ClientResponse:
    """A chat stream whose first event has arrived (the rest still coming); or a refusal."""
    body = {"model": "echo", "stream": True,
            "messages": [{"role": "user", "content": "one two three four five six"}]}  # fmt: skip
    resp = await http.post(f"{url}/v1/chat/completions", json=body, headers=bearer(key))
    if resp.status == 200:
        await resp.content.readline()
    return resp


@pytest.mark.parametrize("backend", ["memory", "redis"])
@pytest.mark.parametrize("scope", ["key", "user", "team"])
async def test_requests_in_flight_beyond_max_parallel_requests_are_429(
    upstream, tmp_path, scope, backend
) -> None:
    config = budget_config(upstream.base_url, tmp_path, backend)
    config["providers"]["echo"]["chunk_delay_s"] = 0.3  # a stream stays in flight a while
    async with gateways() as start:
        gateway = await start(config)
        cap = {"max_parallel_requests": 2}
        if scope == "key":
            keys = [await new_key(gateway, user="kai", **cap)] * 3
        elif scope == "user":
            await admin_ok(gateway, "PUT", "/admin/users/uma/quota", cap)
            keys = [await new_key(gateway, user="uma") for _ in range(3)]
        else:
            await admin_ok(gateway, "POST", "/admin/teams", {"id": "squad", **cap})
            keys = [await new_key(gateway, user=f"t{i}", team="squad") for i in range(3)]
        async with aiohttp.ClientSession() as http:
            first = [await stream_open(http, gateway.url, key) for key in keys[:2]]
            refused = await stream_open(http, gateway.url, keys[2])
            assert [r.status for r in first] == [200, 200]
            assert refused.status == 429
            error = (await refused.json())["error"]
            assert error["code"] == "parallel_requests_exceeded"
            assert refused.headers["Retry-After"] == "1"
            for resp in first:
                await resp.read()  # the streams end: their places are free again
                resp.release()
            again = await stream_open(http, gateway.url, keys[2])
            assert again.status == 200
            await again.read()
            again.release()


async def test_two_gateways_on_one_redis_share_the_places_in_flight(upstream, tmp_path) -> None:
    """Two instances on one Redis and one database: a key capped at 2 gets 2 streams in all,
    not 2 on each; a place freed on one instance is free on the other."""
    config = budget_config(upstream.base_url, tmp_path, "redis")
    config["providers"]["echo"]["chunk_delay_s"] = 0.3
    async with gateways() as start:
        one, two = await start(config), await start(config)
        key = await new_key(one, user="kai", max_parallel_requests=2)
        async with aiohttp.ClientSession() as http:

            async def two_knows_the_key() -> bool:
                async with http.get(f"{two.url}/v1/models", headers=bearer(key)) as resp:
                    return resp.status == 200

            await until(two_knows_the_key)  # instance two reads new keys on its next poll
            first = await stream_open(http, one.url, key)
            second = await stream_open(http, two.url, key)
            assert [first.status, second.status] == [200, 200]
            for gateway in (one, two):
                refused = await stream_open(http, gateway.url, key)
                assert refused.status == 429
                assert (await refused.json())["error"]["code"] == "parallel_requests_exceeded"
            await first.read()  # its place (held through instance one) is given back
            first.release()
            again = await stream_open(http, two.url, key)
            assert again.status == 200
            for resp in (second, again):
                await resp.read()
                resp.release()
