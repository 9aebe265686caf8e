"""SPEC 14, structured output carried on translation: `chat.completions.parse` and
`responses.parse` with a pydantic model through an Anthropic-backed model (a forced tool whose
input is the answer) and a Gemini-backed one (JSON mode with the schema); never dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from pydantic import BaseModel

from tests.support.clients import sdk
from tests.support.fake_gemini import GOOD_KEY, FakeGemini
from tests.support.front_door import front_door_config
from tests.support.gateway import RunningGateway, start_gateway

ASK = [{"role": "user", "content": "Plan a trip to Paris"}]


class Stop(BaseModel):
    city: str
    nights: int


class Trip(BaseModel):
    title: str
    stops: list[Stop]
    budget: float | None


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    fake = await FakeGemini().start()
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(claude, gemini, upstream, tmp_path) -> AsyncIterator[RunningGateway]:
    config = front_door_config(claude.base_url, upstream.base_url, tmp_path)
    config["providers"]["gem"] = {"type": "gemini", "base_url": gemini.base_url,
                                  "api_key": GOOD_KEY}  # fmt: skip
    config["models"]["gemini-flash"] = {"provider": "gem", "model": "gemini-2.5-flash"}
    running = await start_gateway(config)
    yield running
    await running.close()


@pytest.mark.parametrize("model", ["claude-sonnet", "gemini-flash"])
async def test_chat_parse_with_a_pydantic_model(gateway, claude, gemini, model):
    async with sdk(gateway) as client:
        answer = await client.chat.completions.parse(
            model=model, messages=ASK, response_format=Trip
        )
        async with client.chat.completions.stream(
            model=model, messages=ASK, response_format=Trip
        ) as stream:
            streamed = await stream.get_final_completion()
    for completion in (answer, streamed):
        choice = completion.choices[0]
        assert isinstance(choice.message.parsed, Trip) and choice.message.parsed.stops
        assert choice.finish_reason == "stop" and not choice.message.tool_calls
    if model == "claude-sonnet":
        sent = claude.received[-1].body
        [tool] = sent["tools"]
        assert sent["tool_choice"] == {"type": "tool", "name": tool["name"]}
        assert tool["input_schema"]["properties"]["stops"]["type"] == "array"
    else:
        config = gemini.received[-1].body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"]["properties"]["stops"]["type"] == "array"


@pytest.mark.parametrize("model", ["claude-sonnet", "gemini-flash"])
async def test_responses_parse_with_a_pydantic_model(gateway, model):
    async with sdk(gateway) as client:
        answer = await client.responses.parse(model=model, input="Plan a trip", text_format=Trip)
    assert isinstance(answer.output_parsed, Trip) and answer.output_parsed.stops


async def test_json_object_mode_through_anthropic(gateway, claude):
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-sonnet", messages=ASK, response_format={"type": "json_object"}
        )
    assert answer.choices[0].message.content == "{}"
    assert claude.received[-1].body["tools"][0]["input_schema"] == {"type": "object"}


async def test_a_schema_anthropic_cannot_answer_is_refused(gateway, claude):
    fmt = {"type": "json_schema", "json_schema": {"name": "list", "schema": {"type": "array"}}}
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model="claude-sonnet", messages=ASK, response_format=fmt
            )
    assert refused.value.body["param"] == "response_format.json_schema.schema"
    assert claude.received == []
