"""SPEC 14, endings: a stream whose end marker reached the client is `ok`/200 in the request log
even when the client hangs up at once while upstream still holds the connection open (as Codex
and the Agents SDK do); an answer cut short stays `client_closed`/499."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.clients import bearer
from tests.support.front_door import ToolCallingUpstream, front_door_config
from tests.support.gateway import USER_KEY, RunningGateway, start_gateway
from tests.support.logrows import rows_when

HOLD_S = 0.3  # how long the fakes keep a stream open after its last byte
HI = [{"role": "user", "content": "Hi"}]
# (path, model, body fields, the end marker the client reads before hanging up)
CASES = [
    ("/v1/chat/completions", "fake-model", {"messages": HI}, b"data: [DONE]"),
    ("/v1/chat/completions", "claude-sonnet", {"messages": HI}, b"data: [DONE]"),
    ("/v1/responses", "fake-model", {"input": "Hi"}, b"event: response.completed"),
    ("/v1/responses", "claude-sonnet", {"input": "Hi"}, b"event: response.completed"),
    ("/v1/messages", "claude-sonnet", {"messages": HI, "max_tokens": 9}, b"event: message_stop"),
    ("/v1/messages", "fake-model", {"messages": HI, "max_tokens": 9}, b"event: message_stop"),
]


@pytest.fixture
async def upstream() -> AsyncIterator[ToolCallingUpstream]:
    fake = await ToolCallingUpstream().start()
    fake.behaviour.hold_open_s = HOLD_S
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(claude, upstream, tmp_path) -> AsyncIterator[RunningGateway]:
    claude.script.hold_open_s = HOLD_S
    running = await start_gateway(front_door_config(claude.base_url, upstream.base_url, tmp_path))
    yield running
    await running.close()


async def read_until_then_hang_up(gateway: RunningGateway, path: str, body: dict, marker: bytes):
    """Stream `body` and hang up as soon as the whole event holding `marker` has arrived."""
    headers = {**bearer(USER_KEY), "x-api-key": USER_KEY, "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}{path}", json=body, headers=headers) as resp,
    ):
        assert resp.status == 200
        seen = b""
        while not (marker in seen and seen.endswith(b"\n\n")):
            chunk = await resp.content.readany()
            assert chunk, f"the stream ended before {marker!r}"
            seen += chunk
        resp.close()  # hang up while upstream still holds the connection
    return seen


@pytest.mark.parametrize(("path", "model", "fields", "marker"), CASES)
async def test_a_client_that_hangs_up_after_the_end_marker_is_ok(
    gateway, path, model, fields, marker
):
    body = {"model": model, "stream": True, **fields}
    await read_until_then_hang_up(gateway, path, body, marker)
    [row] = await rows_when(gateway, 1)
    assert (row["status"], row["status_code"]) == ("ok", 200), row["error"]
    assert row["completion_tokens"] > 0


async def test_a_client_that_hangs_up_before_the_end_marker_is_client_closed(gateway, upstream):
    upstream.behaviour.pieces = [f" word{i}" for i in range(40)]
    upstream.behaviour.split, upstream.behaviour.chunk_delay_s = 64, 0.05
    body = {"model": "fake-model", "stream": True, "messages": HI}
    await read_until_then_hang_up(gateway, "/v1/chat/completions", body, b"word1")
    [row] = await rows_when(gateway, 1)
    assert (row["status"], row["status_code"]) == ("client_closed", 499)


async def test_a_bridged_response_read_to_its_end_is_stored_though_the_client_hung_up(gateway):
    body = {"model": "claude-sonnet", "stream": True, "input": "Hi"}
    seen = await read_until_then_hang_up(gateway, "/v1/responses", body, b"response.completed")
    response_id = seen.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
    await rows_when(gateway, 1)
    async with aiohttp.ClientSession() as http:
        url = f"{gateway.url}/v1/responses/{response_id}"
        async with http.get(url, headers=bearer(USER_KEY)) as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "completed"
