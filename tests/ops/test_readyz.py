"""/readyz against private Redis and PostgreSQL servers that the test stops and starts again:
503 naming what is down while it is down, 200 again once it is back, with no traffic needed."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.support.clients import post_chat
from tests.support.gateway import base_config, start_gateway
from tests.support.pgcluster import INITDB

from .servers import REDIS_SERVER, PrivateRedis

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None or not INITDB,
    reason="needs redis-server and PostgreSQL server binaries (/usr/lib/postgresql/*/bin)",
)


@pytest.fixture
async def private_redis():
    server = PrivateRedis()
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.destroy)


async def _until(http, gateway, status: int, timeout_s: float = 20.0) -> dict:
    """Poll /readyz until it answers `status`; its body."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with http.get(f"{gateway.url}/readyz") as resp:
            body = await resp.json()
            if resp.status == status:
                return body
        assert time.monotonic() < deadline, f"/readyz not {status} after {timeout_s}s: {body}"
        await asyncio.sleep(0.2)


async def _chat(http, gateway) -> int:
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    async with post_chat(http, gateway, body) as resp:
        await resp.read()
        return resp.status


async def test_readyz_names_what_is_down_and_recovers(
    upstream, tmp_path, private_redis, private_postgres
):
    mapping = base_config(upstream.base_url, tmp_path)
    mapping["database"]["url"] = private_postgres.url
    mapping["redis"] = {**mapping["redis"], "url": private_redis.url}
    gateway = await start_gateway(mapping)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            body = await _until(http, gateway, 200)
            assert body == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}

            await asyncio.to_thread(private_redis.stop)
            body = await _until(http, gateway, 503)
            assert body["status"] == "unavailable"
            assert body["checks"]["redis"].startswith("down")
            assert body["checks"]["database"] == "ok"
            assert await _chat(http, gateway) == 200  # limits fall back to this process
            await asyncio.to_thread(private_redis.start)
            body = await _until(http, gateway, 200)
            assert body["checks"]["redis"] == "ok"

            await asyncio.to_thread(private_postgres.stop)
            body = await _until(http, gateway, 503)
            assert body["checks"]["database"].startswith("down")
            assert body["checks"]["redis"] == "ok"
            await asyncio.to_thread(private_redis.stop)
            body = await _until(http, gateway, 503)
            assert body["checks"]["database"].startswith("down")
            assert body["checks"]["redis"].startswith("down")

            await asyncio.to_thread(private_postgres.start)
            await asyncio.to_thread(private_redis.start)
            body = await _until(http, gateway, 200)
            assert body["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        await gateway.close()
