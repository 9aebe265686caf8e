"""Fixtures of the operations tests: real `gateway serve` processes, always killed at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.gateway import free_port

from .procs import GatewayProcess, config_mapping, write_config

Serve = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def serve(tmp_path) -> AsyncIterator[Serve]:
    """`await serve(workers, **config_sections)`: a listening gateway (killed with its group)."""
    started: list[GatewayProcess] = []

    async def start(workers: int, wait: bool = True, **sections: dict) -> GatewayProcess:
        port = free_port()
        mapping = config_mapping(tmp_path, port, **sections)
        path = write_config(tmp_path / "gateway.yaml", mapping)
        gateway = GatewayProcess(path, port, workers, tmp_path)
        started.append(gateway)
        if wait:
            await gateway.wait_listening(workers)
        return gateway

    yield start
    for gateway in started:
        gateway.kill()
