"""SPEC 14 on the Responses bridge: Codex's `namespace` tools flattened for a chat provider and
their calls mapped back, hosted tools left out and named in `x-gateway-dropped-tools` (or 400
with `hosted_tools: reject`), and `responses: bridge` serving /v1/responses from a chat-only
OpenAI-compatible server, streams, tools and previous_response_id included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from tests.support.clients import sdk
from tests.support.fake_anthropic import Tool
from tests.support.front_door import ToolCallingUpstream, front_door_config
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.logrows import rows_when

SHELL = {"type": "function", "name": "shell", "description": "Run a command",
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}  # fmt: skip
SPAWN = {"type": "function", "name": "spawn_agent", "description": "Start a sub-agent",
         "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}}  # fmt: skip
NAMESPACE = {"type": "namespace", "name": "multi_agent", "description": "Sub-agents",
             "tools": [SPAWN, {**SPAWN, "name": "wait"}]}  # fmt: skip
CODEX_TOOLS = [SHELL, NAMESPACE, {"type": "web_search"}]


@pytest.fixture
async def upstream() -> AsyncIterator[ToolCallingUpstream]:
    fake = await ToolCallingUpstream().start()
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(claude, upstream, tmp_path) -> AsyncIterator[RunningGateway]:
    config = front_door_config(claude.base_url, upstream.base_url, tmp_path)
    config["models"]["claude-strict"] = {**config["models"]["claude-sonnet"],
                                         "hosted_tools": "reject"}  # fmt: skip
    config["providers"]["chat-only"] = {**config["providers"]["fake"], "responses": "bridge"}
    config["models"]["local-llm"] = {"provider": "chat-only", "model": "qwen3-coder"}
    config["models"]["bridged-here"] = {"provider": "fake", "model": "m", "responses": "bridge"}
    running = await start_gateway(config)
    yield running
    await running.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_namespace_tools_are_flattened_and_their_calls_mapped_back(gateway, claude, stream):
    claude.script.tool = Tool(name="multi_agent__spawn_agent", fragments=['{"task": "tests"}'])
    async with sdk(gateway) as client:
        if stream:
            async with client.responses.stream(
                model="claude-sonnet", input="Run the tests", tools=CODEX_TOOLS
            ) as events:
                answer = await events.get_final_response()
        else:
            raw = await client.responses.with_raw_response.create(
                model="claude-sonnet", input="Run the tests", tools=CODEX_TOOLS
            )
            assert raw.headers["x-gateway-dropped-tools"] == "web_search"
            answer = raw.parse()
    [call] = [item for item in answer.output if item.type == "function_call"]
    assert (call.name, call.namespace) == ("spawn_agent", "multi_agent")
    assert call.arguments in ('{"task":"tests"}', '{"task": "tests"}')  # compact when whole
    sent = claude.received[-1].body
    assert [t["name"] for t in sent["tools"]] == [
        "shell", "multi_agent__spawn_agent", "multi_agent__wait"
    ]  # fmt: skip

    claude.script.tool = None
    async with sdk(gateway) as client:
        follow = await client.responses.create(
            model="claude-sonnet",
            tools=CODEX_TOOLS,
            input=[
                {"role": "user", "content": "Run the tests"},
                {"type": "function_call", "call_id": call.call_id, "name": "spawn_agent",
                 "namespace": "multi_agent", "arguments": call.arguments},
                {"type": "function_call_output", "call_id": call.call_id, "output": "started"},
            ],
        )  # fmt: skip
    assert follow.output_text == "Hello from Claude"
    [assistant] = [m for m in claude.received[-1].body["messages"] if m["role"] == "assistant"]
    assert assistant["content"][0]["name"] == "multi_agent__spawn_agent"


async def test_hosted_tools_are_refused_when_the_model_says_so(gateway, claude):
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(model="claude-strict", input="Hi", tools=CODEX_TOOLS)
    assert refused.value.body["param"] == "tools[2].type"
    assert "web_search" in refused.value.message
    assert claude.received == []


@pytest.mark.parametrize("model", ["local-llm", "bridged-here"])
async def test_a_chat_only_server_serves_responses_through_the_bridge(gateway, upstream, model):
    async with sdk(gateway) as client:
        first = await client.responses.create(model=model, input="Hi", instructions="Be brief.")
        assert first.output_text == "Hello from upstream"
        assert upstream.received[-1].path == "/v1/chat/completions"
        async with client.responses.stream(
            model=model, input="Again", previous_response_id=first.id
        ) as events:
            second = await events.get_final_response()
    assert second.output_text == "Hello from upstream"
    assert second.previous_response_id == first.id
    sent = upstream.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert [m["role"] for m in sent.body["messages"]] == ["user", "assistant", "user"]
    assert all(r.path == "/v1/chat/completions" for r in upstream.received)
    rows = await rows_when(gateway, 2)
    assert [(r["endpoint"], r["status"]) for r in rows] == [("responses", "ok")] * 2


async def test_a_tool_turn_through_a_chat_only_server(gateway, upstream):
    upstream.behaviour.tool_call = {"name": "multi_agent__wait", "arguments": '{"task":"x"}',
                                    "call_id": "call_9"}  # fmt: skip
    async with (
        sdk(gateway) as client,
        client.responses.stream(
            model="local-llm", input="Wait for it", tools=CODEX_TOOLS
        ) as events,
    ):
        answer = await events.get_final_response()
    [call] = [item for item in answer.output if item.type == "function_call"]
    assert (call.name, call.namespace, call.call_id) == ("wait", "multi_agent", "call_9")
    sent = upstream.received[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == [
        "shell", "multi_agent__spawn_agent", "multi_agent__wait"
    ]  # fmt: skip
