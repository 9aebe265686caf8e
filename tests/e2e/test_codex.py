"""Codex CLI itself (`codex exec`, pinned in tests/support/codex.py) as a client of the gateway's
/v1/responses with a tool turn: relayed to an OpenAI fake, bridged to a fake Anthropic, and
bridged to a chat-only OpenAI-compatible fake. Skipped where Codex cannot be installed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.support.agent_fakes import (
    COMMAND,
    FINAL,
    AgentAnthropic,
    AgentUpstream,
    offered_tools,
    tool_output,
)
from tests.support.codex import CodexUnavailable, install_codex, run_codex
from tests.support.front_door import PROVIDER_KEY, front_door_config
from tests.support.gateway import USER_KEY, RunningGateway, start_gateway
from tests.support.logrows import rows_when

# (model, route, which fake answers)
ROUTES = [("fake-model", "relayed", "openai"), ("claude-sonnet", "bridged", "anthropic"),
          ("local-llm", "chat-only", "openai")]  # fmt: skip


@pytest.fixture(scope="module")
def codex() -> Path:
    try:
        return install_codex()
    except CodexUnavailable as exc:
        pytest.skip(f"Codex unavailable: {exc}")


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[AgentUpstream, AgentAnthropic]]:
    upstream, claude = await AgentUpstream().start(), await AgentAnthropic().start()
    claude.script.api_key = PROVIDER_KEY
    yield upstream, claude
    await upstream.close()
    await claude.close()


@pytest.fixture
async def gateway(fakes, tmp_path) -> AsyncIterator[RunningGateway]:
    upstream, claude = fakes
    config = front_door_config(claude.base_url, upstream.base_url, tmp_path)
    config["providers"]["chat-only"] = {**config["providers"]["fake"], "responses": "bridge"}
    config["models"]["local-llm"] = {"provider": "chat-only", "model": "qwen3-coder"}
    config["providers"]["fake"]["read_timeout_s"] = 30
    running = await start_gateway(config)
    yield running
    await running.close()


@pytest.mark.parametrize(("model", "route", "fake"), ROUTES)
async def test_codex_exec_runs_a_tool_turn(codex, gateway, fakes, model, route, fake):
    upstream, claude = fakes
    run = await run_codex(codex, gateway.base_url, USER_KEY, model, "Run the check command.")
    assert run.returncode == 0, run.stderr[-3000:]
    assert FINAL in run.stdout, run.stderr[-3000:]
    received = [r.body for r in upstream.received] if fake == "openai" else [
        r.body for r in claude.received
    ]  # fmt: skip
    assert len(received) >= 2
    assert "compat-ok" in tool_output(received[-1]), f"{COMMAND} did not run ({route})"
    if route != "relayed":  # Codex's namespace tools flattened, its web_search left out
        names = offered_tools(received[0])
        assert any(name.startswith("multi_agent") and "__" in name for name in names), names
        assert "web_search" not in orjson.dumps(received[0]["tools"]).decode()
    paths = {r.path for r in upstream.received}
    if route == "chat-only":
        assert paths == {"/v1/chat/completions"}
    elif route == "relayed":
        assert paths == {"/v1/responses"}
    rows = await rows_when(gateway, len(received))
    assert {(r["endpoint"], r["status"]) for r in rows} == {("responses", "ok")}
