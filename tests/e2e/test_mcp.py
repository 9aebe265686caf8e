"""The MCP gateway (SPEC 17) driven by the official `mcp` SDK client: two upstream servers
written with FastMCP (`calc` over Streamable HTTP, `files` over stdio, started by the gateway)
merged behind /mcp; allow-lists on keys and teams (SQLite and PostgreSQL), rpm, the request
log and metrics; a killed stdio server and a stopped HTTP server come back by themselves while
the other keeps working; a bad key and bad JSON-RPC get clear errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import types
from mcp.shared.exceptions import McpError

from gateway.web.keys import MCP_FRONT
from tests.support.budgets import admin_ok, new_key
from tests.support.gateway import (
    ADMIN_KEY,
    OTHER_KEY,
    USER_KEY,
    RunningGateway,
    base_config,
    gateway_on,
    start_gateway,
)
from tests.support.mcp_upstreams import (
    HttpMcpServer,
    admin_mcp,
    mcp_config,
    mcp_session,
    servers_up,
    until,
)

FILES_TOOLS = {"files__whoami", "files__reverse", "files__nap"}
ALL_TOOLS = {"calc__add", "calc__shout", "calc__token", "calc__broken", *FILES_TOOLS}


@pytest.fixture
async def calc() -> AsyncIterator[HttpMcpServer]:
    server = await HttpMcpServer().start()
    yield server
    server.stop()


def _config(calc: HttpMcpServer, tmp_path: Path) -> dict[str, Any]:
    config = base_config("http://127.0.0.1:9/v1", tmp_path)
    config["mcp_servers"] = mcp_config(calc, tmp_path)
    config["quota"]["tiers"]["tight"] = {"rpm": 2, "tpd": 0}
    return config


@pytest.fixture
async def gateway(calc: HttpMcpServer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway_on(_config(calc, tmp_path), "sqlite") as running:
        await servers_up(running, ADMIN_KEY, "calc", "files")
        yield running


async def _mcp_rows(gateway: RunningGateway) -> list[dict[str, Any]]:
    assert await gateway.services.writer.flush(timeout_s=5)
    page = await admin_ok(gateway, "GET", "/admin/requests?endpoint=mcp&limit=100")
    return list(reversed(page["data"]))


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_tools_resources_and_prompts_of_both_servers_through_one_endpoint(
    gateway: RunningGateway,
) -> None:
    async with mcp_session(gateway, USER_KEY) as session:
        listed = await session.list_tools()
        assert {t.name for t in listed.tools} == ALL_TOOLS
        add = next(t for t in listed.tools if t.name == "calc__add")
        assert add.description == "Add two integers."
        assert set(add.inputSchema["properties"]) == {"a", "b"}

        assert _text(await session.call_tool("calc__add", {"a": 2, "b": 40})) == "42"
        assert _text(await session.call_tool("files__reverse", {"text": "stressed"})) == "desserts"
        # the configured headers reach the HTTP server
        assert _text(await session.call_tool("calc__token", {})) == "calc-secret"
        # a tool's own failure comes back as the tool's error result, not a protocol error
        broken = await session.call_tool("calc__broken", {})
        assert broken.isError and "the calculator is broken" in _text(broken)
        with pytest.raises(McpError, match="Unknown tool: calc__nope"):
            await session.call_tool("calc__nope", {})

        resources = await session.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["notes://today"]
        today = await session.read_resource(resources.resources[0].uri)
        assert [c.text for c in today.contents if isinstance(c, types.TextResourceContents)] == [
            "buy milk"
        ]
        templates = await session.list_resource_templates()
        assert [t.uriTemplate for t in templates.resourceTemplates] == ["notes://{day}"]
        monday = await session.read_resource("notes://monday")  # type: ignore[arg-type]
        assert monday.contents[0].text == "note of monday"  # type: ignore[union-attr]

        prompts = await session.list_prompts()
        assert [p.name for p in prompts.prompts] == ["calc__review"]
        prompt = await session.get_prompt("calc__review", {"code": "x = 1"})
        assert prompt.messages[0].content.text == "Please review this code:\nx = 1"  # type: ignore[union-attr]

    rows = await _mcp_rows(gateway)
    assert [(r["model"], r["provider"], r["status"]) for r in rows] == [
        ("calc__add", "calc", "ok"),
        ("files__reverse", "files", "ok"),
        ("calc__token", "calc", "ok"),
        ("calc__broken", "calc", "tool_error"),
        ("calc__nope", None, "rejected"),
    ]
    assert all(r["user"] == "alice" and r["endpoint"] == "mcp" for r in rows)
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{gateway.url}/metrics")).text
    assert 'gateway_mcp_calls_total{server="calc",status="ok"} 2.0' in metrics
    assert 'gateway_mcp_calls_total{server="files",status="ok"} 1.0' in metrics
    assert 'gateway_mcp_calls_total{server="calc",status="tool_error"} 1.0' in metrics

    servers = await admin_mcp(gateway, ADMIN_KEY)
    assert servers["calc"]["state"] == "up" and servers["calc"]["transport"] == "http"
    assert servers["files"]["state"] == "up" and servers["files"]["transport"] == "stdio"
    assert {t["name"] for t in servers["files"]["tools"]} == FILES_TOOLS


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_allow_lists_on_keys_and_teams(
    postgres_url: str, calc: HttpMcpServer, tmp_path: Path, database: str
) -> None:
    async with gateway_on(_config(calc, tmp_path), database) as gateway:
        await servers_up(gateway, ADMIN_KEY, "calc", "files")
        await admin_ok(gateway, "POST", "/admin/teams",
                       {"id": "tools", "mcp_tools": ["calc__*", "files__reverse"]})  # fmt: skip
        key = await new_key(gateway, user="carol", mcp_tools=["calc__add", "files__*"])
        teamed = await new_key(
            gateway, user="dave", team="tools", mcp_tools=["calc__add", "files__*"]
        )
        listed = await admin_ok(gateway, "GET", "/admin/keys?user=carol")
        assert listed["data"][0]["mcp_tools"] == ["calc__add", "files__*"]

        async with mcp_session(gateway, key) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert names == {"calc__add", *FILES_TOOLS}
            with pytest.raises(McpError, match="Unknown tool: calc__shout"):
                await session.call_tool("calc__shout", {"text": "no"})
            assert _text(await session.call_tool("calc__add", {"a": 1, "b": 1})) == "2"

        async with mcp_session(gateway, teamed) as session:  # the key's list and the team's
            names = {t.name for t in (await session.list_tools()).tools}
            assert names == {"calc__add", "files__reverse"}
            with pytest.raises(McpError, match="Unknown tool: files__whoami"):
                await session.call_tool("files__whoami", {})

        key_id = listed["data"][0]["id"]
        await admin_ok(gateway, "PATCH", f"/admin/keys/{key_id}", {"mcp_tools": None})
        async with mcp_session(gateway, key) as session:
            assert {t.name for t in (await session.list_tools()).tools} == ALL_TOOLS

        rows = await _mcp_rows(gateway)
        assert [(r["model"], r["status"]) for r in rows] == [
            ("calc__shout", "rejected"), ("calc__add", "ok"), ("files__whoami", "rejected"),
        ]  # fmt: skip


async def test_tool_calls_count_against_the_rpm(gateway: RunningGateway) -> None:
    key = await new_key(gateway, user="erin", tier="tight")  # 2 requests a minute
    async with mcp_session(gateway, key) as session:
        for _ in range(2):
            await session.call_tool("calc__add", {"a": 1, "b": 2})
        with pytest.raises(McpError, match="Rate limit reached: 2 requests per minute"):
            await session.call_tool("calc__add", {"a": 1, "b": 2})
        await session.list_tools()  # listing is not a call: it still works
    rows = await _mcp_rows(gateway)
    assert [r["status"] for r in rows] == ["ok", "ok", "rate_limited"]


async def test_a_killed_stdio_server_is_restarted_and_the_other_keeps_working(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    notes: list[types.ServerNotification] = []
    async with mcp_session(gateway, USER_KEY, notes) as session:
        first = int(_text(await session.call_tool("files__whoami", {})))
        os.kill(first, signal.SIGKILL)

        async def files_gone() -> bool:
            return "files__whoami" not in {t.name for t in (await session.list_tools()).tools}

        await until(files_gone)
        # only its own tools went; the HTTP server's answer in the same session
        assert _text(await session.call_tool("calc__add", {"a": 3, "b": 4})) == "7"
        with pytest.raises(McpError, match="Unknown tool: files__whoami"):
            await session.call_tool("files__whoami", {})

        async def files_back() -> bool:
            return "files__whoami" in {t.name for t in (await session.list_tools()).tools}

        await until(files_back)
        second = int(_text(await session.call_tool("files__whoami", {})))
        assert second != first
        assert any(isinstance(n.root, types.ToolListChangedNotification) for n in notes)
    servers = await admin_mcp(gateway, ADMIN_KEY)
    assert servers["files"]["state"] == "up" and servers["files"]["restarts"] >= 1


async def test_a_stopped_http_server_drops_its_tools_and_returns(
    gateway: RunningGateway, calc: HttpMcpServer
) -> None:
    async with mcp_session(gateway, USER_KEY) as session:
        calc.stop()

        async def calc_down() -> bool:
            return (await admin_mcp(gateway, ADMIN_KEY))["calc"]["state"] != "up"

        await until(calc_down)
        names = {t.name for t in (await session.list_tools()).tools}
        assert names == FILES_TOOLS
        assert _text(await session.call_tool("files__reverse", {"text": "ab"})) == "ba"
        await calc.start()
        await servers_up(gateway, ADMIN_KEY, "calc")
        assert _text(await session.call_tool("calc__add", {"a": 5, "b": 5})) == "10"


async def test_a_bad_key_gets_401_and_bad_json_rpc_an_mcp_error(gateway: RunningGateway) -> None:
    url = f"{gateway.url}/mcp"
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer sk-gw-" + "x" * 40}):
            answer = await http.post(url, json=init, headers={**accept, **headers})
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "invalid_api_key"
        with pytest.raises(Exception) as caught:
            async with mcp_session(gateway, "sk-wrong"):
                pass
        assert "401" in repr(caught.value) or "401" in str(caught.value.__cause__)

        auth = {**accept, "Authorization": f"Bearer {USER_KEY}"}
        for body in (b"{not json", b'{"jsonrpc": "2.0", "id": 1}', b"[1, 2]"):
            answer = await http.post(url, content=body, headers=auth)
            assert 400 <= answer.status_code < 500, (body, answer.status_code, answer.text)
            error = answer.json()["error"]
            assert error["code"] in (-32700, -32600, -32602), error
        # in a session: an unknown method is a JSON-RPC error
        opened = await http.post(url, json=init, headers=auth)
        session_id = opened.headers["mcp-session-id"]
        sid = {**auth, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}
        # a session belongs to the key that opened it
        stranger = {**sid, "Authorization": f"Bearer {OTHER_KEY}"}
        ping = {"jsonrpc": "2.0", "id": 9, "method": "ping"}
        assert (await http.post(url, json=ping, headers=stranger)).status_code == 404
        await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                        headers=sid)  # fmt: skip
        answer = await http.post(
            url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/explode"}, headers=sid
        )
        assert answer.status_code == 200  # an SSE answer holding the JSON-RPC error
        [data] = [line[5:] for line in answer.text.splitlines() if line.startswith("data:")]
        reply = json.loads(data)
        assert reply["id"] == 2 and reply["error"]["code"] in (-32601, -32602)


async def test_an_open_session_does_not_hold_up_shutdown(
    calc: HttpMcpServer, tmp_path: Path
) -> None:
    config = _config(calc, tmp_path)
    config["server"]["shutdown_grace_s"] = 120  # what an idle notification stream would cost
    gateway = await start_gateway(config)
    try:
        await servers_up(gateway, ADMIN_KEY, "calc", "files")
        async with mcp_session(gateway, USER_KEY) as session:
            await session.list_tools()  # the client now holds its GET stream open
            # the drain ends the stream and the stdio server: well within the grace period
            await asyncio.wait_for(gateway.close(), 60)
    finally:
        await gateway.close()


async def test_a_server_that_cannot_start_is_down_and_retried(tmp_path: Path) -> None:
    config = base_config("http://127.0.0.1:9/v1", tmp_path)
    config["mcp_servers"] = {"ghost": {"command": str(tmp_path / "no-such-server")}}
    async with gateway_on(config, "sqlite") as gateway:

        async def retried() -> bool:
            ghost = (await admin_mcp(gateway, ADMIN_KEY))["ghost"]
            return ghost["restarts"] >= 2 and ghost["error"] is not None

        await until(retried)
        ghost = (await admin_mcp(gateway, ADMIN_KEY))["ghost"]
        assert ghost["state"] in ("down", "starting") and ghost["tools"] == []
        async with mcp_session(gateway, USER_KEY) as session:  # the gateway itself answers
            assert (await session.list_tools()).tools == []
            with pytest.raises(McpError, match="Unknown tool: ghost__x"):
                await session.call_tool("ghost__x", {})


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer of a POST, sent as JSON or as one SSE event."""
    if response.headers["content-type"].startswith("text/event-stream"):
        [data] = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        return dict(json.loads(data))
    return dict(response.json())


