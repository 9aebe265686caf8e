"""The Anthropic front door's end-to-end tests share these: the gateway's config with an
`anthropic` provider beside the OpenAI fake, an OpenAI fake that calls tools, and clients."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.support.gateway import USER_KEY, RunningGateway, base_config
from tests.support.upstream import FakeUpstream

PROVIDER_KEY = "sk-ant-provider-secret"
TIGHT_KEY = "sk-test-user-tight"  # a tier of 1 request per minute
UPSTREAM_ID = "claude-sonnet-4-5"
HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
# The Anthropic fake's usage: 25 input + 4 cache creation + 10 cache read, 12 output.
PROMPT, OUTPUT = 39, 12


def front_door_config(claude_url: str, upstream_url: str, tmp_path: Path) -> dict[str, Any]:
    """base_config plus `claude-sonnet` on the Anthropic fake, `claude-or-fake` falling back to
    `fake-model`, and TIGHT_KEY (user carol) on a tier of 1 request per minute."""
    config = base_config(upstream_url, tmp_path)
    config["providers"]["claude"] = {
        "type": "anthropic",
        "base_url": claude_url,
        "api_key": PROVIDER_KEY,
    }
    config["models"]["claude-sonnet"] = {
        "provider": "claude",
        "model": UPSTREAM_ID,
        "input_price": 3,
        "output_price": 15,
    }
    config["models"]["claude-or-fake"] = {
        "deployments": [{"provider": "claude", "model": UPSTREAM_ID}],
        "fallbacks": ["fake-model"],
    }
    config["auth"]["keys"].append({"key": TIGHT_KEY, "user": "carol", "tier": "tight"})
    config["quota"]["tiers"]["tight"] = {"rpm": 1, "tpd": 0}
    return config


class ToolCallingUpstream(FakeUpstream):
    """The OpenAI fake, but chat answers call `tool_call` ({"name", "arguments", "call_id"})
    when one is set: a `tool_calls` message, or its chunks with the arguments in pieces."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        call = self.behaviour.tool_call
        if call is None:
            return await super().handle(request)
        body, failure = await self._admit(request)
        if failure is not None:
            return failure
        model, usage = body.get("model", ""), self.behaviour.usage
        head = {"id": "chatcmpl-tool", "created": 1, "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(call)]}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            answer = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            return web.json_response(answer, dumps=lambda o: orjson.dumps(o).decode())
        arguments = call["arguments"]
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
        first = _tool_call(call) | {"index": 0}
        first["function"] = {"name": call["name"], "arguments": ""}
        deltas.append({"tool_calls": [first]})
        for i in range(0, len(arguments), 5):
            piece = {"index": 0, "function": {"arguments": arguments[i : i + 5]}}
            deltas.append({"tool_calls": [piece]})
        chunks = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
        chunks.append({"index": 0, "delta": {}, "finish_reason": "tool_calls"})
        events = [{**head, "object": "chat.completion.chunk", "choices": [c]} for c in chunks]
        events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        data = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
        return await self._stream(request, data + b"data: [DONE]\n\n")


def _tool_call(call: dict[str, str]) -> dict[str, Any]:
    function = {"name": call["name"], "arguments": call["arguments"]}
    return {"id": call["call_id"], "type": "function", "function": function}


def claude_sdk(gateway: RunningGateway, key: str = USER_KEY) -> anthropic.AsyncAnthropic:
    """An Anthropic SDK client of the gateway as `key`: no retries, a 10 s timeout."""
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=10)


async def post(
    gateway: RunningGateway,
    body: dict[str, Any] | bytes,
    *,
    path: str = "/v1/messages",
    key: str = USER_KEY,
    headers: dict[str, str] | None = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    """One raw request with only `x-api-key` (what Anthropic's docs show): (status, headers,
    exact body bytes)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    sent = {"x-api-key": key, "anthropic-version": "2023-06-01", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}{path}", data=data, headers={**sent, **(headers or {})}) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event of a stream the gateway wrote (`event:` then `data:`)."""
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            assert name.startswith("event: ") and data.startswith("data: "), block
            out.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


def cost(prompt: int, completion: int, input_price: str, output_price: str) -> Decimal:
    """What the request log bills for these tokens at these prices (USD per million tokens)."""
    return (prompt * Decimal(input_price) + completion * Decimal(output_price)) / 10**6


def anthropic_error(raw: bytes, kind: str) -> str:
    """The message of an error body in Anthropic's shape, after checking its type."""
    body = orjson.loads(raw)
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    return str(body["error"]["message"])
