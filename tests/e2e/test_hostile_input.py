"""Hostile input (issue 24): bad bytes in headers refused before anything goes upstream, a
recording failure that still settles the budget and counts the tokens, out-of-range integers
refused with a 400 naming the field, and model names that would inject an upstream path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tests.support.budgets import budget_config, chat, gateways, set_user_budget, settled, usage
from tests.support.clients import sdk
from tests.support.gateway import USER_KEY, RunningGateway

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}
MESSAGE = {"model": "fake-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def start() -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[RunningGateway]]]:
    async with gateways() as starter:
        yield starter


async def raw_post(
    gateway: RunningGateway, path: str, body: dict[str, Any], headers: dict[str, bytes]
) -> tuple[int, dict[str, Any]]:
    """POST with header values sent as exact bytes (no client would send them): (status, JSON)."""
    url = urlsplit(gateway.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    data = json.dumps(body).encode()  # orjson cannot write integers beyond 64 bits
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers.items())
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(data)}\r\nConnection: close\r\n".encode()
        + head
        + b"\r\n"
        + data
    )
    raw = await reader.read()
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), orjson.loads(payload)


async def test_bad_bytes_in_tags_are_a_400_in_the_apis_shape_before_upstream(
    upstream, tmp_path, start
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    auth = f"Bearer {USER_KEY}".encode()
    tags = b"team-a,caf\xff"
    status, body = await raw_post(
        gateway, "/v1/chat/completions", CHAT, {"Authorization": auth, "X-Gateway-Tags": tags}
    )
    assert status == 400
    assert body["error"]["param"] == "X-Gateway-Tags"
    status, body = await raw_post(
        gateway, "/v1/messages", MESSAGE, {"x-api-key": USER_KEY.encode(), "X-Gateway-Tags": tags}
    )
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    status, body = await raw_post(
        gateway,
        "/v1/messages",
        MESSAGE,
        {"x-api-key": USER_KEY.encode(), "anthropic-beta": b"tools-\xff"},
    )
    assert (status, body["type"]) == (400, "error")
    assert upstream.received == []


async def test_invalid_utf8_in_a_key_is_a_401(upstream, tmp_path, start):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    status, body = await raw_post(
        gateway, "/v1/chat/completions", CHAT, {"Authorization": b"Bearer sk-\xff\xfe"}
    )
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")
    status, _ = await raw_post(
        gateway, "/admin/teams", {"id": "x"}, {"Authorization": b"Bearer \xff"}
    )
    assert status == 401
    assert upstream.received == []


async def test_a_failing_recording_still_settles_the_budget_and_counts_the_tokens(
    upstream, tmp_path, start
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    await set_user_budget(gateway, "alice", Decimal(1), "daily")

    def broken(_row: Any) -> None:
        raise RuntimeError("the writer is broken")

    gateway.services.recorder.writer.submit = broken  # type: ignore[method-assign]
    async with sdk(gateway) as client:
        replies = [await chat(client, stream=stream, max_tokens=100) for stream in (False, True)]
    assert [r.status for r in replies] == [200, 200]
    # The fake answers 11 + 3 tokens at 1.5 and 2.0 USD per million.
    cost = (11 * Decimal("1.5") + 3 * Decimal("2.0")) / 1_000_000
    state = (await settled(gateway, USER_KEY))["user"]
    assert Decimal(state["spend_usd"]) == 2 * cost
    assert (await usage(gateway, USER_KEY))["tokens"]["used"] == 2 * 14


@pytest.mark.parametrize(
    "model",
    [
        "az/x/../../../_reset?",
        "az/x?api-version=2020-01-01",
        "az/x#fragment",
        "az/..",
        "gem/gemini-2.5-flash:countTokens",
        "gem/../tunedModels/other",
    ],
)
async def test_a_model_name_cannot_leave_its_upstream_path_segment(
    upstream, tmp_path, start, model
):
    config = budget_config(upstream.base_url, tmp_path, "memory")
    config["providers"]["az"] = {"type": "azure", "base_url": upstream.root_url,
                                 "api_key": "k", "api_version": "2024-10-21"}  # fmt: skip
    config["providers"]["gem"] = {"type": "gemini", "base_url": upstream.root_url, "api_key": "k"}
    config["models"]["az/*"] = {"provider": "az"}
    config["models"]["gem/*"] = {"provider": "gem"}
    gateway = await start(config)
    async with sdk(gateway) as client:
        refused = await chat(client, model)
        encoded = await chat(client, "az/my deployment")
    assert (refused.status, refused.param, refused.code) == (400, "model", "invalid_value")
    assert encoded.status == 200
    assert [r.path for r in upstream.received] == [
        "/openai/deployments/my deployment/chat/completions"
    ]


HUGE = [10**30, 1e30, 2**31]
CASES = [
    ("/v1/chat/completions", {**CHAT, "stream": False}, "max_tokens"),
    ("/v1/chat/completions", CHAT, "max_completion_tokens"),
    ("/v1/chat/completions", CHAT, "seed"),
    ("/v1/completions", {"model": "fake-model", "prompt": "hi"}, "max_tokens"),
    ("/v1/completions", {"model": "fake-model", "prompt": "hi"}, "best_of"),
    ("/v1/responses", {"model": "fake-model", "input": "hi"}, "max_output_tokens"),
    ("/v1/messages", MESSAGE, "max_tokens"),
    ("/v1/messages", {**MESSAGE, "stream": True}, "top_k"),
]


@pytest.mark.parametrize(("path", "body", "field"), CASES)
async def test_an_integer_out_of_range_is_a_400_naming_it(
    upstream, tmp_path, start, path, body, field
):
    gateway = await start(budget_config(upstream.base_url, tmp_path, "memory"))
    auth = {"Authorization": f"Bearer {USER_KEY}".encode()}
    for value in [10**30, 1e30, 2**64] if field == "seed" else HUGE:
        status, answer = await raw_post(gateway, path, {**body, field: value}, auth)
        assert status == 400, (value, answer)
        error = answer["error"]
        assert field in error["message"], (value, error)
        if path != "/v1/messages":  # Anthropic's error shape has no param
            assert error["param"] == field
    status, answer = await raw_post(gateway, "/v1/chat/completions", {**CHAT, "n": 129}, auth)
    assert (status, answer["error"]["param"]) == (400, "n")
    assert upstream.received == []
