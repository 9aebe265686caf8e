"""Fixtures shared by the suite: fake upstreams, a running gateway, OpenAI SDK clients."""

from __future__ import annotations

import openai
import pytest

from tests.support.gateway import OTHER_KEY, USER_KEY, base_config, start_gateway
from tests.support.upstream import FakeUpstream


@pytest.fixture
async def upstream():
    fake = await FakeUpstream().start()
    yield fake
    await fake.close()


@pytest.fixture
def gateway_config(upstream, tmp_path):
    return base_config(upstream.base_url, tmp_path)


@pytest.fixture
async def gateway(gateway_config):
    running = await start_gateway(gateway_config)
    yield running
    await running.close()


@pytest.fixture
async def client(gateway):
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=USER_KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk


@pytest.fixture
async def other_client(gateway):
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=OTHER_KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk
