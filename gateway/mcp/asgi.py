"""Serve one aiohttp request through an ASGI application (the MCP SDK's Streamable HTTP
transport is ASGI): the body streamed in as `http.request` messages, the answer streamed out as
it is sent, a hang-up reported as `http.disconnect`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

Message = MutableMapping[str, Any]
App = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade"})
BODY_CHUNK = 65536
HANGUP_POLL_S = 0.5


def http_scope(request: web.Request, extra: dict[str, Any]) -> dict[str, Any]:
    """The ASGI HTTP scope of `request`, with `extra` entries added."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host, port = [*request.host.rsplit(":", 1), "80"][:2] if request.host else ("", "80")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode(),
        "query_string": request.query_string.encode(),
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": (host, int(port) if port.isdigit() else 80),
        "state": {},
        **extra,
    }  # fmt: skip


class Bridge:
    """One request's trip through an ASGI app; `response` is what aiohttp sends back."""

    def __init__(self, request: web.Request):
        self.request = request
        self.response: web.StreamResponse | None = None
        self._status = 500
        self._headers: list[tuple[str, str]] = []
        self._body_done = False
        self._finished = asyncio.Event()

    def hang_up(self) -> None:
        """End the exchange as if the client had gone (a GET stream, at shutdown)."""
        self._finished.set()

    async def receive(self) -> Message:
        if not self._body_done:
            chunk = await self.request.content.read(BODY_CHUNK)
            more = not self.request.content.at_eof()
            self._body_done = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        # The body is read: wait for the answer to end or the client to hang up.
        while not self._finished.is_set():
            transport = self.request.transport
            if transport is None or transport.is_closing():
                break
            try:
                await asyncio.wait_for(self._finished.wait(), HANGUP_POLL_S)
            except TimeoutError:
                continue
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = int(message["status"])
            self._headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
            ]
            return
        if kind != "http.response.body":
            return
        if self._finished.is_set():
            return  # the client hung up: what is left goes nowhere (as ASGI servers do)
        body = message.get("body", b"")
        try:
            response = await self._started()
            if body:
                await response.write(body)
            if not message.get("more_body", False):
                await response.write_eof()
                self._finished.set()
        except ConnectionError:  # the client hung up; receive() now says so
            self._finished.set()

    async def _started(self) -> web.StreamResponse:
        if self.response is None:
            response = web.StreamResponse(status=self._status)
            for name, value in self._headers:
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    response.headers.add(name, value)
            if any(n.lower() == "content-length" for n, _ in self._headers):
                response.content_length = int(
                    next(v for n, v in self._headers if n.lower() == "content-length")
                )
            await response.prepare(self.request)
            self.response = response
        return self.response

    async def run(self, app: App, extra: dict[str, Any]) -> web.StreamResponse:
        """Serve the request through `app`; a response that sent no body gets an empty one.

        The app runs in a task of its own: when the client hangs up, aiohttp cancels this
        handler, but the app is not cancelled (an ASGI server never does that); it is told
        `http.disconnect` and ends by itself. (The SDK drops a session whose opening request
        was cancelled, and some clients hang up as soon as they have read the answer.)"""
        scope = http_scope(self.request, extra)

        async def serve() -> None:
            await app(scope, self.receive, self.send)

        task = asyncio.get_running_loop().create_task(serve())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self._finished.set()  # the client is gone: receive() says so, send() writes nothing
            _winding_down.add(task)
            task.add_done_callback(_winding_down.discard)
            raise
        finally:
            self._finished.set()
        response = await self._started()
        with contextlib.suppress(ConnectionError):
            await response.write_eof()  # a no-op when the app ended the body itself
        return response


# Apps still ending after their client hung up (held so the tasks are not collected early).
_winding_down: set[asyncio.Task[None]] = set()