async def test_a_session_opened_in_another_process_is_still_served(
    gateway: RunningGateway, calc: HttpMcpServer, tmp_path: Path
) -> None:
    """Workers (and instances) hold their own sessions: a request carrying a session another one
    opened is answered all the same (without state), never 404; its GET stream is a 405."""
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    other_config = _config(calc, other_folder)
    other_config["database"] = {**other_config["database"], "url": gateway.config.database.url}
    async with gateway_on(other_config, "sqlite") as other:
        await servers_up(other, ADMIN_KEY, "calc", "files")
        headers = {"Accept": "application/json, text/event-stream",
                   "Authorization": f"Bearer {USER_KEY}"}  # fmt: skip
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
        async with httpx.AsyncClient(timeout=30) as http:
            opened = await http.post(f"{gateway.url}/mcp", json=init, headers=headers)
            sid = {**headers, "mcp-session-id": opened.headers["mcp-session-id"],
                   "mcp-protocol-version": "2025-06-18"}  # fmt: skip
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "calc__add", "arguments": {"a": 20, "b": 22}}}  # fmt: skip
            answer = await http.post(f"{other.url}/mcp", json=call, headers=sid)
            assert answer.status_code == 200, answer.text
            assert _answer(answer)["result"]["content"][0]["text"] == "42"
            tools_list = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
            listed = await http.post(f"{other.url}/mcp", json=tools_list, headers=sid)
            assert len(_answer(listed)["result"]["tools"]) == len(ALL_TOOLS)
            stream = await http.get(f"{other.url}/mcp", headers=sid)
            assert stream.status_code == 405
            # the process that opened it still holds it
            again = await http.post(f"{gateway.url}/mcp", json={**call, "id": 4}, headers=sid)
            assert _answer(again)["result"]["content"][0]["text"] == "42"


