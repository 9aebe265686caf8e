"""Claude Code itself as a client of the gateway's Anthropic front door: run headless with
ANTHROPIC_BASE_URL at the gateway and a gateway key, with the model routed to a fake Anthropic
API (relayed) and to a fake OpenAI-compatible server (translated); the turn completes and the
request log accounts for every call it made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.claude_code import ClaudeCodeUnavailable, install_claude_code, run_claude
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.gateway import USER_KEY, RunningGateway, base_config, start_gateway
from tests.support.logrows import log_rows
from tests.support.upstream import FakeUpstream

TIMEOUT_S = 60.0


SONNET_PRICES = {
    "input_price": 3,
    "output_price": 15,
    "cached_input_price": "0.3",
    "cache_write_price": "3.75",
}


@pytest.fixture(scope="module")
def claude_code() -> Path:
    try:
        return install_claude_code()
    except ClaudeCodeUnavailable as exc:
        pytest.skip(f"Claude Code unavailable: {exc}")


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    fake = await FakeAnthropic().start()
    fake.script.pieces = ["pong ", "from ", "Claude"]
    fake.script.api_key = "sk-ant-provider"
    # what Claude Code's requests look like to Anthropic: mostly cache reads
    s = fake.script
    s.input_tokens, s.cache_read_input_tokens, s.cache_creation_input_tokens = 200, 10_000, 1_000
    s.output_tokens = 50
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(
    claude: FakeAnthropic, upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    config = base_config(upstream.base_url, tmp_path)
    config["providers"]["claude"] = {
        "type": "anthropic",
        "base_url": claude.base_url,
        "api_key": "sk-ant-provider",
    }
    config["models"]["claude-relay"] = {
        "provider": "claude",
        "model": "claude-sonnet-4-5",
        **SONNET_PRICES,
    }
    config["models"]["claude-bridge"] = {"provider": "fake", "model": "upstream-model"}
    running = await start_gateway(config)
    yield running
    await running.close()


@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
async def test_claude_code_through_the_gateway_to_anthropic(
    claude_code: Path,
    gateway: RunningGateway,
    claude: FakeAnthropic,
    tmp_path: Path,
    auth: str,
) -> None:
    result = await run_claude(
        gateway.url,
        USER_KEY,
        "Reply with pong",
        model="claude-relay",
        workdir=tmp_path,
        timeout_s=TIMEOUT_S,
        auth=auth,  # type: ignore[arg-type]  # the helper's Literal
    )
    assert result["is_error"] is False and result["result"] == "pong from Claude"
    [sent] = claude.received
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.headers["x-api-key"] == "sk-ant-provider"
    assert "claude-code-20250219" in sent.headers["anthropic-beta"]
    rows = await log_rows(gateway)
    assert [(r["endpoint"], r["model"], r["status"]) for r in rows] == [
        ("messages", "claude-relay", "ok")
    ]
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (200 + 10_000 + 1_000, 50)
    assert (rows[0]["cached_tokens"], rows[0]["cache_write_tokens"]) == (10_000, 1_000)
    cost = (200 * 3 + 10_000 * Decimal("0.3") + 1_000 * Decimal("3.75") + 50 * 15) / 10**6
    assert Decimal(rows[0]["cost_usd"]) == cost  # $0.0081; all input at $3/M would be $0.03435


async def test_claude_code_through_the_gateway_to_an_openai_model(
    claude_code: Path, gateway: RunningGateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.behaviour.pieces = ["pong ", "from ", "OpenAI"]
    result = await run_claude(
        gateway.url,
        USER_KEY,
        "Reply with pong",
        model="claude-bridge",
        workdir=tmp_path,
        timeout_s=TIMEOUT_S,
    )
    assert result["is_error"] is False and result["result"] == "pong from OpenAI"
    sent = upstream.received[-1].body
    assert sent["model"] == "upstream-model" and sent["stream"] is True
    assert sent["messages"][0]["role"] == "system"
    rows = await log_rows(gateway)
    assert [(r["endpoint"], r["status"]) for r in rows] == [("messages", "ok")]
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (11, 3)
