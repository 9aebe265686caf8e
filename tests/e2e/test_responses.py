"""POST /v1/responses through the openai SDK (SPEC 8). An `openai` provider (the fake) gets the
bytes relayed unchanged, billed from the Response's own usage; `echo` and a fake Anthropic are
bridged through chat, their answers stored by the gateway for GET/DELETE/input_items and replayed
as history for previous_response_id. Affinity across deployments: test_responses_affinity.py."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import openai
import orjson
import pytest

from gateway.accounting.tokens import estimate_tokens
from tests.support.clients import bearer, sdk
from tests.support.fake_anthropic import Tool
from tests.support.front_door import PROVIDER_KEY
from tests.support.gateway import OTHER_KEY, USER_KEY, base_config, start_gateway
from tests.support.logrows import log_rows, rows_when
from tests.support.upstream import wait_for

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
FAKE_PRICE = (11 * Decimal("1.5") + 3 * Decimal("2.0")) / 10**6  # the fake's 11 + 3 tokens
# (model, its answer to "Hello bridge", its usage: echo counts its own; Anthropic's is 25 input
# + 4 cache-creation + 10 cache-read tokens in, 12 out).
BRIDGED = [("echo", "Hello bridge", None), ("claude-sonnet", "Hello from Claude", (39, 12))]


@pytest.fixture
async def gateway(claude, upstream, tmp_path):
    config = base_config(upstream.base_url, tmp_path)
    config["providers"]["claude"] = {
        "type": "anthropic", "base_url": claude.base_url, "api_key": PROVIDER_KEY
    }  # fmt: skip
    config["models"]["claude-sonnet"] = {
        "provider": "claude",
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "input_price": 3,
        "output_price": 15,
    }
    running = await start_gateway(config)
    yield running
    await running.close()


def post_responses(http: aiohttp.ClientSession, gateway, body: dict):
    return http.post(f"{gateway.url}/v1/responses", json=body, headers=bearer(USER_KEY))


def text_deltas(stream: bytes) -> str:
    """The output_text deltas of the whole events in a (possibly cut) Responses stream."""
    out = []
    for line in stream.split(b"\n"):
        if line.startswith(b"data: "):
            try:
                event = orjson.loads(line[6:])
            except orjson.JSONDecodeError:
                continue  # the last line of a cut stream
            if event["type"] == "response.output_text.delta":
                out.append(event["delta"])
    return "".join(out)


def assert_billed_from_upstream(row: dict, stream: bool) -> None:
    assert (row["endpoint"], row["status"], row["stream"]) == ("responses", "ok", int(stream))
    assert (row["provider"], row["upstream_model"]) == ("fake", "upstream-model")
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (11, 3, 0)
    assert Decimal(row["cost_usd"]) == FAKE_PRICE


# -- openai: relayed unchanged ----------------------------------------------------------------


async def test_relayed_response_is_the_upstream_body(client, gateway, upstream):
    raw = await client.responses.with_raw_response.create(
        model="fake-model", input="Hi there", instructions="Be brief.", max_output_tokens=50
    )
    assert raw.content == upstream.answered[-1]
    response = raw.parse()
    assert response.output_text == "Hello from upstream"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 3)
    sent = upstream.received[-1]
    assert sent.path == "/v1/responses"
    assert sent.headers["Authorization"] == "Bearer sk-upstream-secret"
    assert sent.body == {"model": "upstream-model", "input": "Hi there",
                         "instructions": "Be brief.", "max_output_tokens": 50}  # fmt: skip
    [row] = await log_rows(gateway)
    assert_billed_from_upstream(row, stream=False)


async def test_relayed_stream_through_the_event_iterator(client, gateway, upstream):
    stream = await client.responses.create(model="fake-model", input="Hi", stream=True)
    events = [event async for event in stream]
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["Hello", " from", " upstream"]
    assert events[-1].response.usage.output_tokens == 3

    async with aiohttp.ClientSession() as http:
        body = {"model": "fake-model", "input": "Hi", "stream": True}
        async with post_responses(http, gateway, body) as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert await resp.read() == upstream.streamed[-1]
    rows = await rows_when(gateway, 2)
    assert len(rows) == 2
    for row in rows:
        assert_billed_from_upstream(row, stream=True)


async def test_relayed_stream_through_the_stream_helper(client, gateway, upstream):
    upstream.behaviour.split = 37  # events arrive cut anywhere
    async with client.responses.stream(model="fake-model", input="Hi") as stream:
        final = await stream.get_final_response()
    assert final.output_text == "Hello from upstream" and final.status == "completed"
    assert final.metadata == {"upstream": "fake"}
    [row] = await rows_when(gateway, 1)
    assert_billed_from_upstream(row, stream=True)


async def test_a_stream_without_response_completed_is_not_billed_as_complete(gateway, upstream):
    upstream.behaviour.stop_before_completed = True
    async with aiohttp.ClientSession() as http:
        body = {"model": "fake-model", "input": "Hi", "stream": True}
        async with post_responses(http, gateway, body) as resp:
            got = await resp.read()
    assert got == upstream.streamed[-1] and b"response.completed" not in got
    [row] = await rows_when(gateway, 1)
    assert (row["endpoint"], row["status"], row["usage_estimated"]) == (
        "responses", "upstream_error", 1
    )  # fmt: skip
    assert row["completion_tokens"] == estimate_tokens("Hello from upstream")
    assert row["prompt_tokens"] != 11  # an estimate, not a usage upstream never sent


async def test_a_client_that_disconnects_is_recorded_with_what_it_was_sent(gateway, upstream):
    b = upstream.behaviour
    b.pieces = [f" word{i}" for i in range(40)]
    b.split, b.chunk_delay_s = 64, 0.05  # several seconds of stream in small pieces
    full = "".join(b.pieces)
    async with aiohttp.ClientSession() as http:
        body = {"model": "fake-model", "input": "Count", "stream": True}
        async with post_responses(http, gateway, body) as resp:
            seen = b""
            while not text_deltas(seen):
                chunk = await resp.content.readany()
                assert chunk, "the stream ended before its first delta"
                seen += chunk
            resp.close()  # hang up mid-answer
    [row] = await rows_when(gateway, 1)
    assert (row["endpoint"], row["status"]) == ("responses", "client_closed")
    assert row["status_code"] == 499
    assert row["usage_estimated"] == 1 and row["prompt_tokens"] > 0
    assert await wait_for(lambda: upstream.cancelled == 1)  # the upstream request was dropped
    relayed_at_least = estimate_tokens(text_deltas(seen))
    upstream_sent = estimate_tokens(text_deltas(upstream.streamed[-1]))
    assert 1 <= relayed_at_least <= row["completion_tokens"] <= upstream_sent
    assert row["completion_tokens"] < estimate_tokens(full)


async def test_function_tools_over_two_turns_with_previous_response_id(client, gateway, upstream):
    upstream.behaviour.tool_call = {
        "name": "get_weather", "arguments": '{"city":"Paris"}', "call_id": "call_1"
    }  # fmt: skip
    first = await client.responses.create(
        model="fake-model", input="Weather in Paris?", tools=[WEATHER]
    )
    [message, call] = first.output
    assert message.type == "message"
    assert (call.type, call.name, call.call_id) == ("function_call", "get_weather", "call_1")
    upstream.behaviour.tool_call = None
    upstream.behaviour.text = "21C and sunny"
    second = await client.responses.create(
        model="fake-model",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "21C"}],
        tools=[WEATHER],
    )
    assert second.output_text == "21C and sunny" and second.previous_response_id == first.id
    sent = upstream.received[-1].body
    assert sent["previous_response_id"] == first.id  # the fake answers 404 to ids it never made
    assert sent["input"] == [{"type": "function_call_output", "call_id": "call_1", "output": "21C"}]
    rows = await log_rows(gateway)
    assert len(rows) == 2
    for row in rows:
        assert_billed_from_upstream(row, stream=False)


# -- bridged through chat: echo and Anthropic -------------------------------------------------


@pytest.mark.parametrize(("model", "answer", "usage"), BRIDGED)
async def test_bridged_response(client, gateway, model, answer, usage):
    response = await client.responses.create(
        model=model, input="Hello bridge", instructions="Be brief.", max_output_tokens=100
    )
    assert response.output_text == answer and response.status == "completed"
    assert response.id.startswith("resp_") and response.model == model
    assert response.instructions == "Be brief."
    tokens = (response.usage.input_tokens, response.usage.output_tokens)
    assert usage is None or tokens == usage
    [row] = await log_rows(gateway)
    assert (row["endpoint"], row["status"], row["usage_estimated"]) == ("responses", "ok", 0)
    assert (row["prompt_tokens"], row["completion_tokens"]) == tokens


async def test_bridged_request_reaches_anthropic_translated(client, claude):
    await client.responses.create(
        model="claude-sonnet", input="Hello", instructions="Be brief.", max_output_tokens=100
    )
    sent = claude.received[-1]
    assert sent.headers["x-api-key"] == PROVIDER_KEY and "Authorization" not in sent.headers
    body = sent.body
    assert body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == 100
    assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert body["messages"] in (
        [{"role": "user", "content": "Hello"}],
        [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    )


@pytest.mark.parametrize(("model", "answer", "usage"), BRIDGED)
async def test_bridged_stream_events(client, gateway, model, answer, usage):
    stream = await client.responses.create(model=model, input="Hello bridge", stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert text == answer and final.output_text == answer
    assert final.id == events[0].response.id
    tokens = (final.usage.input_tokens, final.usage.output_tokens)
    assert usage is None or tokens == usage
    [row] = await rows_when(gateway, 1)
    assert (row["endpoint"], row["stream"], row["status"]) == ("responses", 1, "ok")
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (*tokens, 0)


async def test_bridged_function_tools_replay_the_stored_turn(client, gateway, claude):
    claude.script.pieces = ["Let me check."]
    claude.script.tool = Tool()
    async with client.responses.stream(
        model="claude-sonnet", input="Weather in Paris?", instructions="Use tools.",
        tools=[WEATHER],
    ) as stream:  # fmt: skip
        first = await stream.get_final_response()
    message, call = first.output
    assert message.content[0].text == "Let me check."
    assert (call.type, call.name, call.call_id) == ("function_call", "get_weather",
                                                    "toolu_01FakeWeather")  # fmt: skip
    assert orjson.loads(call.arguments) == {"city": "Paris", "days": 3}

    claude.script.pieces, claude.script.tool = ["21C in Paris."], None
    second = await client.responses.create(
        model="claude-sonnet",
        previous_response_id=first.id,
        instructions="Use tools.",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "21C"}],
        tools=[WEATHER],
    )
    assert second.output_text == "21C in Paris."
    sent = claude.received[-1].body
    assert sent["system"] in ("Use tools.", [{"type": "text", "text": "Use tools."}])
    question, answer, result = sent["messages"]
    assert question["role"] == "user" and "Weather in Paris?" in orjson.dumps(question).decode()
    assert answer["role"] == "assistant"
    assert [b for b in answer["content"] if b["type"] != "text"] == [
        {"type": "tool_use", "id": "toolu_01FakeWeather", "name": "get_weather",
         "input": {"city": "Paris", "days": 3}}
    ]  # fmt: skip
    assert {"type": "text", "text": "Let me check."} in answer["content"]
    assert result["role"] == "user"
    [tool_result] = result["content"]
    assert tool_result["type"] == "tool_result"
    assert tool_result["tool_use_id"] == "toolu_01FakeWeather"
    assert tool_result["content"] in ("21C", [{"type": "text", "text": "21C"}])
    rows = await rows_when(gateway, 2)
    assert [(r["endpoint"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        ("responses", 39, 12)
    ] * 2


async def test_stored_bridged_response_get_input_items_delete(client):
    created = await client.responses.create(
        model="echo",
        input=[
            {"role": "user", "content": "First question"},
            {"role": "assistant", "content": "First answer"},
            {"role": "user", "content": [{"type": "input_text", "text": "Second question"}]},
        ],
    )
    assert created.output_text == "Second question"
    fetched = await client.responses.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()

    newest_first = [item async for item in client.responses.input_items.list(created.id)]
    oldest_first = [
        item async for item in client.responses.input_items.list(created.id, order="asc")
    ]
    assert [i.id for i in newest_first] == [i.id for i in reversed(oldest_first)]
    assert len({i.id for i in oldest_first}) == 3
    assert [(i.type, i.role) for i in oldest_first] == [
        ("message", "user"), ("message", "assistant"), ("message", "user")
    ]  # fmt: skip
    assert oldest_first[2].content[0].text == "Second question"

    await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_items.list(created.id)


async def test_previous_response_id_of_an_unstored_response_is_refused(client):
    unstored = await client.responses.create(model="echo", input="Not kept", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(unstored.id)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="echo", input="And then?", previous_response_id=unstored.id
        )
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.body["param"] == "previous_response_id"


async def test_a_stored_response_is_its_owners_alone(client, gateway):
    mine = await client.responses.create(model="echo", input="Private")
    async with sdk(gateway, OTHER_KEY) as bob:
        with pytest.raises(openai.NotFoundError):
            await bob.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.input_items.list(mine.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.delete(mine.id)
        with pytest.raises(openai.BadRequestError):
            await bob.responses.create(model="echo", input="Hi", previous_response_id=mine.id)
    assert (await client.responses.retrieve(mine.id)).output_text == "Private"
    follow_up = await client.responses.create(
        model="echo", input="Again", previous_response_id=mine.id
    )
    assert follow_up.output_text == "Again"
