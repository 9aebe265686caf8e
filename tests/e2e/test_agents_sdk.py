"""The OpenAI Agents SDK (in its own venv, pinned in tests/support/agents_sdk.py) through the
gateway with a tool turn, Runner.run and Runner.run_streamed, over chat completions (relayed to an
OpenAI fake, translated to a fake Anthropic) and the Responses API (relayed, bridged to Anthropic,
bridged to a chat-only OpenAI-compatible fake). Skipped where the SDK cannot be installed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.agent_fakes import FINAL, AgentAnthropic, AgentUpstream, tool_output
from tests.support.agents_sdk import AgentsSDKUnavailable, install_agents_sdk, run_turn
from tests.support.front_door import PROVIDER_KEY, front_door_config
from tests.support.gateway import USER_KEY, RunningGateway, start_gateway
from tests.support.logrows import rows_when

ROUTES = [
    ("chat", "fake-model", "openai"),
    ("chat", "claude-sonnet", "anthropic"),
    ("responses", "fake-model", "openai"),
    ("responses", "claude-sonnet", "anthropic"),
    ("responses", "local-llm", "openai"),
]


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    try:
        return install_agents_sdk()
    except AgentsSDKUnavailable as exc:
        pytest.skip(f"OpenAI Agents SDK unavailable: {exc}")


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, AgentUpstream | AgentAnthropic]]:
    upstream, claude = await AgentUpstream().start(), await AgentAnthropic().start()
    claude.script.api_key = PROVIDER_KEY
    yield {"openai": upstream, "anthropic": claude}
    await upstream.close()
    await claude.close()


@pytest.fixture
async def gateway(fakes, tmp_path) -> AsyncIterator[RunningGateway]:
    config = front_door_config(fakes["anthropic"].base_url, fakes["openai"].base_url, tmp_path)
    config["providers"]["chat-only"] = {**config["providers"]["fake"], "responses": "bridge"}
    config["models"]["local-llm"] = {"provider": "chat-only", "model": "qwen3-coder"}
    running = await start_gateway(config)
    yield running
    await running.close()


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize(("api", "model", "fake"), ROUTES)
async def test_an_agent_tool_turn(sdk_python, gateway, fakes, api, model, fake, stream):
    result = await run_turn(sdk_python, gateway.base_url, USER_KEY, model, api, stream)
    assert result == {"text": FINAL}
    received = fakes[fake].received
    assert "compat-ok" in tool_output(received[-1].body)
    rows = await rows_when(gateway, 2)
    assert {(r["endpoint"], r["status"]) for r in rows} == {(api, "ok")}
