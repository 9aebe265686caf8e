"""Claude Code itself with a tool turn (its Bash tool runs a command the fake model asks for, and
the result goes back): relayed to a fake Anthropic, translated to an OpenAI-compatible fake and
to a fake Gemini. Whatever the version sends (a system message inside `messages` since 2.1.2xx)
must pass. Skipped where Claude Code cannot be installed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.agent_fakes import (
    CLAUDE_CODE_SHELL,
    FINAL,
    AgentAnthropic,
    AgentGemini,
    AgentUpstream,
    tool_output,
)
from tests.support.claude_code import ClaudeCodeUnavailable, install_claude_code, run_claude
from tests.support.fake_gemini import GOOD_KEY
from tests.support.front_door import PROVIDER_KEY, front_door_config
from tests.support.gateway import USER_KEY, RunningGateway, start_gateway
from tests.support.logrows import log_rows

TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def claude_code() -> Path:
    try:
        return install_claude_code()
    except ClaudeCodeUnavailable as exc:
        pytest.skip(f"Claude Code unavailable: {exc}")


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, AgentUpstream | AgentAnthropic | AgentGemini]]:
    upstream, claude, gemini = AgentUpstream(), AgentAnthropic(), AgentGemini()
    for fake in (upstream, claude, gemini):
        fake.shell = CLAUDE_CODE_SHELL
        await fake.start()
    claude.script.api_key = PROVIDER_KEY
    yield {"openai": upstream, "anthropic": claude, "gemini": gemini}
    for fake in (upstream, claude, gemini):
        await fake.close()


@pytest.fixture
async def gateway(fakes, tmp_path) -> AsyncIterator[RunningGateway]:
    config = front_door_config(fakes["anthropic"].base_url, fakes["openai"].base_url, tmp_path)
    config["providers"]["gem"] = {"type": "gemini", "base_url": fakes["gemini"].base_url,
                                  "api_key": GOOD_KEY}  # fmt: skip
    config["models"]["gemini-flash"] = {"provider": "gem", "model": "gemini-2.5-flash"}
    config["providers"]["fake"]["read_timeout_s"] = 30
    running = await start_gateway(config)
    yield running
    await running.close()


@pytest.mark.parametrize(
    ("model", "fake"),
    [("claude-sonnet", "anthropic"), ("fake-model", "openai"), ("gemini-flash", "gemini")],
)
async def test_claude_code_runs_a_tool_turn(claude_code, gateway, fakes, tmp_path, model, fake):
    work = tmp_path / "work"
    work.mkdir()
    result = await run_claude(
        gateway.url, USER_KEY, "Run the check command.", model=model, workdir=work,
        timeout_s=TIMEOUT_S, tools="Bash",
    )  # fmt: skip
    assert result["result"] == FINAL
    bodies = [r.body for r in fakes[fake].received]
    assert any("compat-ok" in tool_output(body) for body in bodies), "the command did not run"
    rows = await log_rows(gateway)
    assert {(r["endpoint"], r["status"]) for r in rows} == {("messages", "ok")}
