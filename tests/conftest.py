"""Fixtures shared by the suite: fake upstreams, a running gateway, OpenAI SDK clients, a
private PostgreSQL cluster for the outage tests, and a private Redis Cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clients import sdk
from tests.support.gateway import OTHER_KEY, base_config, start_gateway
from tests.support.pgcluster import PrivateCluster
from tests.support.redis_servers import PrivateRedisCluster
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


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """Each database backend in turn, for tests that start gateways with `gateway_on`."""
    return request.param


@pytest.fixture
async def client(gateway):
    async with sdk(gateway) as alice:
        yield alice


@pytest.fixture
async def other_client(gateway):
    async with sdk(gateway, OTHER_KEY) as bob:
        yield bob


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A started private PostgreSQL cluster, always stopped and removed afterwards."""
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    """A 3-master Redis Cluster shared by the session (tests keep apart by key prefix); started
    on first use, always killed and removed at the end."""
    cluster = PrivateRedisCluster(masters=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
