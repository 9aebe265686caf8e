"""Claude Code run headless against a recording fake of Anthropic's API (no gateway yet): a turn
completes with the fake's text, over the endpoints and headers the front door must serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.claude_code import (
    ClaudeCodeError,
    ClaudeCodeUnavailable,
    install_claude_code,
    run_claude,
)
from tests.support.recording_anthropic import MESSAGES, FakeAnthropic

KEY = "sk-gw-claude-code-test"
MODEL = "gateway-test-model"
TIMEOUT_S = 45.0


@pytest.fixture(scope="module")
def claude_code() -> Path:
    try:
        return install_claude_code()
    except ClaudeCodeUnavailable as exc:
        pytest.skip(f"Claude Code unavailable: {exc}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = await FakeAnthropic(pieces=["Gateway", " fake", " says: ", "pong 7431"]).start()
    yield server
    await server.close()


async def test_a_turn_completes_with_the_fakes_text(
    claude_code: Path, fake: FakeAnthropic, tmp_path: Path
) -> None:
    result = await run_claude(
        fake.url, KEY, "Reply with pong", model=MODEL, workdir=tmp_path, timeout_s=TIMEOUT_S
    )
    assert result["result"] == "Gateway fake says: pong 7431"
    assert result["is_error"] is False
    # Only the Messages endpoint, and at most a warm-up HEAD of the base URL.
    assert {(c.method, c.path.split("?")[0]) for c in fake.calls} <= {
        ("POST", MESSAGES),
        ("HEAD", "/"),
    }
    [call] = fake.messages()
    assert call.headers["x-api-key"] == KEY
    assert "authorization" not in call.headers
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert "claude-code-20250219" in call.headers["anthropic-beta"].split(",")
    assert call.body["model"] == MODEL
    assert call.body["stream"] is True
    assert call.body["tools"] == []
    assert "Reply with pong" in str(call.body["messages"])


async def test_an_auth_token_is_sent_as_bearer(
    claude_code: Path, fake: FakeAnthropic, tmp_path: Path
) -> None:
    result = await run_claude(
        fake.url, KEY, "Reply with pong", model=MODEL, workdir=tmp_path,
        timeout_s=TIMEOUT_S, auth="bearer",
    )  # fmt: skip
    assert result["result"] == fake.text
    [call] = fake.messages()
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in call.headers


async def test_an_api_error_ends_the_run_with_its_status(
    claude_code: Path, fake: FakeAnthropic, tmp_path: Path
) -> None:
    fake.error = (401, "authentication_error")
    with pytest.raises(ClaudeCodeError) as failed:
        await run_claude(
            fake.url, KEY, "Reply with pong", model=MODEL, workdir=tmp_path, timeout_s=TIMEOUT_S
        )
    assert failed.value.returncode == 1
    assert failed.value.result["api_error_status"] == 401
    assert "fake authentication_error" in failed.value.result["result"]
    assert len(fake.messages()) == 1  # max_retries=0: no retry
