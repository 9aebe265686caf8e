"""Claude Code through the gateway's Anthropic front door to Claude on the clouds: Bedrock's
InvokeModelWithResponseStream (Anthropic's events in event-stream frames) and Vertex's
streamRawPredict, each behind its fake (SigV4 checked; OAuth token checked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.claude_code import ClaudeCodeUnavailable, install_claude_code, run_claude
from tests.support.fake_bedrock import FakeBedrock, bedrock_config
from tests.support.fake_vertex import FakeVertex, vertex_config
from tests.support.gateway import USER_KEY, start_gateway
from tests.support.logrows import log_rows

TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def claude_code() -> Path:
    try:
        return install_claude_code()
    except ClaudeCodeUnavailable as exc:
        pytest.skip(f"Claude Code unavailable: {exc}")


@pytest.fixture
async def bedrock() -> AsyncIterator[FakeBedrock]:
    fake = await FakeBedrock().start()
    fake.claude.pieces = ["pong ", "from ", "Bedrock"]
    fake.split = 17
    yield fake
    await fake.close()


@pytest.fixture
async def vertex() -> AsyncIterator[FakeVertex]:
    fake = await FakeVertex().start()
    fake.script.pieces = ["pong ", "from ", "Vertex"]
    fake.script.split = 17
    yield fake
    await fake.close()


async def test_claude_code_to_claude_on_bedrock(
    claude_code: Path, bedrock: FakeBedrock, upstream, tmp_path: Path
) -> None:
    running = await start_gateway(bedrock_config(bedrock, upstream.base_url, tmp_path))
    try:
        result = await run_claude(
            running.url,
            USER_KEY,
            "Reply with pong",
            model="claude-bedrock",
            workdir=tmp_path,
            timeout_s=TIMEOUT_S,
        )
        rows = await log_rows(running)
    finally:
        await running.close()
    assert result["is_error"] is False and result["result"] == "pong from Bedrock"
    assert bedrock.refused == []
    sent = bedrock.received[-1]
    assert sent.action == "invoke-with-response-stream"
    assert sent.body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in sent.body
    assert "claude-code-20250219" in sent.body["anthropic_beta"]
    assert {(r["endpoint"], r["provider"], r["status"]) for r in rows} == {
        ("messages", "aws", "ok")
    }


async def test_claude_code_to_claude_on_vertex(
    claude_code: Path, vertex: FakeVertex, upstream, tmp_path: Path
) -> None:
    running = await start_gateway(vertex_config(vertex, upstream.base_url, tmp_path))
    try:
        result = await run_claude(
            running.url,
            USER_KEY,
            "Reply with pong",
            model="claude-vertex",
            workdir=tmp_path,
            timeout_s=TIMEOUT_S,
        )
        rows = await log_rows(running)
    finally:
        await running.close()
    assert result["is_error"] is False and result["result"] == "pong from Vertex"
    sent = vertex.claude[-1]
    assert sent.method == "streamRawPredict"
    assert sent.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.body
    assert "claude-code-20250219" in sent.headers["anthropic-beta"]
    assert {(r["endpoint"], r["provider"], r["status"]) for r in rows} == {
        ("messages", "gcp", "ok")
    }
