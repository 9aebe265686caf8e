"""Gemini behind chat completions: the openai SDK talks to the gateway, the gateway talks to a
fake Gemini server; what Gemini receives and what the client gets are both checked."""

from __future__ import annotations

import base64
import struct
from decimal import Decimal

import openai
import pytest

from tests.support.clients import sdk
from tests.support.fake_gemini import GOOD_KEY, Call
from tests.support.gateway import base_config, start_gateway
from tests.support.logrows import log_rows

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
async def gateway(gemini, upstream, tmp_path):
    config = base_config(upstream.base_url, tmp_path)
    config["providers"]["gem"] = {
        "type": "gemini",
        "base_url": gemini.base_url,
        "api_key": GOOD_KEY,
    }
    config["models"]["gemini-flash"] = {
        "provider": "gem",
        "model": "gemini-2.5-flash",
        "input_price": 0.3,
        "output_price": 2.5,
    }
    config["models"]["gem-embed"] = {"provider": "gem", "model": "text-embedding-004"}
    running = await start_gateway(config)
    yield running
    await running.close()


async def test_chat_is_translated_both_ways_and_billed_from_gemini_usage(gateway, gemini):
    gemini.behaviour.usage = {
        "promptTokenCount": 12,
        "candidatesTokenCount": 4,
        "thoughtsTokenCount": 6,
        "cachedContentTokenCount": 2,
        "totalTokenCount": 22,
    }
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="gemini-flash",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"},
            ],
            max_tokens=50,
            temperature=0.2,
        )
    assert answer.choices[0].message.content == "Hello from Gemini"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gemini-flash"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 10)
    sent = gemini.received[-1]
    assert sent.method == "generateContent" and sent.model == "gemini-2.5-flash"
    assert sent.headers["x-goog-api-key"] == GOOD_KEY
    assert "Authorization" not in sent.headers
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
    assert sent.body["generationConfig"]["maxOutputTokens"] == 50
    [row] = await log_rows(gateway)
    assert (row["provider"], row["upstream_model"], row["endpoint"]) == (
        "gem",
        "gemini-2.5-flash",
        "chat",
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (12, 10, 0)
    assert Decimal(row["cost_usd"]) == (Decimal(12) * Decimal("0.3") + 10 * Decimal("2.5")) / 10**6


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_with_awkward_splits(gateway, gemini, include_usage):
    gemini.behaviour.split = 7
    async with sdk(gateway) as client:
        options = {"include_usage": True} if include_usage else None
        stream = await client.chat.completions.create(
            model="gemini-flash",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options=options,
        )
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Gemini"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.id for c in chunks} == {chunks[0].id} and {c.model for c in chunks} == {
        "gemini-flash"
    }
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 9
    else:
        assert usage_chunks == []
    assert gemini.received[-1].method == "streamGenerateContent"
    assert gemini.received[-1].query == {"alt": "sse"}
    [row] = await log_rows(gateway)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 9, 3)


async def test_tools_over_two_turns_round_trip_the_thought_signature(gateway, gemini):
    gemini.behaviour.pieces = []
    gemini.behaviour.calls = [Call("get_weather", {"city": "Paris"}, signature="sig-123")]
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    async with sdk(gateway) as client:
        first = await client.chat.completions.create(
            model="gemini-flash", messages=messages, tools=[WEATHER]
        )
        [call] = first.choices[0].message.tool_calls
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Paris"}'
        assert call.model_extra["extra_content"] == {"google": {"thought_signature": "sig-123"}}
        gemini.behaviour.calls = []
        gemini.behaviour.pieces = ["Sunny"]
        messages += [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ]
        second = await client.chat.completions.create(
            model="gemini-flash", messages=messages, tools=[WEATHER]
        )
    assert second.choices[0].message.content == "Sunny"
    sent = gemini.received[-1].body
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    model_turn, tool_turn = sent["contents"][1], sent["contents"][2]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][0]["functionCall"] == {
        "name": "get_weather",
        "args": {"city": "Paris"},
    }
    assert model_turn["parts"][0]["thoughtSignature"] == "sig-123"
    assert tool_turn["role"] == "user"
    assert tool_turn["parts"][0]["functionResponse"]["name"] == "get_weather"
    assert tool_turn["parts"][0]["functionResponse"]["response"] == {"temp": 21}


async def test_images_become_inline_data(gateway, gemini):
    png = base64.b64encode(b"\x89PNG fake").decode()
    async with sdk(gateway) as client:
        await client.chat.completions.create(
            model="gemini-flash",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                    ],
                }
            ],
        )
    parts = gemini.received[-1].body["contents"][0]["parts"]
    assert parts == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": png}},
    ]


async def test_errors_keep_their_status_or_become_502_after_retries(gateway, gemini):
    async with sdk(gateway) as client:
        gemini.behaviour.status = 400
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "x"}]
            )
        assert "invalid argument" in bad.value.message
        assert len(gemini.received) == 1, "a 4xx is not retried"
        gemini.behaviour.status = 503
        with pytest.raises(openai.InternalServerError) as down:
            await client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "x"}]
            )
        assert down.value.status_code == 502 and down.value.code == "provider_error"
        assert len(gemini.received) > 2, "a 5xx is retried"
        gemini.behaviour.fail_times = len(gemini.received)  # Gemini is back
        answer = await client.chat.completions.create(
            model="gemini-flash", messages=[{"role": "user", "content": "x"}]
        )
        assert answer.choices[0].message.content == "Hello from Gemini"


async def test_a_stream_cut_short_ends_with_one_stream_error(gateway, gemini):
    gemini.behaviour.close_after_bytes = 450  # two whole events, then half of the third
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="gemini-flash", messages=[{"role": "user", "content": "x"}], stream=True
        )
        with pytest.raises(openai.APIError) as err:
            async for _ in stream:
                pass
    assert "stream" in str(err.value).lower() or err.value.code == "stream_error"
    [row] = await log_rows(gateway)
    assert row["status"] == "upstream_error"


@pytest.mark.parametrize("fmt", ["float", "base64"])
async def test_embeddings_go_through_batch_embed_contents(gateway, gemini, fmt):
    async with sdk(gateway) as client:
        result = await client.embeddings.create(
            model="gem-embed", input=["alpha", "beta"], encoding_format=fmt, dimensions=4
        )
    assert [d.index for d in result.data] == [0, 1]
    vectors = [d.embedding for d in result.data]
    if fmt == "base64":  # the SDK decodes base64 itself only when it chose the format
        vectors = [list(struct.unpack("<4f", base64.b64decode(v))) for v in vectors]
    assert all(len(v) == 4 for v in vectors)
    sent = gemini.received[-1]
    assert sent.method == "batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in sent.body["requests"]] == ["alpha", "beta"]
    assert sent.body["requests"][0]["outputDimensionality"] == 4
    [row] = await log_rows(gateway)
    assert row["endpoint"] == "embeddings" and row["prompt_tokens"] > 0
