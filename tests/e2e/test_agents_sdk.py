"""The OpenAI Agents SDK (in its own venv, pinned in tests/support/agents_sdk.py) through the
gateway with a tool turn, Runner.run and Runner.run_streamed, over chat completions (relayed to an
OpenAI fake, translated to a fake Anthropic) and the Responses API (relayed, bridged to Anthropic,
bridged to a chat-only OpenAI-compatible fake). Skipped where the SDK cannot be installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.agent_fakes import FINAL, SDK_ROUTES, tool_output
from tests.support.agents_sdk import AgentsSDKUnavailable, install_agents_sdk, run_turn
from tests.support.gateway import USER_KEY
from tests.support.logrows import rows_when


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    try:
        return install_agents_sdk()
    except AgentsSDKUnavailable as exc:
        pytest.skip(f"OpenAI Agents SDK unavailable: {exc}")


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize(("api", "model", "fake"), SDK_ROUTES)
async def test_an_agent_tool_turn(sdk_python, agent_gateway, agent_fakes, api, model, fake, stream):
    result = await run_turn(sdk_python, agent_gateway.base_url, USER_KEY, model, api, stream)
    assert result == {"text": FINAL}
    received = agent_fakes[fake].received
    assert "compat-ok" in tool_output(received[-1].body)
    rows = await rows_when(agent_gateway, 2)
    assert {(r["endpoint"], r["status"]) for r in rows} == {(api, "ok")}
