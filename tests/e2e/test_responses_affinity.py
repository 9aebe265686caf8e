"""Response-id affinity (SPEC 8): a model served by two `openai` deployments of equal weight (two
fake upstreams, which answer 404 to response ids they never made). Every follow-up — a request
with previous_response_id, GET, input_items, DELETE — must reach the deployment that made the
response: in one process (`memory://`), and across two `gateway serve` processes sharing one
Redis and one PostgreSQL (first request to one process, follow-ups to the other)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from tests.support.clients import Reachable, sdk
from tests.support.databases import REDIS_URL, delete_redis_keys
from tests.support.gateway import USER_KEY, base_config, start_gateway
from tests.support.serve import ServeProcess
from tests.support.upstream import FakeUpstream

FIRST_REQUESTS = 20
NAMES = ("alpha", "beta")


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeUpstream]]:
    started = {name: await FakeUpstream(name).start() for name in NAMES}
    yield started
    for fake in started.values():
        await fake.close()


def with_twin_model(mapping: dict, fakes: dict[str, FakeUpstream]) -> dict:
    """`twin`: one deployment on each fake, equal weights."""
    for name, fake in fakes.items():
        mapping["providers"][name] = {"type": "openai", "base_url": fake.base_url,
                                      "api_key": f"sk-{name}"}  # fmt: skip
    mapping["models"]["twin"] = {
        "deployments": [{"provider": name, "model": "gpt-twin"} for name in NAMES]
    }
    return mapping


async def first_answer(client: openai.AsyncOpenAI, i: int) -> tuple[str, str]:
    """(response id, the fake that made it); every third one streamed."""
    question = f"Question {i}"
    if i % 3:
        response = await client.responses.create(model="twin", input=question)
    else:
        async with client.responses.stream(model="twin", input=question) as stream:
            response = await stream.get_final_response()
    assert response.metadata is not None
    return response.id, response.metadata["upstream"]


async def check_follow_ups(
    first: Reachable, then: Reachable, fakes: dict[str, FakeUpstream]
) -> None:
    """20 first requests through `first`; their follow-ups through `then`."""
    async with sdk(first) as one:
        made = [await first_answer(one, i) for i in range(FIRST_REQUESTS)]
    by_fake = Counter(name for _, name in made)
    assert set(by_fake) == set(NAMES), by_fake  # both deployments served (1 in 2^19 it fails)
    async with sdk(then) as other:
        for i, (response_id, maker) in enumerate(made):
            follow_up = await other.responses.create(
                model="twin", input="And then?", previous_response_id=response_id
            )
            assert follow_up.metadata == {"upstream": maker}, (i, response_id)
            assert follow_up.previous_response_id == response_id

            fetched = await other.responses.retrieve(response_id)
            assert (fetched.id, fetched.metadata) == (response_id, {"upstream": maker})
            items = [item async for item in other.responses.input_items.list(response_id)]
            assert [item.content[0].text for item in items] == [f"Question {i}"]
            await other.responses.delete(response_id)
            with pytest.raises(openai.NotFoundError):  # the maker forgot it: asked of it again
                await other.responses.retrieve(response_id)
    for name, fake in fakes.items():
        follow_ups = [r for r in fake.received if r.body.get("previous_response_id")]
        assert len(follow_ups) == by_fake[name]
        assert all(r.body["model"] == "gpt-twin" for r in fake.received if r.method == "POST")
        assert all(r.headers["Authorization"] == f"Bearer sk-{name}" for r in fake.received)
        # GET, input_items, DELETE and the GET after it, per response it made.
        assert sum(r.method in ("GET", "DELETE") for r in fake.received) == 4 * by_fake[name]


async def test_follow_ups_reach_the_deployment_in_one_process(fakes, tmp_path):
    mapping = with_twin_model(base_config(fakes["alpha"].base_url, tmp_path), fakes)
    gateway = await start_gateway(mapping)
    try:
        await check_follow_ups(gateway, gateway, fakes)
    finally:
        await gateway.close()


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"gwtest-affinity-{uuid.uuid4().hex[:12]}"
    yield prefix
    await delete_redis_keys([prefix])


async def test_follow_ups_reach_the_deployment_across_serve_processes(
    postgres_url, redis_prefix, processes, fakes, tmp_path: Path
):
    # postgres_url is set up first, so the processes are stopped before the database is dropped.
    for name in ("one", "two"):
        mapping = with_twin_model(base_config(fakes["alpha"].base_url, tmp_path), fakes)
        mapping["server"] = {"host": "127.0.0.1", "shutdown_grace_s": 2}
        mapping["database"] = {
            "url": postgres_url,
            "spill_path": str(tmp_path / f"spill-{name}.jsonl"),
            "flush_interval_s": 0.01,
        }
        mapping["redis"] = {"url": REDIS_URL, "prefix": redis_prefix}
        mapping["auth"] = {"keys": [{"key": USER_KEY, "user": "alice", "tier": "pro"}]}
        processes.append(ServeProcess(tmp_path, name, mapping))
    for process in processes:
        process.start()
    await asyncio.gather(*(process.wait_ready() for process in processes))
    await check_follow_ups(processes[0], processes[1], fakes)
