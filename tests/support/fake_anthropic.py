"""A fake Anthropic Messages API (a real aiohttp server on 127.0.0.1) with scripted answers.
Speaks the documented wire format, records every request, and builds the exact bytes it sends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests.support.json_sample import sample

Json = dict[str, Any]

# Anthropic's error type for each HTTP status it uses (its "Errors" page).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Tool:
    """A tool call the fake makes; its input streams as these input_json_delta fragments."""

    name: str = "get_weather"
    id: str = "toolu_01FakeWeather"
    fragments: list[str] = field(default_factory=lambda: ['{"city": ', '"Par', 'is", "days": 3}'])

    @property
    def input(self) -> Json:
        parsed: Json = orjson.loads("".join(self.fragments))
        return parsed


@dataclass
class Script:
    """What the fake answers to the next requests (tests change it between calls)."""

    message_id: str = "msg_01FakeAnswer"
    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " Claude"])
    thinking: list[str] | None = None  # thinking_delta pieces of a thinking block before the text
    signature: str = "EqQBCgIYAhIM"  # the thinking block's signature_delta
    tool: Tool | None = None  # a tool_use block after the text
    stop_reason: str | None = None  # None: "tool_use" when there is a tool, else "end_turn"
    input_tokens: int = 25
    cache_creation_input_tokens: int = 4
    cache_read_input_tokens: int = 10
    cache_creation_1h_input_tokens: int = 0  # >0: `cache_creation` splits the writes 5m / 1h
    output_tokens: int = 12
    delta_usage_full: bool = False  # message_delta repeats the input counts (newer API versions)
    pings: bool = True
    count_tokens: int = 42  # the answer of /v1/messages/count_tokens
    api_key: str | None = None  # when set, any other x-api-key gets 401 authentication_error
    status: int = 200  # non-200: answer with Anthropic's error body for this status
    error_type: str | None = None  # None: the type Anthropic uses for `status`
    error_message: str = "scripted failure"
    fail_times: int = 0  # answer `status` this many times, then succeed (0: always)
    split: int = 0  # >0: write the stream in pieces of this many bytes
    error_after_events: int = -1  # >=0: an `error` event (overloaded) after this many events
    close_after_bytes: int = -1  # >=0: drop the connection after this many stream bytes
    hold_open_s: float = 0.0  # keep the stream open this long after message_stop

    @property
    def final_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool is not None else "end_turn"


@dataclass
class Received:
    path: str
    headers: CIMultiDict[str]
    body: Json
    raw: bytes


def usage(script: Script) -> Json:
    counts: Json = {
        "input_tokens": script.input_tokens,
        "cache_creation_input_tokens": script.cache_creation_input_tokens,
        "cache_read_input_tokens": script.cache_read_input_tokens,
        "output_tokens": script.output_tokens,
    }
    if script.cache_creation_1h_input_tokens:
        one_hour = script.cache_creation_1h_input_tokens
        counts["cache_creation"] = {
            "ephemeral_5m_input_tokens": script.cache_creation_input_tokens - one_hour,
            "ephemeral_1h_input_tokens": one_hour,
        }
    return counts


def message(model: str, script: Script) -> Json:
    """The non-stream answer: thinking, text and tool_use blocks, as the scripted stream builds."""
    content: list[Json] = []
    if script.thinking is not None:
        content.append(
            {
                "type": "thinking",
                "thinking": "".join(script.thinking),
                "signature": script.signature,
            }
        )
    if script.pieces:
        content.append({"type": "text", "text": "".join(script.pieces)})
    if script.tool is not None:
        tool = script.tool
        content.append({"type": "tool_use", "id": tool.id, "name": tool.name, "input": tool.input})
    return {
        "id": script.message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": script.final_stop_reason,
        "stop_sequence": None,
        "usage": usage(script),
    }


def stream_events(model: str, script: Script) -> list[tuple[str, Json]]:
    """The documented event sequence for the script, as (event name, data) pairs."""
    start = message(model, script) | {"content": [], "stop_reason": None}
    start["usage"] = usage(script) | {"output_tokens": 1}
    events: list[tuple[str, Json]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    blocks: list[tuple[Json, list[Json]]] = []
    if script.thinking is not None:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in script.thinking]
        deltas.append({"type": "signature_delta", "signature": script.signature})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    if script.pieces:
        deltas = [{"type": "text_delta", "text": p} for p in script.pieces]
        blocks.append(({"type": "text", "text": ""}, deltas))
    if script.tool is not None:
        tool = script.tool
        # Anthropic's first input_json_delta of a tool block is empty, as in its documentation.
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in ["", *tool.fragments]]
        blocks.append(({"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}, deltas))
    for index, (block, deltas) in enumerate(blocks):
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        if index == 0 and script.pings:
            events.append(("ping", {"type": "ping"}))
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta_usage: Json = {"output_tokens": script.output_tokens}
    if script.delta_usage_full:
        delta_usage = usage(script)
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": script.final_stop_reason, "stop_sequence": None},
                "usage": delta_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    if script.error_after_events >= 0:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        events = [*events[: script.error_after_events], ("error", error)]
    return events


def encode(events: list[tuple[str, Json]]) -> bytes:
    """Events as Anthropic writes them: an `event:` line, a `data:` line, a blank line."""
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        for name, data in events
    )


def stream_bytes(model: str, script: Script) -> bytes:
    """The exact bytes the fake streams for this script (before any close_after_bytes cut)."""
    return encode(stream_events(model, script))


def error_body(status: int, message: str, kind: str | None = None) -> bytes:
    """Anthropic's error JSON; `kind` defaults to the type Anthropic uses for `status`."""
    error = {"type": kind or ERROR_TYPES.get(status, "api_error"), "message": message}
    return orjson.dumps({"type": "error", "error": error, "request_id": "req_fake_error"})


