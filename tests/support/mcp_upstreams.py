"""The upstream MCP servers of the MCP tests (FastMCP, tests/support/mcp_http_server.py over
Streamable HTTP in its own process, mcp_stdio_server.py over stdio started by the gateway), the
gateway config naming them, and an `mcp` SDK client session on the gateway's /mcp."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from tests.support.gateway import RunningGateway, free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0


class HttpMcpServer:
    """tests/support/mcp_http_server.py in a subprocess on a free port; `stop` and `start`
    again (same port) play an outage."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> HttpMcpServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.mcp_http_server", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            await asyncio.sleep(0.05)
        raise RuntimeError("the MCP HTTP server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def mcp_config(http: HttpMcpServer | None, tmp_path: Path) -> dict[str, Any]:
    """mcp_servers: `calc` over Streamable HTTP (given `http`), `files` over stdio (its pid in
    tmp_path/pid)."""
    calc = {"url": http.url, "headers": {"X-Upstream-Token": "calc-secret"}} if http else None
    return {
        **({"calc": calc} if calc else {}),
        "files": {
            "command": sys.executable,
            "args": ["-m", "tests.support.mcp_stdio_server"],
            "env": {"MCP_PID_FILE": str(tmp_path / "pid"), "PYTHONPATH": str(ROOT)},
        },
    }


async def admin_mcp(gateway: RunningGateway, admin_key: str) -> dict[str, dict[str, Any]]:
    """GET /admin/mcp, by server name."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            f"{gateway.url}/admin/mcp", headers={"Authorization": f"Bearer {admin_key}"}
        )
    answer.raise_for_status()
    return {s["name"]: s for s in answer.json()["data"]}


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    """Wait (bounded) for `check` to hold."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.1)


async def servers_up(gateway: RunningGateway, admin_key: str, *names: str) -> None:
    async def up() -> bool:
        servers = await admin_mcp(gateway, admin_key)
        return all(servers[n]["state"] == "up" for n in names)

    await until(up)


@contextlib.asynccontextmanager
async def mcp_session(
    gateway: RunningGateway,
    key: str,
    notifications: list[types.ServerNotification] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized `mcp` SDK session on the gateway's /mcp as `key`; server notifications
    are appended to `notifications`."""

    async def on_message(message: Any) -> None:
        if notifications is not None and isinstance(message, types.ServerNotification):
            notifications.append(message)

    client = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=httpx.Timeout(30, read=300)
    )
    async with (
        client,
        streamable_http_client(f"{gateway.url}/mcp", http_client=client) as (read, write, _),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session
