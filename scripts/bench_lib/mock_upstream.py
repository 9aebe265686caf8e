"""A very cheap upstream for the bench: a raw asyncio Protocol on uvloop, speaking OpenAI's chat
completions, embeddings and Responses API and Anthropic's Messages API.

HTTP/1.1 keep-alive; POST .../chat/completions, .../embeddings, .../responses and /v1/messages
(see mock_answers.py for the bytes). The answer's shape comes from the model name, so one mock
serves every scenario and the gateway forwards nothing special:

    mock-c<chunks>-d<delay ms>-t<time to first token ms>     e.g. mock-c20-d50-t0

Non-stream: one JSON answer with usage (after the TTFT). Stream (chunked transfer encoding):
<chunks> network writes, the first after the TTFT and the others <delay> ms apart; each carries one
text delta, the first also opens the answer and the last also closes it (usage included; for chat
only when the request asks for it with stream_options.include_usage, as OpenAI does). Delay 0
sends the whole stream in one write. Every answer is built once per shape and cached: the mock
spends a few microseconds per request, so it can share a core with the load generator.

Run: python mock_upstream.py --port 9000   (prints "ready <port>" on stdout once listening)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, cast

import orjson
from mock_answers import Answers, kind_of

_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"
)
_BAD = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nbad request"
)


def _inputs(value: object) -> int:
    """How many vectors an embeddings `input` asks for."""
    if isinstance(value, list) and value and not isinstance(value[0], int):
        return len(value)
    return 1


class MockProtocol(asyncio.Protocol):
    """One client connection; requests are answered in order (no pipelining needed)."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.pending: list[bytes] = []
        self.delay = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next_request()

    def _next_request(self) -> None:
        transport = self.transport
        if transport is None:
            return
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
        request_line = head[: head.find(b"\r\n")].split(b" ")
        kind = kind_of(request_line[1]) if len(request_line) == 3 else None
        if request_line[0] != b"post" or kind is None:
            transport.write(_NOT_FOUND)
            return self._next_request()
        try:
            payload = orjson.loads(body)
            model = str(payload.get("model", ""))
            stream = payload.get("stream") is True
            options = payload.get("stream_options") or {}
            include_usage = options.get("include_usage") is True
            inputs = _inputs(payload.get("input")) if kind == "embeddings" else 0
        except (orjson.JSONDecodeError, AttributeError):
            transport.write(_BAD)
            return self._next_request()
        answer = self.answers.get(kind, model, stream, include_usage, inputs)
        self.busy = True
        self.pending = list(answer.writes)
        self.delay = answer.delay
        loop = asyncio.get_running_loop()
        if answer.ttft > 0:
            self.timer = loop.call_later(answer.ttft, self._write_next)
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


def run(coro: Coroutine[Any, Any, None]) -> None:
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
