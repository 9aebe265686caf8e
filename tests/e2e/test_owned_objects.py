"""Owned objects (issue 24), through the official SDKs: a relayed response is its owner's alone
(GET, input_items, DELETE and previous_response_id answer anyone else exactly as for a missing
id, before anything goes upstream), a scoped key reads no response of a model outside its list,
and count_tokens is held to the key's model list and its RPM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest

from tests.support.budgets import budget_config, gateways, new_key
from tests.support.clients import sdk
from tests.support.front_door import claude_sdk
from tests.support.gateway import OTHER_KEY, RunningGateway

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def start() -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[RunningGateway]]]:
    async with gateways() as starter:
        yield starter


async def refusals(client: openai.AsyncOpenAI, response_id: str) -> list[tuple[int, str]]:
    """What GET, input_items, a follow-up and DELETE of `response_id` answer: (status, message
    with the id replaced), so a missing id's answers can be compared with these."""
    seen = []
    calls = [
        lambda: client.responses.retrieve(response_id),
        lambda: client.responses.input_items.list(response_id),
        lambda: client.responses.create(
            model="fake-model", input="And?", previous_response_id=response_id
        ),
        lambda: client.responses.delete(response_id),
    ]
    for call in calls:
        with pytest.raises(openai.APIStatusError) as refused:
            await call()
        seen.append((refused.value.status_code, refused.value.message.replace(response_id, "ID")))
    return seen


async def test_a_relayed_response_is_its_owners_alone(backend, upstream, tmp_path, start):
    gateway = await start(budget_config(upstream.base_url, tmp_path, backend))
    async with sdk(gateway) as alice, sdk(gateway, OTHER_KEY) as bob:
        mine = await alice.responses.create(model="fake-model", input="Private")
        sent = len(upstream.received)
        stolen = await refusals(bob, mine.id)
        missing = await refusals(bob, "resp_does_not_exist")
        assert len(upstream.received) == sent, "another user's request went upstream"
        assert stolen == missing
        assert [status for status, _ in stolen] == [404, 404, 400, 404]
        assert (await alice.responses.retrieve(mine.id)).id == mine.id
        follow_up = await alice.responses.create(
            model="fake-model", input="Again", previous_response_id=mine.id
        )
        assert follow_up.previous_response_id == mine.id


async def test_a_scoped_key_reads_no_response_of_a_model_outside_its_list(
    upstream, tmp_path, start
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    echo_only = await new_key(gateway, user="alice", models=["echo"])
    fake_only = await new_key(gateway, user="alice", models=["fake-model"])
    async with sdk(gateway) as alice, sdk(gateway, echo_only) as narrow:
        relayed = await alice.responses.create(model="fake-model", input="Relayed")
        bridged = await alice.responses.create(model="echo", input="Bridged")
        sent = len(upstream.received)
        for call in (narrow.responses.retrieve, narrow.responses.input_items.list):
            with pytest.raises(openai.NotFoundError):
                await call(relayed.id)
        with pytest.raises(openai.BadRequestError) as refused:
            await narrow.responses.create(
                model="echo", input="And?", previous_response_id=relayed.id
            )
        assert refused.value.body["param"] == "previous_response_id"
        assert len(upstream.received) == sent
        assert (await narrow.responses.retrieve(bridged.id)).id == bridged.id
    async with sdk(gateway, fake_only) as other:
        with pytest.raises(openai.NotFoundError):
            await other.responses.retrieve(bridged.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.delete(bridged.id)
    async with sdk(gateway) as alice:
        assert (await alice.responses.retrieve(bridged.id)).id == bridged.id


async def test_count_tokens_is_held_to_the_model_list_and_the_rpm(upstream, tmp_path, start):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    echo_only = await new_key(gateway, user="carl", models=["echo"])
    slow = await new_key(gateway, user="dina", rpm=2)
    async with claude_sdk(gateway, echo_only) as narrow:
        with pytest.raises(anthropic.PermissionDeniedError):
            await narrow.messages.count_tokens(model="fake-model", messages=HELLO)
        assert (await narrow.messages.count_tokens(model="echo", messages=HELLO)).input_tokens
    async with claude_sdk(gateway, slow) as client:
        for _ in range(2):
            await client.messages.count_tokens(model="echo", messages=HELLO)
        with pytest.raises(anthropic.RateLimitError) as refused:
            await client.messages.count_tokens(model="echo", messages=HELLO)
        assert refused.value.response.headers["retry-after"]
        with pytest.raises(anthropic.RateLimitError):
            await client.messages.create(model="echo", max_tokens=10, messages=HELLO)
