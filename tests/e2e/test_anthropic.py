"""Anthropic behind chat completions: the openai SDK talks to the gateway, the gateway talks to a
fake Anthropic Messages API; both sides are checked, and the request log is billed from
Anthropic's own usage (cache tokens included)."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from tests.support.clients import sdk
from tests.support.fake_anthropic import Tool
from tests.support.front_door import PROVIDER_KEY
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
def config(claude, upstream, tmp_path):
    config = base_config(upstream.base_url, tmp_path)
    config["providers"]["claude"] = {
        "type": "anthropic",
        "base_url": claude.base_url,
        "api_key": PROVIDER_KEY,
    }
    config["models"]["claude-sonnet"] = {
        "provider": "claude",
        "model": "claude-sonnet-4-5",
        "max_tokens": 8192,
        "input_price": 3,
        "output_price": 15,
    }
    config["models"]["claude-or-fake"] = {
        "deployments": [{"provider": "claude", "model": "claude-sonnet-4-5"}],
        "fallbacks": ["fake-model"],
    }
    return config


@pytest.fixture
async def gateway(config):
    running = await start_gateway(config)
    yield running
    await running.close()


async def test_answer_with_thinking_text_and_tool_use(gateway, claude):
    claude.script.thinking = ["Let me ", "think."]
    claude.script.tool = Tool()
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-sonnet",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": "Use tools."},
                {"role": "user", "content": "Weather in Paris?"},
            ],
            tools=[WEATHER],
            tool_choice="required",
            parallel_tool_calls=False,
            stop=["END"],
            user="u-42",
        )
    message = answer.choices[0].message
    assert message.content == "Hello from Claude"
    assert message.model_extra["reasoning_content"] == "Let me think."
    [call] = message.tool_calls
    assert (call.id, call.function.name) == ("toolu_01FakeWeather", "get_weather")
    assert call.function.arguments == '{"city":"Paris","days":3}'
    assert answer.choices[0].finish_reason == "tool_calls" and answer.model == "claude-sonnet"
    # 25 input + 4 cache creation + 10 cache read
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (39, 12)
    assert answer.usage.prompt_tokens_details.cached_tokens == 10
    sent = claude.received[-1]
    assert sent.path == "/v1/messages"
    assert (
        sent.headers["x-api-key"] == PROVIDER_KEY
        and sent.headers["anthropic-version"] == "2023-06-01"
    )
    assert "Authorization" not in sent.headers
    body = sent.body
    assert body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == 8192
    assert body["system"] in ("Be brief.\n\nUse tools.", [
        {"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}
    ])  # fmt: skip
    assert body["messages"] == [{"role": "user", "content": "Weather in Paris?"}] or body[
        "messages"
    ] == [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}]
    assert body["tools"][0]["name"] == "get_weather" and "input_schema" in body["tools"][0]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u-42"}
    [row] = await log_rows(gateway)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (39, 12, 0)
    assert Decimal(row["cost_usd"]) == (39 * Decimal(3) + 12 * Decimal(15)) / 10**6


async def test_tool_results_over_a_second_turn(gateway, claude):
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "21C"},
    ]
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-sonnet", messages=messages, tools=[WEATHER]
        )
    assert answer.choices[0].message.content == "Hello from Claude"
    sent = claude.received[-1].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
        ],
    }
    assert sent[2]["role"] == "user"
    assert sent[2]["content"][0]["type"] == "tool_result"
    assert sent[2]["content"][0]["tool_use_id"] == "toolu_1"


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_translated_as_it_arrives(gateway, claude, include_usage):
    claude.script.thinking = ["hmm"]
    claude.script.tool = Tool()
    claude.script.split = 5
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="claude-sonnet",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True} if include_usage else None,
        )
        chunks = [c async for c in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "Hello from Claude"
    assert "".join(d.model_extra.get("reasoning_content") or "" for d in deltas) == "hmm"
    calls = [tc for d in deltas for tc in d.tool_calls or []]
    assert calls[0].id == "toolu_01FakeWeather" and calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"city": "Paris", "days": 3}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert len({c.id for c in chunks}) == 1 and {c.model for c in chunks} == {"claude-sonnet"}
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 39
    else:
        assert all(c.usage is None for c in chunks)
    [row] = await log_rows(gateway)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 39, 12)


async def test_images_as_base64_and_url_sources(gateway, claude):
    async with sdk(gateway) as client:
        await client.chat.completions.create(
            model="claude-sonnet",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                    ],
                }
            ],
        )
    content = claude.received[-1].body["messages"][0]["content"]
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    assert content[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://x.test/cat.jpg"},
    }


async def test_refused_and_upstream_errors(gateway, claude):
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as n:
            await client.chat.completions.create(
                model="claude-sonnet", messages=[{"role": "user", "content": "x"}], n=2
            )
        assert n.value.param == "n" and claude.received == []
        claude.script.status = 400
        claude.script.error_message = "messages: roles must alternate"
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(
                model="claude-sonnet", messages=[{"role": "user", "content": "x"}]
            )
        assert bad.value.message.endswith("messages: roles must alternate")
        assert bad.value.type == "invalid_request_error"
    rows = await log_rows(gateway)
    assert [r["status"] for r in rows] == ["rejected", "upstream_error"]


async def test_overloaded_529_falls_back_to_an_openai_deployment(gateway, claude, upstream):
    claude.script.status = 529
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-or-fake", messages=[{"role": "user", "content": "x"}]
        )
        assert answer.choices[0].message.content == "Hello from upstream"
        stream = await client.chat.completions.create(
            model="claude-or-fake", messages=[{"role": "user", "content": "x"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Hello from upstream"
        with pytest.raises(openai.InternalServerError) as down:
            await client.chat.completions.create(
                model="claude-sonnet", messages=[{"role": "user", "content": "x"}]
            )
    assert down.value.status_code == 502
    assert len(claude.received) >= 3, "529 is retried like a 5xx"
    rows = await log_rows(gateway)
    assert [(r["provider"], r["status"]) for r in rows[:2]] == [("fake", "ok"), ("fake", "ok")]


async def test_sessions_work_on_anthropic(gateway, claude):
    async with sdk(gateway) as client:
        session = await client.post("/ai/sessions", body={"title": "t"}, cast_to=object)
        for text in ("first", "second"):
            await client.chat.completions.create(
                model="claude-sonnet",
                messages=[{"role": "user", "content": text}],
                extra_body={"session_id": session["id"]},
            )
    sent = claude.received[-1].body["messages"]
    assert sent[0]["role"] == "user" and sent[1]["role"] == "assistant"
    texts = [
        m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in sent
    ]
    assert texts == ["first", "Hello from Claude", "second"]
