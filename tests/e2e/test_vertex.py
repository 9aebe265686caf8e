"""Google Vertex AI (`type: vertex`): the openai and anthropic SDKs talk to the gateway, the
gateway talks to a fake Vertex that issues OAuth tokens for a throw-away service account (and
verifies its signed JWT assertion) and checks the bearer token on every model call."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import openai
import pytest

from tests.support.clients import sdk
from tests.support.fake_anthropic import Tool
from tests.support.fake_vertex import (
    CLAUDE_VERSION,
    CLIENT_EMAIL,
    LOCATION,
    PROJECT,
    FakeVertex,
    vertex_config,
)
from tests.support.front_door import claude_sdk
from tests.support.gateway import start_gateway
from tests.support.logrows import log_rows

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ROOT = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers"


@pytest.fixture
async def vertex():
    fake = await FakeVertex().start()
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(vertex, upstream, tmp_path):
    running = await start_gateway(vertex_config(vertex, upstream.base_url, tmp_path))
    yield running
    await running.close()


async def test_gemini_chat_and_stream_on_vertex_urls_with_one_token(gateway, vertex):
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="gemini-flash", messages=[{"role": "user", "content": "Say hello"}]
        )
        chunks = [
            c
            async for c in await client.chat.completions.create(
                model="gemini-flash",
                messages=[{"role": "user", "content": "Say hello"}],
                stream=True,
            )
        ]
    assert answer.choices[0].message.content == "Hello from Gemini"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from Gemini"
    )
    first, second = vertex.gemini.received
    assert first.path == f"{ROOT}/google/models/gemini-2.5-flash:generateContent"
    assert second.path == f"{ROOT}/google/models/gemini-2.5-flash:streamGenerateContent"
    assert second.query == {"alt": "sse"}
    assert first.body["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
    # One token from the service account's token_uri served both calls.
    assert vertex.issued == ["ya29.fake-1"]
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer ya29.fake-1"
    [claims] = vertex.assertions
    assert claims["iss"] == CLIENT_EMAIL
    rows = await log_rows(gateway)
    assert [r["provider"] for r in rows] == ["gcp", "gcp"]
    assert Decimal(str(rows[0]["cost_usd"])) > 0  # the catalog's price of gemini-2.5-flash


async def test_claude_stream_through_stream_raw_predict(gateway, vertex):
    vertex.script.split = 7  # awkward pieces
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="claude-vertex",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    print("\nVertex Claude stream through the openai SDK:")
    for chunk in chunks:
        print(chunk.model_dump_json(exclude_none=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Claude"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    # input 25 + cache writes 4 + cache reads 10; cached = the reads
    assert (usage.prompt_tokens, usage.completion_tokens) == (39, 12)
    assert usage.prompt_tokens_details.cached_tokens == 10
    [sent] = vertex.claude
    assert (sent.method, sent.model) == ("streamRawPredict", "claude-sonnet-4-5@20250929")
    assert sent.body["anthropic_version"] == CLAUDE_VERSION and "model" not in sent.body
    assert sent.body["stream"] is True and sent.body["system"] == "Be brief."
    assert sent.headers["Authorization"] == "Bearer ya29.fake-1"
    [row] = await log_rows(gateway)
    assert (row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"]) == (39, 10, 4)
    # Catalog price of claude-sonnet-4-5 on Google: 3 in, 0.3 cached, 3.75 writes, 15 out / Mtok.
    expected = (25 * 3 + 10 * Decimal("0.3") + 4 * Decimal("3.75") + 12 * 15) / Decimal(10**6)
    assert Decimal(str(row["cost_usd"])) == expected


async def test_claude_tool_call_json(gateway, vertex):
    vertex.script.pieces = []
    vertex.script.tool = Tool()
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-vertex",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER],
            tool_choice="required",
        )
    [call] = answer.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}
    assert answer.choices[0].finish_reason == "tool_calls"
    [sent] = vertex.claude
    assert sent.method == "rawPredict"
    assert sent.body["tool_choice"] == {"type": "any"}
    assert sent.body["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]


async def test_anthropic_front_door_relays_claude_on_vertex(gateway, vertex):
    vertex.script.split = 5
    async with claude_sdk(gateway) as client:
        message = await client.messages.create(
            model="claude-vertex",
            max_tokens=100,
            messages=[{"role": "user", "content": "Say hello"}],
        )
        async with client.messages.stream(
            model="claude-vertex",
            max_tokens=100,
            messages=[{"role": "user", "content": "Say hello"}],
        ) as stream:
            streamed = await stream.get_final_message()
    assert message.content[0].text == streamed.content[0].text == "Hello from Claude"
    assert message.usage.cache_read_input_tokens == 10
    first, second = vertex.claude
    assert (first.method, second.method) == ("rawPredict", "streamRawPredict")
    for sent in (first, second):
        assert sent.body["anthropic_version"] == CLAUDE_VERSION and "model" not in sent.body
        assert sent.body["messages"] == [{"role": "user", "content": "Say hello"}]
    rows = await log_rows(gateway)
    assert [(r["endpoint"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        ("messages", 39, 12),
        ("messages", 39, 12),
    ]


async def test_responses_bridge_on_vertex_gemini(gateway, vertex):
    async with sdk(gateway) as client:
        response = await client.responses.create(model="gemini-flash", input="Say hello")
    assert response.output_text == "Hello from Gemini"
    assert vertex.gemini.received[-1].path.endswith("gemini-2.5-flash:generateContent")


async def test_concurrent_requests_share_one_token_refresh(gateway, vertex):
    async with sdk(gateway) as client:
        answers = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="gemini-flash", messages=[{"role": "user", "content": f"hi {i}"}]
                )
                for i in range(12)
            )
        )
    assert all(a.choices[0].message.content == "Hello from Gemini" for a in answers)
    assert vertex.issued == ["ya29.fake-1"]


async def test_a_token_close_to_expiry_is_refreshed_before_use(gateway, vertex):
    vertex.expires_in = 120  # inside the refresh margin: never used for a second call
    async with sdk(gateway) as client:
        for _ in range(2):
            await client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "hi"}]
            )
    assert vertex.issued == ["ya29.fake-1", "ya29.fake-2"]
    used = [r.headers["Authorization"] for r in vertex.gemini.received]
    assert used == ["Bearer ya29.fake-1", "Bearer ya29.fake-2"]


async def test_application_default_credentials(vertex, upstream, tmp_path, monkeypatch):
    config = vertex_config(vertex, upstream.base_url, tmp_path)
    path = config["providers"]["gcp"].pop("credentials_file")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
    running = await start_gateway(config)
    try:
        async with sdk(running) as client:
            answer = await client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        await running.close()
    assert answer.choices[0].message.content == "Hello from Gemini"
    assert vertex.issued == ["ya29.fake-1"]


async def test_credentials_the_token_endpoint_refuses_are_a_502(vertex, upstream, tmp_path):
    other = FakeVertex()  # another key pair: its signature does not verify here
    config = vertex_config(vertex, upstream.base_url, tmp_path)
    bad = json.loads(vertex.service_account_file(tmp_path).read_text())
    bad["private_key"] = other.private_key_pem
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    config["providers"]["gcp"]["credentials_file"] = str(tmp_path / "bad.json")
    running = await start_gateway(config)
    try:
        async with sdk(running) as client:
            with pytest.raises(openai.APIStatusError) as caught:
                await client.chat.completions.create(
                    model="gemini-flash", messages=[{"role": "user", "content": "hi"}]
                )
    finally:
        await running.close()
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "provider_error"
    assert vertex.issued == [] and "signature" in vertex.refused[0]
    assert vertex.gemini.received == []


async def test_throttling_is_retried_then_passed_through_as_429(gateway, vertex):
    vertex.script.status = 429
    async with sdk(gateway) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="claude-vertex", messages=[{"role": "user", "content": "hi"}]
            )
    assert "Quota exceeded" in caught.value.message
    assert len(vertex.claude) > 1  # retried before giving up
    [row] = await log_rows(gateway)
    assert (row["status_code"], row["attempts"]) == (429, len(vertex.claude))


async def test_a_server_error_is_retried(gateway, vertex):
    vertex.script.status, vertex.script.fail_times = 500, 1
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-vertex", messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content == "Hello from Claude"
    [row] = await log_rows(gateway)
    assert (row["status"], row["attempts"]) == ("ok", 2)


async def test_a_refused_token_is_replaced_for_the_next_request(gateway, vertex):
    async with sdk(gateway) as client:
        await client.chat.completions.create(
            model="gemini-flash", messages=[{"role": "user", "content": "hi"}]
        )
        vertex.revoked.add("ya29.fake-1")
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "hi"}]
            )
        answer = await client.chat.completions.create(
            model="gemini-flash", messages=[{"role": "user", "content": "hi"}]
        )
    assert "invalid authentication credentials" in caught.value.message
    assert answer.choices[0].message.content == "Hello from Gemini"
    assert vertex.issued == ["ya29.fake-1", "ya29.fake-2"]


async def test_embeddings_are_not_served_by_vertex(gateway, vertex):
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.embeddings.create(model="gemini-flash", input="hi")
    assert caught.value.body["code"] == "model_not_supported"
    assert vertex.gemini.received == [] and vertex.issued == []
