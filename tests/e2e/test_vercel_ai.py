"""The Vercel AI SDK (node, pinned in tests/support/vercel_ai.py) through the gateway with a tool
turn, generateText and streamText, over chat completions (relayed to an OpenAI fake, translated
to a fake Anthropic) and the Responses API (relayed, bridged to Anthropic, bridged to a chat-only
OpenAI-compatible fake). Skipped where the SDK cannot be installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.agent_fakes import FINAL, SDK_ROUTES, tool_output
from tests.support.gateway import USER_KEY
from tests.support.logrows import rows_when
from tests.support.vercel_ai import VercelAIUnavailable, install_vercel_ai, run_turn


@pytest.fixture(scope="module")
def sdk_prefix() -> Path:
    try:
        return install_vercel_ai()
    except VercelAIUnavailable as exc:
        pytest.skip(f"Vercel AI SDK unavailable: {exc}")


@pytest.mark.parametrize("stream", [False, True], ids=["generate", "stream"])
@pytest.mark.parametrize(("api", "model", "fake"), SDK_ROUTES)
async def test_a_tool_turn(sdk_prefix, agent_gateway, agent_fakes, api, model, fake, stream):
    result = await run_turn(sdk_prefix, agent_gateway.base_url, USER_KEY, model, api, stream)
    assert result == {"text": FINAL, "steps": 2}
    received = agent_fakes[fake].received
    assert "compat-ok" in tool_output(received[-1].body)
    rows = await rows_when(agent_gateway, 2)
    assert {(r["endpoint"], r["status"]) for r in rows} == {(api, "ok")}
