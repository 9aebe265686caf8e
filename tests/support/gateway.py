"""Start the real gateway app in-process on a free 127.0.0.1 port, from a config mapping.
The runner is set up exactly as `gateway serve` does (handler cancellation on, drain on cleanup)."""

from __future__ import annotations

import contextlib
import copy
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from gateway.config import Config, parse
from gateway.web.app import create_app
from gateway.web.keys import SERVICES
from gateway.web.services import Services
from tests.support.databases import ADMIN_URL, REDIS_URL, fresh_postgres_url

USER_KEY = "sk-test-user-a"
OTHER_KEY = "sk-test-user-b"
ADMIN_KEY = "sk-test-admin"


def base_config(upstream_url: str, tmp_path, *, database: str = "sqlite", redis: str = "memory"):
    """A config mapping: fake upstream provider `fake`, echo, two users, generous limits."""
    db_url = f"sqlite:///{tmp_path}/gateway.db" if database == "sqlite" else ADMIN_URL
    redis_url = "memory://" if redis == "memory" else REDIS_URL
    return {
        "server": {"max_body_bytes": 65536, "shutdown_grace_s": 5},
        "database": {
            "url": db_url,
            "spill_path": f"{tmp_path}/spill.jsonl",
            "flush_interval_s": 0.01,
        },
        "redis": {"url": redis_url, "prefix": f"gwtest-{uuid.uuid4().hex[:8]}"},
        "auth": {
            "admin_key": ADMIN_KEY,
            "keys": [
                {"key": USER_KEY, "user": "alice", "tier": "pro"},
                {"key": OTHER_KEY, "user": "bob", "tier": "pro"},
            ],
            "cache_refresh_s": 0.2,
        },
        "providers": {
            "fake": {
                "type": "openai",
                "base_url": upstream_url,
                "api_key": "sk-upstream-secret",
                "read_timeout_s": 2,
                "timeout_s": 10,
                "connect_timeout_s": 1,
            },
            "unset": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": ""},
            "echo": {"type": "echo"},
        },
        "models": {
            "fake-model": {
                "provider": "fake",
                "model": "upstream-model",
                "input_price": 1.5,
                "output_price": 2.0,
            },
            "needs-key": {"provider": "unset", "model": "x"},
            "echo": {"provider": "echo", "model": "echo"},
        },
        "quota": {
            "default_tier": "free",
            "tiers": {"free": {"rpm": 5, "tpd": 1000}, "pro": {"rpm": 1000, "tpd": 0}},
        },
        "sessions": {"history_max_tokens": 8000, "history_max_messages": 50},
        "routing": {"backoff_base_s": 0.001, "backoff_max_s": 0.005},
    }


@dataclass
class RunningGateway:
    runner: web.AppRunner
    url: str
    config: Config

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def services(self) -> Services:
        return self.runner.app[SERVICES]

    async def close(self) -> None:
        await self.runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused_port() -> tuple[int, socket.socket]:
    """A port that refuses connections for as long as the returned socket stays open: bound and
    never listening, so no server started later (a gateway on port 0) can be given it."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder.getsockname()[1], holder


async def start_gateway(mapping: dict, *, port: int | None = None, **overrides) -> RunningGateway:
    mapping = copy.deepcopy(mapping)
    for key, value in overrides.items():
        mapping[key] = value
    config = parse(mapping, "test-config", {})
    app = create_app(config)
    runner = web.AppRunner(
        app, handler_cancellation=True, access_log=None,
        shutdown_timeout=config.server.shutdown_grace_s,
    )  # fmt: skip
    await runner.setup()
    port = port or free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return RunningGateway(runner, f"http://127.0.0.1:{port}", config)


@contextlib.asynccontextmanager
async def gateway_on(mapping: dict, database: str) -> AsyncIterator[RunningGateway]:
    """A gateway from `mapping` on `database`: "sqlite" keeps the mapping's database, "postgres"
    puts it in a fresh PostgreSQL database (dropped once the gateway is closed)."""
    async with contextlib.AsyncExitStack() as stack:
        if database == "postgres":
            mapping["database"]["url"] = await stack.enter_async_context(fresh_postgres_url())
        running = await start_gateway(mapping)
        try:
            yield running
        finally:
            await running.close()
