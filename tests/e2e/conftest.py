"""Fixtures of the end-to-end tests: a fresh database on the local PostgreSQL server (shared
between gateways or `gateway serve` processes), and the Anthropic and Gemini fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.agent_fakes import AgentAnthropic, AgentUpstream
from tests.support.databases import fresh_postgres_url
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_gemini import FakeGemini
from tests.support.front_door import PROVIDER_KEY, front_door_config
from tests.support.gateway import RunningGateway, start_gateway


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh database on the shared server, dropped at teardown (request it first, so the
    gateways using it are closed before it goes)."""
    async with fresh_postgres_url() as url:
        yield url


@pytest.fixture
async def agent_fakes() -> AsyncIterator[dict[str, AgentUpstream | AgentAnthropic]]:
    """The fakes that play an agent's tool turn: OpenAI-compatible and Anthropic."""
    upstream, claude = await AgentUpstream().start(), await AgentAnthropic().start()
    claude.script.api_key = PROVIDER_KEY
    yield {"openai": upstream, "anthropic": claude}
    await upstream.close()
    await claude.close()


@pytest.fixture
async def agent_gateway(agent_fakes, tmp_path) -> AsyncIterator[RunningGateway]:
    """A gateway on the agent fakes, with a chat-only provider whose Responses are bridged."""
    fakes = agent_fakes
    config = front_door_config(fakes["anthropic"].base_url, fakes["openai"].base_url, tmp_path)
    config["providers"]["chat-only"] = {**config["providers"]["fake"], "responses": "bridge"}
    config["models"]["local-llm"] = {"provider": "chat-only", "model": "qwen3-coder"}
    running = await start_gateway(config)
    yield running
    await running.close()


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    """The Gemini fake (it accepts fake_gemini.GOOD_KEY)."""
    fake = await FakeGemini().start()
    yield fake
    await fake.close()


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    """The Anthropic fake, accepting only PROVIDER_KEY as the gateway's provider key."""
    fake = await FakeAnthropic().start()
    fake.script.api_key = PROVIDER_KEY
    yield fake
    await fake.close()
