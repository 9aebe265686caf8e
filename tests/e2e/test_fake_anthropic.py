"""The fake Anthropic server speaks the real wire format: the official `anthropic` SDK reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import anthropic
import pytest
from anthropic.types import MessageParam

from tests.support.fake_anthropic import FakeAnthropic, Script, Tool, stream_bytes

MODEL = "claude-sonnet-4-5"
HELLO: list[MessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = await FakeAnthropic().start()
    yield server
    await server.close()


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=fake.base_url, max_retries=0)
    yield sdk
    await sdk.close()


def rich_script(split: int = 0) -> Script:
    """An answer with a thinking block, text and a tool call."""
    return Script(thinking=["Let me ", "think."], tool=Tool(), split=split)


async def test_create_reads_every_block_and_the_usage(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script = rich_script()
    message = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert message.id == "msg_01FakeAnswer"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    thinking, text, tool = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Let me think."
    assert thinking.signature == "EqQBCgIYAhIM"
    assert text.type == "text" and text.text == "Hello from Claude"
    assert tool.type == "tool_use" and tool.name == "get_weather"
    assert tool.input == {"city": "Paris", "days": 3}
    assert message.stop_reason == "tool_use"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (25, 12)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (4, 10)

    (received,) = fake.received
    assert received.path == "/v1/messages"
    # SDK 2.x sends its key as a bearer token and its own API version date.
    assert received.headers["Authorization"] == "Bearer sk-ant-test"
    assert received.headers["anthropic-version"]
    assert received.body == {"model": MODEL, "max_tokens": 64, "messages": HELLO}


@pytest.mark.parametrize("split", [0, 1, 7])
async def test_the_stream_accumulates_to_the_same_message(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, split: int
) -> None:
    fake.script = rich_script()
    created = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    fake.script = rich_script(split=split)
    texts: list[str] = []
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        async for text in stream.text_stream:
            texts.append(text)
        streamed = await stream.get_final_message()
    assert texts == ["Hello", " from", " Claude"]
    assert streamed.model_dump() == created.model_dump()
    assert fake.received[-1].body["stream"] is True
    assert fake.streamed == [stream_bytes(MODEL, fake.script)]


async def test_count_tokens(fake: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake.script.count_tokens = 1234
    counted = await client.messages.count_tokens(model=MODEL, messages=HELLO)
    assert counted.input_tokens == 1234
    assert fake.received[-1].path == "/v1/messages/count_tokens"


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_errors_have_anthropics_shape(
    fake: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    status: int,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    fake.script.status = status
    with pytest.raises(error) as caught:
        await client.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert caught.value.status_code == status
    assert caught.value.body == {
        "type": "error",
        "error": {"type": kind, "message": "scripted failure"},
        "request_id": "req_fake_error",
    }


async def test_a_wrong_key_is_refused_when_a_key_is_set(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script.api_key = "sk-ant-other"
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model=MODEL, max_tokens=8, messages=HELLO)


async def test_an_error_event_mid_stream_raises_in_the_sdk(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script.error_after_events = 4
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=8, messages=HELLO) as stream:
            async for text in stream.text_stream:
                texts.append(text)
    assert texts == ["Hello"]  # message_start, block start, ping, one delta, then the error
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


async def test_fail_first_requests_then_answer(fake: FakeAnthropic) -> None:
    fake.script.status, fake.script.fail_times = 529, 2
    async with aiohttp.ClientSession() as session:
        statuses = []
        for _ in range(3):
            async with session.post(
                fake.base_url + "/v1/messages",
                json={"model": MODEL, "max_tokens": 8, "messages": HELLO},
                headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
            ) as response:
                statuses.append(response.status)
                await response.read()
    assert statuses == [529, 529, 200]


async def test_a_connection_closed_mid_stream_sends_exactly_the_cut(fake: FakeAnthropic) -> None:
    fake.script.close_after_bytes, fake.script.split = 300, 50
    whole = stream_bytes(MODEL, fake.script)
    received = b""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.base_url + "/v1/messages",
            json={"model": MODEL, "max_tokens": 8, "messages": HELLO, "stream": True},
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        ) as response,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            async for piece in response.content.iter_any():
                received += piece
    assert received == whole[:300]
    assert fake.streamed == [whole[:300]]


async def test_anthropic_version_is_required(fake: FakeAnthropic) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.base_url + "/v1/messages",
            json={"model": MODEL, "max_tokens": 8, "messages": HELLO},
            headers={"x-api-key": "k"},
        ) as response,
    ):
        assert response.status == 400
        body = await response.json()
    assert body["error"]["type"] == "invalid_request_error"
