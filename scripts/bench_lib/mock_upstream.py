"""A very cheap OpenAI-compatible upstream for the bench: a raw asyncio Protocol on uvloop.

HTTP/1.1 keep-alive, POST .../chat/completions only. The answer's shape comes from the model
name, so one mock serves every scenario and the gateway forwards nothing special:

    mock-c<chunks>-d<delay ms>-t<time to first token ms>     e.g. mock-c20-d50-t0

Non-stream: one JSON completion with usage (after the TTFT). Stream (chunked transfer encoding):
<chunks> network writes, the first after the TTFT and the others <delay> ms apart; each carries one
content event, and the last also the finish event, the usage event (only when the request asks
for it with stream_options.include_usage, as OpenAI does) and `data: [DONE]`. Delay 0 sends the
whole stream in one write. Every answer is built once per shape and cached: the mock spends a few
microseconds per request, so it can share a core with the load generator.

Run: python mock_upstream.py --port 9000   (prints "ready <port>" on stdout once listening)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal

import orjson

_SHAPE = re.compile(r"mock-c(\d+)-d(\d+)-t(\d+)$")
_DEFAULT_SHAPE = (20, 0.0, 0.0)
_WORDS = ("Hello", " there", ",", " this", " is", " a", " streamed", " answer", " from", " mock")

_JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"
)
_BAD = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nbad request"
)


def _shape(model: str) -> tuple[int, float, float]:
    match = _SHAPE.match(model)
    if match is None:
        return _DEFAULT_SHAPE
    return max(1, int(match[1])), int(match[2]) / 1000, int(match[3]) / 1000


def _usage(chunks: int) -> dict:
    return {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}


def completion_body(model: str, chunks: int) -> bytes:
    text = "".join(_WORDS[i % len(_WORDS)] for i in range(chunks))
    return orjson.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(chunks),
        }
    )


def _event(model: str, choices: list, usage: dict | None = None) -> bytes:
    obj = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_writes(model: str, chunks: int, include_usage: bool) -> list[bytes]:
    """The network writes of one stream, HTTP chunk framing included (the last ends the body)."""
    writes = []
    for i in range(chunks):
        delta = {"content": _WORDS[i % len(_WORDS)]}
        if i == 0:
            delta = {"role": "assistant", **delta}
        data = _event(model, [{"index": 0, "delta": delta, "finish_reason": None}])
        if i == chunks - 1:
            data += _event(model, [{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if include_usage:
                data += _event(model, [], _usage(chunks))
            data += b"data: [DONE]\n\n"
        writes.append(_http_chunk(data))
    writes[-1] += b"0\r\n\r\n"
    writes[0] = _SSE_HEAD + writes[0]
    return writes


class Answers:
    """Built answers, cached by (model, stream, include_usage)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool, bool], tuple[list[bytes], float, float]] = {}

    def get(self, model: str, stream: bool, include_usage: bool):
        key = (model, stream, include_usage)
        found = self._cache.get(key)
        if found is None:
            chunks, delay, ttft = _shape(model)
            if stream:
                writes = stream_writes(model, chunks, include_usage)
                if delay <= 0:
                    writes = [b"".join(writes)]
            else:
                body = completion_body(model, chunks)
                writes = [_JSON_HEAD % len(body) + body]
            found = self._cache[key] = (writes, delay, ttft)
        return found


class MockProtocol(asyncio.Protocol):
    """One client connection; requests are answered in order (no pipelining needed)."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.pending: list[bytes] = []
        self.busy = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next_request()

    def _next_request(self) -> None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        if len(buf) < end + 4 + length:
            return
        body = bytes(buf[end + 4 : end + 4 + length])
        del buf[: end + 4 + length]
        if not head.startswith(b"post ") or b"/chat/completions " not in head[: head.find(b"\r\n")]:
            self.transport.write(_NOT_FOUND)
            return self._next_request()
        try:
            payload = orjson.loads(body)
            model = str(payload.get("model", ""))
            stream = payload.get("stream") is True
            options = payload.get("stream_options") or {}
            include_usage = options.get("include_usage") is True
        except (orjson.JSONDecodeError, AttributeError):
            self.transport.write(_BAD)
            return self._next_request()
        writes, delay, ttft = self.answers.get(model, stream, include_usage)
        self.busy = True
        self.pending = list(writes)
        self.delay = delay
        loop = asyncio.get_running_loop()
        if ttft > 0:
            self.timer = loop.call_later(ttft, self._write_next)
        else:
            self._write_next()

    def _write_next(self) -> None:
        self.timer = None
        if self.transport is None:
            return
        self.transport.write(self.pending.pop(0))
        if self.pending:
            self.timer = asyncio.get_running_loop().call_later(self.delay, self._write_next)
            return
        self.busy = False
        if self.buf:
            self._next_request()


def run(coro) -> None:
    """Run on uvloop when it is installed (it is a gateway dependency), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    answers = Answers()
    server = await loop.create_server(
        lambda: MockProtocol(answers), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
