"""A fake OpenAI-compatible upstream (a real aiohttp server on 127.0.0.1) with scripted behaviours.
Records every request it receives so tests can check what the gateway forwarded."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict


def completion(text: str, model: str, usage: dict | None) -> dict:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(model: str, delta: dict | None, finish: str | None = None, usage=None) -> bytes:
    obj = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model}
    obj["choices"] = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    )
    obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def sse_stream(model: str, pieces: list[str], usage: dict | None, usage_in_content=False) -> bytes:
    """An OpenAI stream: role chunk, content chunks, finish chunk, usage chunk, [DONE]."""
    out = [chunk(model, {"role": "assistant", "content": ""})]
    out += [chunk(model, {"content": p}) for p in pieces]
    if usage is not None and usage_in_content:
        out.append(chunk(model, {}, "stop", usage))
    else:
        out.append(chunk(model, {}, "stop"))
        if usage is not None:
            out.append(chunk(model, None, usage=usage))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


@dataclass
class Behaviour:
    """What the fake does with the next requests (tests change it between calls)."""

    text: str = "Hello from upstream"
    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " upstream"])
    usage: dict | None = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    )
    usage_in_content: bool = False
    send_usage_only_when_asked: bool = True
    status: int = 200
    error_body: bytes = (
        b'{"error":{"message":"bad thing","type":"invalid_request_error",'
        b'"param":null,"code":"bad"}}'
    )
    split: int = 0  # >0: write the stream in pieces of this many bytes
    crlf: bool = False
    keepalive_comments: bool = False
    chunk_delay_s: float = 0.0
    hang_s: float = 0.0  # sleep before answering
    close_after_bytes: int = -1  # >=0: drop the connection after this many stream bytes
    fail_times: int = 0  # answer `status` this many times, then 200


@dataclass
class Received:
    headers: dict
    body: dict
    raw: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived (orders several fakes)


class FakeUpstream:
    """Serve POST /v1/chat/completions according to `behaviour`."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self.streamed: list[bytes] = []  # exact bytes sent for each stream
        self.cancelled = 0
        self.server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/v1"))

    async def start(self) -> FakeUpstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.received.append(Received(CIMultiDict(request.headers), body, raw))
        b = self.behaviour
        if b.hang_s:
            await asyncio.sleep(b.hang_s)
        failing = b.status != 200 and (b.fail_times == 0 or len(self.received) <= b.fail_times)
        if failing:
            return web.Response(status=b.status, body=b.error_body, content_type="application/json")
        model = body.get("model", "")
        if not body.get("stream"):
            return web.Response(
                body=orjson.dumps(completion(b.text, model, b.usage)),
                content_type="application/json",
            )
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        usage = b.usage if (asked or not b.send_usage_only_when_asked) else None
        data = sse_stream(model, b.pieces, usage, b.usage_in_content)
        if b.crlf:
            data = data.replace(b"\n", b"\r\n")
        if b.keepalive_comments:
            data = b": keep-alive\n\n" + data.replace(b"data: [DONE]", b": ping\n\ndata: [DONE]")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        step = b.split or len(data)
        sent = b""
        try:
            for i in range(0, len(data), step):
                piece = data[i : i + step]
                if b.close_after_bytes >= 0 and len(sent) + len(piece) > b.close_after_bytes:
                    piece = piece[: b.close_after_bytes - len(sent)]
                    if piece:
                        await response.write(piece)
                        sent += piece
                    self.streamed.append(sent)
                    request.transport.close()
                    return response
                await response.write(piece)
                sent += piece
                if b.chunk_delay_s:
                    await asyncio.sleep(b.chunk_delay_s)
        except (asyncio.CancelledError, ConnectionError):
            self.cancelled += 1
            self.streamed.append(sent)
            raise
        self.streamed.append(sent)
        await response.write_eof()
        return response


async def wait_for(predicate, timeout_s: float = 5.0, every_s: float = 0.02) -> bool:
    """Poll a condition (bounded); True once it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(every_s)
    return predicate()
