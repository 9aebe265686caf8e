"""The stream writer the fake upstreams share: bytes written in pieces of a chosen size, with a
delay between pieces or the connection dropped after so many bytes, the exact bytes sent kept."""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiohttp import web


class Recording(Protocol):
    """A fake that keeps what each stream sent and how many its client cancelled."""

    streamed: list[bytes]
    cancelled: int


class Script(Protocol):
    """How a fake's stream goes out: pieces of `split` bytes (0: whole), `chunk_delay_s` after
    each, the connection dropped once `close_after_bytes` (>= 0) are out, or held open
    `hold_open_s` after the last byte before it ends."""

    @property
    def split(self) -> int: ...

    @property
    def close_after_bytes(self) -> int: ...

    @property
    def chunk_delay_s(self) -> float: ...

    @property
    def hold_open_s(self) -> float: ...


async def write_scripted(
    fake: Recording, request: web.Request, data: bytes, script: Script
) -> web.StreamResponse:
    """Write `data` as an event stream as `script` says; the bytes sent are appended to
    `fake.streamed`."""
    split, close_after_bytes = script.split, script.close_after_bytes
    chunk_delay_s = script.chunk_delay_s
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    step = split or len(data)
    sent = b""
    try:
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            if close_after_bytes >= 0 and len(sent) + len(piece) > close_after_bytes:
                piece = piece[: close_after_bytes - len(sent)]
                if piece:
                    await response.write(piece)
                    sent += piece
                fake.streamed.append(sent)
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(piece)
            sent += piece
            if chunk_delay_s:
                await asyncio.sleep(chunk_delay_s)
    except (asyncio.CancelledError, ConnectionError):
        fake.cancelled += 1
        fake.streamed.append(sent)
        raise
    fake.streamed.append(sent)
    if script.hold_open_s:
        await asyncio.sleep(script.hold_open_s)  # as servers that linger before closing do
    await response.write_eof()
    return response
