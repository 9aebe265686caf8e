"""A recording fake of Anthropic's Messages API on 127.0.0.1 (aiohttp): streamed and plain
answers to POST /v1/messages, counts for /v1/messages/count_tokens, 404 for anything else."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"


@dataclass
class Call:
    """One request the fake received, whatever its method and path."""

    method: str
    path: str  # with the query string
    headers: CIMultiDict[str]
    raw: bytes
    status: int = 0  # what the fake answered
    at: float = field(default_factory=time.monotonic)

    @property
    def body(self) -> Any:
        """The JSON body, or None when there is none or it is not JSON."""
        try:
            return orjson.loads(self.raw) if self.raw else None
        except orjson.JSONDecodeError:
            return None


def message(text: str, model: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """A complete Messages API answer holding one text block."""
    return {
        "id": "msg_fake0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def event(kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event as Anthropic frames it: `event:` line, `data:` line, blank line."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def message_events(
    pieces: list[str], model: str, input_tokens: int, output_tokens: int
) -> list[bytes]:
    """The event sequence of a streamed answer whose one text block is `pieces` joined."""
    start = message("", model, input_tokens, 1)
    start["content"], start["stop_reason"] = [], None
    events = [
        event("message_start", {"type": "message_start", "message": start}),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        event("ping", {"type": "ping"}),
    ]
    events += [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
        )
        for p in pieces
    ]
    events += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return events


class FakeAnthropic:
    """Answers every Messages call with `pieces` joined (streamed when asked) and records every
    request in `calls`, in arrival order."""

    def __init__(self, pieces: list[str] | None = None, input_tokens: int = 42) -> None:
        self.pieces = pieces or ["Hello from", " the fake", " Anthropic"]
        self.input_tokens = input_tokens
        # (status, error type): answer Messages calls with this Anthropic error instead
        self.error: tuple[int, str] | None = None
        self.calls: list[Call] = []
        self.server: TestServer | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def url(self) -> str:
        """The root URL, `http://127.0.0.1:<port>` (what ANTHROPIC_BASE_URL takes)."""
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def messages(self) -> list[Call]:
        """The POST /v1/messages calls."""
        return [c for c in self.calls if c.method == "POST" and c.path.split("?")[0] == MESSAGES]

    async def start(self) -> FakeAnthropic:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(request.method, request.path_qs, CIMultiDict(request.headers), b"")
        self.calls.append(call)
        call.raw = await request.read()
        route = (request.method, request.path)
        body = call.body if isinstance(call.body, dict) else {}
        if route == ("POST", COUNT_TOKENS):
            call.status = 200
            return web.json_response({"input_tokens": self.input_tokens}, dumps=_dumps)
        if route != ("POST", MESSAGES):
            call.status = 404
            error = {"type": "not_found_error", "message": f"no route {request.path}"}
            return web.json_response({"type": "error", "error": error}, status=404, dumps=_dumps)
        if self.error is not None:
            call.status, kind = self.error
            error = {"type": kind, "message": f"fake {kind}"}
            return web.json_response(
                {"type": "error", "error": error}, status=call.status, dumps=_dumps
            )
        call.status = 200
        model = str(body.get("model", ""))
        output_tokens = len(self.pieces)
        if not body.get("stream"):
            answer = message(self.text, model, self.input_tokens, output_tokens)
            return web.json_response(answer, dumps=_dumps)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for chunk in message_events(self.pieces, model, self.input_tokens, output_tokens):
            await response.write(chunk)
        await response.write_eof()
        return response


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
