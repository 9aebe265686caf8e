"""Claude Code and Codex as clients of the MCP gateway: each is given the gateway's /mcp with a
gateway key (`claude mcp add --transport http ... --header "Authorization: Bearer ..."`, and
`mcp_servers` in Codex's config), its model (a fake behind the gateway) asks for the `calc`
server's `shout` tool, and the tool's answer goes back to the model. Skipped where the agent
cannot be installed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.agent_fakes import FINAL, AgentAnthropic, AgentUpstream, ShellTool, tool_output
from tests.support.budgets import admin_ok
from tests.support.claude_code import ClaudeCodeUnavailable, install_claude_code, run_claude
from tests.support.codex import CodexUnavailable, install_codex, run_codex
from tests.support.front_door import PROVIDER_KEY, front_door_config
from tests.support.gateway import ADMIN_KEY, USER_KEY, RunningGateway, start_gateway
from tests.support.mcp_upstreams import HttpMcpServer, mcp_config, servers_up

TIMEOUT_S = 90.0
SHOUTED = "ECHO COMPAT-OK!"  # calc's shout of the fakes' COMMAND


@pytest.fixture
async def calc() -> AsyncIterator[HttpMcpServer]:
    server = await HttpMcpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[AgentUpstream, AgentAnthropic]]:
    upstream, claude = await AgentUpstream().start(), await AgentAnthropic().start()
    claude.script.api_key = PROVIDER_KEY
    yield upstream, claude
    await upstream.close()
    await claude.close()


@pytest.fixture
async def gateway(fakes, calc, tmp_path) -> AsyncIterator[RunningGateway]:
    upstream, claude = fakes
    config = front_door_config(claude.base_url, upstream.base_url, tmp_path)
    config["providers"]["fake"]["read_timeout_s"] = 30
    # Codex offers MCP tools as a Responses `namespace` (`mcp__gw`): on the chat bridge it is
    # flattened to `mcp__gw__<tool>`, and the chat fake calls that name
    config["providers"]["chat-only"] = {**config["providers"]["fake"], "responses": "bridge"}
    config["models"]["local-llm"] = {"provider": "chat-only", "model": "qwen3-coder"}
    config["mcp_servers"] = mcp_config(calc, tmp_path)
    running = await start_gateway(config)
    await servers_up(running, ADMIN_KEY, "calc", "files")
    yield running
    await running.close()


async def _mcp_rows(gateway: RunningGateway) -> list[tuple[str, str]]:
    assert await gateway.services.writer.flush(timeout_s=5)
    page = await admin_ok(gateway, "GET", "/admin/requests?endpoint=mcp&limit=100")
    return [(r["model"], r["status"]) for r in page["data"]]


async def test_claude_code_calls_a_tool_through_the_gateway(gateway, fakes, tmp_path) -> None:
    try:
        install_claude_code()
    except ClaudeCodeUnavailable as exc:
        pytest.skip(f"Claude Code unavailable: {exc}")
    _, claude = fakes
    claude.shell = ShellTool("mcp__gw__calc__shout", "text")
    work = tmp_path / "work"
    work.mkdir()
    add = ["mcp", "add", "--transport", "http", "gw", f"{gateway.url}/mcp",
           "--header", f"Authorization: Bearer {USER_KEY}"]  # fmt: skip
    result = await run_claude(
        gateway.url, USER_KEY, "Shout the check command.", model="claude-sonnet", workdir=work,
        timeout_s=TIMEOUT_S, allowed="mcp__gw__calc__shout", setup=[add],
    )  # fmt: skip
    assert result["result"] == FINAL
    bodies = [r.body for r in claude.received]
    assert any(SHOUTED in tool_output(body) for body in bodies), "the tool's answer is missing"
    assert await _mcp_rows(gateway) == [("calc__shout", "ok")]


async def test_codex_calls_a_tool_through_the_gateway(gateway, fakes, tmp_path) -> None:
    try:
        exe = install_codex()
    except CodexUnavailable as exc:
        pytest.skip(f"Codex unavailable: {exc}")
    upstream, _ = fakes
    upstream.shell = ShellTool("mcp__gw__calc__shout", "text")
    server = f'{{url="{gateway.url}/mcp", bearer_token_env_var="GATEWAY_KEY"}}'
    run = await run_codex(
        exe, gateway.base_url, USER_KEY, "local-llm", "Shout the check command.",
        config=[f"mcp_servers.gw={server}"],
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert FINAL in run.stdout, run.stderr[-3000:]
    # its MCP client (rmcp) kept its session: no "session expired with 404" and the like
    assert "ERROR rmcp" not in run.stderr, run.stderr[-3000:]
    bodies = [r.body for r in upstream.received]
    assert any(SHOUTED in tool_output(body) for body in bodies), run.stderr[-3000:]
    assert await _mcp_rows(gateway) == [("calc__shout", "ok")]
