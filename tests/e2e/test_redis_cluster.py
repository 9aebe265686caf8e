"""The gateway with `redis.url: redis+cluster://...` (the session's private 3-master Cluster): rpm
enforced across two instances, Responses API follow-ups routed by the response-id affinity kept in
the cluster, and an unreachable cluster making /readyz 503 while chat is limited per process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.config.redis_url import parse_redis_url
from gateway.redis_clients import open_redis
from tests.support.clients import post_chat, sdk
from tests.support.gateway import OTHER_KEY, base_config, free_port, start_gateway
from tests.support.redis_servers import PrivateRedisCluster
from tests.support.upstream import FakeUpstream

ECHO = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    alpha = await FakeUpstream(name="alpha").start()
    beta = await FakeUpstream(name="beta").start()
    yield alpha, beta
    await alpha.close()
    await beta.close()


def config(fakes: tuple[FakeUpstream, FakeUpstream], tmp_path: Path, url: str) -> dict[str, Any]:
    """Alice (tier pro) may send 3 requests a minute, Bob (free) 100; model gpt-x has a
    deployment on each fake."""
    mapping = base_config(fakes[0].base_url, tmp_path)
    mapping["auth"]["keys"][1]["tier"] = "free"
    mapping["redis"] = {"url": url, "prefix": f"gwtest-{uuid.uuid4().hex[:8]}"}
    for fake in fakes:
        mapping["providers"][fake.name] = {
            "type": "openai", "base_url": fake.base_url, "api_key": "sk-upstream",
        }  # fmt: skip
    mapping["models"]["gpt-x"] = {
        "deployments": [{"provider": "alpha", "model": "up"}, {"provider": "beta", "model": "up"}]
    }
    mapping["quota"] = {
        "default_tier": "free",
        "tiers": {"free": {"rpm": 100, "tpd": 0}, "pro": {"rpm": 3, "tpd": 0}},
    }
    return mapping


async def chat_status(http: aiohttp.ClientSession, gateway: Any, key: str | None = None) -> int:
    async with post_chat(http, gateway, ECHO, *([key] if key else [])) as resp:
        await resp.read()
        return resp.status


async def test_two_gateways_on_a_cluster_share_rpm_and_response_affinity(
    redis_cluster: PrivateRedisCluster,
    fakes: tuple[FakeUpstream, FakeUpstream],
    tmp_path: Path,
) -> None:
    mapping = config(fakes, tmp_path, redis_cluster.url)
    first = await start_gateway(mapping)
    own_database = {"url": f"sqlite:///{tmp_path}/second.db", "spill_path": f"{tmp_path}/2.jsonl"}
    second = await start_gateway(mapping, database={**mapping["database"], **own_database})
    try:
        async with aiohttp.ClientSession() as http:
            statuses = [await chat_status(http, gw) for gw in (first, second, first)]
            assert statuses == [200, 200, 200]
            async with post_chat(http, second, ECHO) as refused:
                assert refused.status == 429
                assert refused.headers["x-ratelimit-limit-requests"] == "3"
                assert refused.headers["x-ratelimit-remaining-requests"] == "0"
            assert await chat_status(http, first, OTHER_KEY) == 200  # Bob has his own bucket
            assert (await (await http.get(f"{first.url}/readyz")).json())["checks"]["redis"] == "ok"

        # Responses: made through one gateway, followed up through the other (bob has room).
        async with sdk(first, OTHER_KEY) as via_first, sdk(second, OTHER_KEY) as via_second:
            made = await via_first.responses.create(model="gpt-x", input="one")
            owner = (made.metadata or {})["upstream"]
            for turn in range(6):
                follow = await via_second.responses.create(
                    model="gpt-x", input=f"turn {turn}", previous_response_id=made.id
                )
                assert (follow.metadata or {})["upstream"] == owner
            assert (await via_second.responses.retrieve(made.id)).id == made.id
        # The affinity lives in the cluster, under the response's own hash tag.
        client = open_redis(parse_redis_url(redis_cluster.url), timeout_s=5)
        try:
            stored = await client.get(f"{mapping['redis']['prefix']}:resp:{{{made.id}}}")
        finally:
            await client.aclose()
        # [deployment id, user, key id, model]: the deployment, and whose answer it is
        assert stored is not None
        deployment, user = orjson.loads(stored)[:2]
        assert deployment.startswith(f"{owner}/") and user == "bob"
    finally:
        await second.close()
        await first.close()


async def test_an_unreachable_cluster_is_not_ready_and_chat_is_limited_per_process(
    fakes: tuple[FakeUpstream, FakeUpstream], tmp_path: Path
) -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    gateway = await start_gateway(config(fakes, tmp_path, url))
    try:
        async with aiohttp.ClientSession() as http:
            statuses = [await chat_status(http, gateway) for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            async with http.get(f"{gateway.url}/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["checks"]["redis"].startswith("down")
    finally:
        await gateway.close()
