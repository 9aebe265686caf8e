"""A client that stops reading a stream stops the upstream too: the gateway does not read ahead
into memory, it waits for the client (aiohttp's write waits for the transport to drain, and the
relay reads the next upstream chunk only after the last one is written)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.support.gateway import USER_KEY, base_config, start_gateway

CHUNKS = 4_000  # of about 16 KiB each: 64 MiB in all, far more than every buffer on the way
PIECE = "x" * 16_000


class EndlessUpstream:
    """An OpenAI-compatible server whose chat stream is long; it counts what it managed to send
    (a write waits while the reader, the gateway, does not read)."""

    def __init__(self) -> None:
        self.sent = 0
        self.finished = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> EndlessUpstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        for _ in range(CHUNKS):
            delta = {"index": 0, "delta": {"content": PIECE}, "finish_reason": None}
            event = b"data: " + orjson.dumps({**head, "choices": [delta]}) + b"\n\n"
            await resp.write(event)
            self.sent += len(event)
        await resp.write(b"data: [DONE]\n\n")
        self.finished = True
        return resp

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def endless() -> AsyncIterator[EndlessUpstream]:
    fake = await EndlessUpstream().start()
    yield fake
    await fake.close()


async def test_an_unread_stream_pauses_the_upstream_and_resumes_whole(endless, upstream, tmp_path):
    config = base_config(upstream.base_url, tmp_path)
    config["providers"]["endless"] = {"type": "openai", "base_url": endless.url, "api_key": "k"}
    config["models"]["long"] = {"provider": "endless", "model": "m"}
    gateway = await start_gateway(config)
    body = {"model": "long", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{gateway.url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {USER_KEY}"},
            ) as resp,
        ):
            assert resp.status == 200
            await asyncio.sleep(1.5)  # the client reads nothing
            paused_at = endless.sent
            await asyncio.sleep(1.0)
            # the upstream is held back: nothing more was sent while nobody read
            assert endless.sent == paused_at and not endless.finished
            assert paused_at < CHUNKS * len(PIECE) // 2
            received = 0
            async for piece in resp.content.iter_any():
                received += len(piece)
        assert endless.finished
        assert received > CHUNKS * len(PIECE)  # every piece arrived once the client read
    finally:
        await gateway.close()
