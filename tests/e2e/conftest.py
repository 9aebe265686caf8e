"""Fixtures of the end-to-end tests that share the local PostgreSQL server between gateways or
`gateway serve` processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.databases import fresh_postgres_url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh database on the shared server, dropped at teardown (request it first, so the
    gateways using it are closed before it goes)."""
    async with fresh_postgres_url() as url:
        yield url