def api_key(request: web.Request) -> str | None:
    """The key a request carries: `x-api-key`, or a bearer token (what SDK 2.x sends)."""
    key = request.headers.get("x-api-key")
    if key is not None:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def forced(script: Script, body: Json) -> Script:
    """The script for a request whose `tool_choice` forces one tool, as Anthropic answers it: no
    text, one call of that tool with an input that follows its `input_schema`."""
    choice = body.get("tool_choice") or {}
    tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
    if choice.get("type") != "tool" or choice.get("name") not in tools:
        return script
    schema = tools[choice["name"]].get("input_schema") or {}
    arguments = orjson.dumps(sample(schema)).decode()
    fragments = [arguments[i : i + 9] for i in range(0, len(arguments), 9)]
    tool = Tool(name=choice["name"], id="toolu_01FakeForced", fragments=fragments)
    return replace(script, pieces=[], thinking=None, tool=tool)


class FakeAnthropic:
    """Serves POST /v1/messages and /v1/messages/count_tokens according to `script`."""

    def __init__(self) -> None:
        self.script = Script()
        self.received: list[Received] = []
        self.streamed: list[bytes] = []  # the exact bytes sent for each stream
        self.server: TestServer | None = None

    @property
    def base_url(self) -> str:
        """The provider's base_url (the SDK and the gateway append /v1/messages)."""
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> FakeAnthropic:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _receive(self, request: web.Request) -> tuple[Json, web.Response | None]:
        """Record the request; return its body and the error answer it gets, if any."""
        raw = await request.read()
        body = orjson.loads(raw)
        self.received.append(Received(request.path, CIMultiDict(request.headers), body, raw))
        s = self.script
        if "anthropic-version" not in request.headers:
            # What Anthropic answers too: the header is required on every request.
            return body, self._error(400, "anthropic-version: header is required", None)
        if s.api_key is not None and api_key(request) != s.api_key:
            return body, self._error(401, "invalid x-api-key", None)
        if s.status != 200 and (s.fail_times == 0 or len(self.received) <= s.fail_times):
            return body, self._error(s.status, s.error_message, s.error_type)
        return body, None

    def _error(self, status: int, message: str, kind: str | None) -> web.Response:
        return web.Response(
            status=status,
            body=error_body(status, message, kind),
            content_type="application/json",
            headers={"request-id": "req_fake_error"},
        )

    async def _count_tokens(self, request: web.Request) -> web.Response:
        _, failure = await self._receive(request)
        if failure is not None:
            return failure
        return web.json_response({"input_tokens": self.script.count_tokens})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body, failure = await self._receive(request)
        if failure is not None:
            return failure
        model = str(body.get("model", ""))
        script = forced(self.script, body)
        if not body.get("stream"):
            return web.Response(
                body=orjson.dumps(message(model, script)),
                content_type="application/json",
                headers={"request-id": "req_fake_ok"},
            )
        return await self._stream(request, stream_bytes(model, script))

    async def _stream(self, request: web.Request, data: bytes) -> web.StreamResponse:
        s = self.script
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "request-id": "req_fake_ok",
            }
        )
        await response.prepare(request)
        if s.close_after_bytes >= 0:
            data = data[: s.close_after_bytes]
        step = s.split or len(data) or 1
        sent = b""
        try:
            for i in range(0, len(data), step):
                await response.write(data[i : i + step])
                sent += data[i : i + step]
                if s.split:
                    await asyncio.sleep(0)  # let each piece go out on its own
        finally:
            self.streamed.append(sent)
        if s.hold_open_s:
            await asyncio.sleep(s.hold_open_s)
        if s.close_after_bytes >= 0:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response
