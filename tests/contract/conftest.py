"""Fixtures of the Store contract tests: every test that takes `backend` or `store` runs on
SQLite (a temp file) and on PostgreSQL (a fresh database on the local server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import Store
from tests.support.stores import Backend, open_backend


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend in turn, without schema."""
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
async def store(backend: Backend) -> Store:
    """The backend's store with the schema applied."""
    await backend.store.migrate()
    return backend.store
