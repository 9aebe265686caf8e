"""The Anthropic front door (SPEC 9) driven by the official `anthropic` SDK: relayed byte for byte
to an `anthropic` provider (the fake) and translated for an OpenAI-compatible one and echo, with
count_tokens and billing in the request log. Errors: test_messages_errors.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import anthropic
import orjson
import pytest

from tests.support import fake_anthropic
from tests.support.fake_anthropic import Tool, stream_bytes
from tests.support.front_door import (
    HI,
    OUTPUT,
    PROMPT,
    PROVIDER_KEY,
    UPSTREAM_ID,
    WEATHER,
    ToolCallingUpstream,
    claude_sdk,
    cost,
    events,
    front_door_config,
    post,
)
from tests.support.gateway import USER_KEY, RunningGateway, start_gateway
from tests.support.logrows import log_rows


@pytest.fixture
async def upstream() -> AsyncIterator[ToolCallingUpstream]:
    fake = await ToolCallingUpstream().start()
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(claude, upstream, tmp_path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(front_door_config(claude.base_url, upstream.base_url, tmp_path))
    yield running
    await running.close()


# --- to an `anthropic` provider: relayed --------------------------------------------------------


@pytest.mark.parametrize("style", ["api_key", "auth_token", "x-api-key"])
async def test_the_gateway_key_works_every_way_a_client_sends_it(gateway, claude, style):
    if style == "x-api-key":
        status, _, raw = await post(
            gateway, {"model": "claude-sonnet", "max_tokens": 9, "messages": HI}
        )
        assert status == 200
        text = orjson.loads(raw)["content"][0]["text"]
    else:
        auth = {style: USER_KEY}
        async with anthropic.AsyncAnthropic(base_url=gateway.url, max_retries=0, **auth) as client:
            answer = await client.messages.create(model="claude-sonnet", max_tokens=9, messages=HI)
        text = answer.content[0].text
    assert text == "Hello from Claude"
    [sent] = claude.received
    assert sent.headers["x-api-key"] == PROVIDER_KEY and "Authorization" not in sent.headers
    assert not any(USER_KEY in value for value in sent.headers.values())


async def test_create_is_relayed_byte_for_byte_and_billed(gateway, claude):
    body = {
        "model": "claude-sonnet",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": HI,
        "temperature": 0.2,
        "a_field_from_next_year": {"kept": True},
    }
    headers = {"anthropic-version": "2031-07-04", "anthropic-beta": "time-travel-2031-07-04"}
    status, got_headers, raw = await post(gateway, body, headers=headers)
    assert status == 200 and got_headers["Content-Type"].startswith("application/json")
    assert raw == orjson.dumps(fake_anthropic.message(UPSTREAM_ID, claude.script))
    [sent] = claude.received
    assert sent.body == {**body, "model": UPSTREAM_ID}
    assert sent.headers["anthropic-version"] == "2031-07-04"
    assert sent.headers["anthropic-beta"] == "time-travel-2031-07-04"
    async with claude_sdk(gateway) as client:
        answer = await client.messages.create(
            model="claude-sonnet",
            max_tokens=64,
            messages=HI,
            extra_headers={"anthropic-beta": "another-new-flag"},
        )
    assert answer.content[0].text == "Hello from Claude" and answer.stop_reason == "end_turn"
    assert (answer.usage.input_tokens, answer.usage.cache_read_input_tokens) == (25, 10)
    assert claude.received[-1].body == {"model": UPSTREAM_ID, "max_tokens": 64, "messages": HI}
    assert claude.received[-1].headers["anthropic-beta"] == "another-new-flag"
    rows = await log_rows(gateway)
    assert [(r["endpoint"], r["status"], r["stream"]) for r in rows] == [("messages", "ok", 0)] * 2
    for row in rows:
        assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT, OUTPUT)
        assert (row["provider"], row["upstream_model"], row["usage_estimated"]) == (
            "claude", UPSTREAM_ID, 0
        )  # fmt: skip
        assert Decimal(row["cost_usd"]) == cost(PROMPT, OUTPUT, "3", "15")


@pytest.mark.parametrize("split", [1, 7, 0])
async def test_stream_is_relayed_byte_for_byte(gateway, claude, split):
    claude.script.split = split
    claude.script.thinking = ["Let me ", "think."]
    body = {"model": "claude-sonnet", "max_tokens": 64, "messages": HI, "stream": True}
    status, headers, raw = await post(gateway, body, headers={"anthropic-version": "1999-12-31"})
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    assert raw == claude.streamed[-1] == stream_bytes(UPSTREAM_ID, claude.script)
    assert claude.received[-1].body == {**body, "model": UPSTREAM_ID}
    assert claude.received[-1].headers["anthropic-version"] == "1999-12-31"
    async with (
        claude_sdk(gateway) as client,
        client.messages.stream(model="claude-sonnet", max_tokens=64, messages=HI) as stream,
    ):
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert pieces == ["Hello", " from", " Claude"]
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think."
    assert final.content[0].signature == claude.script.signature
    assert (final.usage.input_tokens, final.usage.output_tokens) == (25, OUTPUT)
    rows = await log_rows(gateway)
    for row in rows:
        assert (row["endpoint"], row["status"], row["stream"]) == ("messages", "ok", 1)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT, OUTPUT)
        assert row["usage_estimated"] == 0
        assert Decimal(row["cost_usd"]) == cost(PROMPT, OUTPUT, "3", "15")


async def test_stream_usage_repeated_in_message_delta_is_billed_once(gateway, claude):
    claude.script.delta_usage_full = True  # newer API versions repeat the input counts there
    claude.script.input_tokens = 30
    async with (
        claude_sdk(gateway) as client,
        client.messages.stream(model="claude-sonnet", max_tokens=64, messages=HI) as stream,
    ):
        final = await stream.get_final_message()
    assert final.usage.output_tokens == OUTPUT
    [row] = await log_rows(gateway)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (30 + 4 + 10, OUTPUT)


async def test_tool_use_over_two_turns(gateway, claude):
    claude.script.tool = Tool()
    tools = [WEATHER]
    async with claude_sdk(gateway) as client:
        first = await client.messages.create(
            model="claude-sonnet",
            max_tokens=64,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=tools,
            tool_choice={"type": "auto"},
        )
        assert first.stop_reason == "tool_use"
        call = first.content[-1]
        assert (call.type, call.name, call.input) == ("tool_use", "get_weather", Tool().input)
        claude.script.tool = None
        history = [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21C"}],
            },
        ]
        async with client.messages.stream(
            model="claude-sonnet", max_tokens=64, messages=history, tools=tools
        ) as stream:
            second = await stream.get_final_message()
    assert second.content[0].text == "Hello from Claude" and second.stop_reason == "end_turn"
    sent = claude.received[-1].body
    assert sent["messages"] == history and sent["tools"] == tools and sent["model"] == UPSTREAM_ID


async def test_count_tokens_is_asked_upstream_and_writes_no_row(gateway, claude):
    # It counts against the RPM like any request (test_owned_objects.py), hence USER_KEY here.
    async with claude_sdk(gateway) as client:
        for _ in range(3):
            counted = await client.messages.count_tokens(
                model="claude-sonnet", messages=HI, system="Be brief."
            )
            assert counted.input_tokens == claude.script.count_tokens
        answer = await client.messages.create(model="claude-sonnet", max_tokens=9, messages=HI)
        assert answer.content[0].text == "Hello from Claude"
    status, _, raw = await post(
        gateway,
        {"model": "claude-sonnet", "messages": HI},
        path="/v1/messages/count_tokens",
        headers={"anthropic-beta": "token-counting-2030"},
    )
    assert (status, orjson.loads(raw)) == (200, {"input_tokens": 42})
    counts = [r for r in claude.received if r.path == "/v1/messages/count_tokens"]
    assert len(counts) == 4
    assert counts[0].body == {"model": UPSTREAM_ID, "messages": HI, "system": "Be brief."}
    assert counts[-1].headers["anthropic-beta"] == "token-counting-2030"
    assert all(r.headers["x-api-key"] == PROVIDER_KEY for r in counts)
    [row] = await log_rows(gateway)  # the one message, not the counts
    assert row["endpoint"] == "messages"


# --- to an OpenAI-compatible provider and echo: translated ---------------------------------------


async def test_request_translated_to_chat_and_answer_back(gateway, upstream):
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    async with claude_sdk(gateway) as client:
        answer = await client.messages.create(
            model="fake-model",
            max_tokens=77,
            system="Be brief.",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image", "source": image},
                    ],
                }
            ],
            tools=[WEATHER],
            tool_choice={"type": "tool", "name": "get_weather"},
            stop_sequences=["END"],
        )
    assert answer.model == "fake-model" and answer.role == "assistant"
    assert [(b.type, b.text) for b in answer.content] == [("text", "Hello from upstream")]
    assert answer.stop_reason == "end_turn"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (11, 3)
    sent = upstream.received[-1].body
    assert sent["model"] == "upstream-model" and sent["max_tokens"] == 77
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["stop"] == ["END"]
    assert "Authorization" in upstream.received[-1].headers
    assert USER_KEY not in upstream.received[-1].headers["Authorization"]
    [row] = await log_rows(gateway)
    assert (row["endpoint"], row["status"], row["provider"]) == ("messages", "ok", "fake")
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (11, 3, 0)
    assert Decimal(row["cost_usd"]) == cost(11, 3, "1.5", "2.0")


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_use_over_two_turns_translated(gateway, upstream, stream):
    upstream.behaviour.tool_call = {
        "name": "get_weather", "arguments": '{"city": "Paris", "days": 3}', "call_id": "call_7"
    }  # fmt: skip
    question = {"role": "user", "content": "Weather in Paris?"}
    async with claude_sdk(gateway) as client:
        args = {"model": "fake-model", "max_tokens": 64, "messages": [question], "tools": [WEATHER]}
        if stream:
            async with client.messages.stream(**args) as answer_stream:
                first = await answer_stream.get_final_message()
        else:
            first = await client.messages.create(**args)
        assert first.stop_reason == "tool_use"
        [call] = first.content
        assert (call.type, call.id, call.name) == ("tool_use", "call_7", "get_weather")
        assert call.input == {"city": "Paris", "days": 3}
        upstream.behaviour.tool_call = None
        result = {"type": "tool_result", "tool_use_id": "call_7", "content": "21C"}
        args["messages"] = [
            question,
            {"role": "assistant", "content": [call.model_dump()]},
            {"role": "user", "content": [result, {"type": "text", "text": "Thanks"}]},
        ]
        second = await client.messages.create(**args)
    assert second.content[0].text == "Hello from upstream"
    assert upstream.received[-1].body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":3}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_7", "content": "21C"},
        {"role": "user", "content": "Thanks"},
    ]
    rows = await log_rows(gateway)
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [(11, 3)] * 2


async def test_stream_translated_into_anthropic_events(gateway, upstream):
    upstream.behaviour.split = 7
    async with (
        claude_sdk(gateway) as client,
        client.messages.stream(model="fake-model", max_tokens=64, messages=HI) as stream,
    ):
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert pieces == ["Hello", " from", " upstream"]
    assert final.content[0].text == "Hello from upstream" and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 3)  # message_delta's
    assert final.model == "fake-model"
    sent = upstream.received[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    body = {"model": "fake-model", "max_tokens": 64, "messages": HI, "stream": True}
    status, headers, raw = await post(gateway, body)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    names = [name for name, _ in events(raw)]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    rows = await log_rows(gateway)
    for row in rows:
        assert (row["endpoint"], row["stream"], row["status"]) == ("messages", 1, "ok")
        assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (
            11, 3, 0
        )  # fmt: skip


async def test_echo_answers_and_stops_at_max_tokens(gateway):
    long = "one two three four five six seven eight nine ten " * 4
    async with claude_sdk(gateway) as client:
        whole = await client.messages.create(model="echo", max_tokens=100, messages=HI)
        cut = await client.messages.create(
            model="echo", max_tokens=2, messages=[{"role": "user", "content": long}]
        )
        async with client.messages.stream(
            model="echo", max_tokens=100, messages=[{"role": "user", "content": "a b c"}]
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        async with client.messages.stream(
            model="echo", max_tokens=2, messages=[{"role": "user", "content": long}]
        ) as stream:
            cut_stream = await stream.get_final_message()
    assert (whole.content[0].text, whole.stop_reason) == ("Hi", "end_turn")
    assert cut.stop_reason == "max_tokens" and long.startswith(cut.content[0].text)
    assert text == "a b c" and final.stop_reason == "end_turn"
    assert cut_stream.stop_reason == "max_tokens"
    assert cut_stream.content[0].text == cut.content[0].text
    rows = await log_rows(gateway)
    assert [(r["endpoint"], r["provider"]) for r in rows] == [("messages", "echo")] * 4
    assert all(r["completion_tokens"] > 0 and r["prompt_tokens"] > 0 for r in rows)


@pytest.mark.parametrize("model", ["fake-model", "echo"])
async def test_count_tokens_estimated_without_a_count_endpoint(gateway, upstream, model):
    async with claude_sdk(gateway) as client:
        short = await client.messages.count_tokens(model=model, messages=HI)
        longer = await client.messages.count_tokens(
            model=model, messages=[{"role": "user", "content": "many words here " * 50}]
        )
        with_tools = await client.messages.count_tokens(model=model, messages=HI, tools=[WEATHER])
        answer = await client.messages.create(model=model, max_tokens=9, messages=HI)
    assert 0 < short.input_tokens < longer.input_tokens
    assert with_tools.input_tokens > short.input_tokens
    assert answer.content[0].text
    assert len(upstream.received) == (1 if model == "fake-model" else 0)
    assert len(await log_rows(gateway)) == 1