async def test_a_server_busy_with_a_long_call_is_not_taken_for_dead(
    gateway: RunningGateway,
) -> None:
    """A stdio server running a blocking tool answers no ping meanwhile; while a call is in
    flight that does not make it down (restarting it would kill the call)."""
    async with mcp_session(gateway, USER_KEY) as session:
        pid = _text(await session.call_tool("files__whoami", {}))
        napped = await session.call_tool("files__nap", {"seconds": 8})  # > ping every + timeout
        assert _text(napped) == "rested"
        assert _text(await session.call_tool("files__whoami", {})) == pid
    servers = await admin_mcp(gateway, ADMIN_KEY)
    assert servers["files"]["restarts"] == 0 and servers["files"]["state"] == "up"


async def test_a_call_in_flight_when_its_server_dies_gets_an_mcp_error(
    gateway: RunningGateway,
) -> None:
    async with mcp_session(gateway, USER_KEY) as session:
        pid = int(_text(await session.call_tool("files__whoami", {})))
        napping = asyncio.create_task(session.call_tool("files__nap", {"seconds": 600}))

        async def in_flight() -> bool:
            return gateway.runner.app[MCP_FRONT].hub.upstreams["files"].in_flight == 1

        await until(in_flight)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(McpError, match="MCP server `files` failed"):
            await napping
    rows = await _mcp_rows(gateway)
    assert [(r["model"], r["status"]) for r in rows][-1] == ("files__nap", "upstream_error")
