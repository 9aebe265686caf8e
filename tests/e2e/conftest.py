"""Fixtures of the end-to-end tests: a fresh database on the local PostgreSQL server (shared
between gateways or `gateway serve` processes), and the Anthropic and Gemini fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.databases import fresh_postgres_url
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_gemini import FakeGemini
from tests.support.front_door import PROVIDER_KEY


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh database on the shared server, dropped at teardown (request it first, so the
    gateways using it are closed before it goes)."""
    async with fresh_postgres_url() as url:
        yield url


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
