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


async def write_scripted(
    fake: Recording,
    request: web.Request,
    data: bytes,
    *,
    split: int = 0,
    close_after_bytes: int = -1,
    chunk_delay_s: float = 0.0,
) -> web.StreamResponse:
    """Write `data` as an event stream: in pieces of `split` bytes (0: whole), sleeping
    `chunk_delay_s` after each, or closing the connection once `close_after_bytes` (>= 0) are
    out; the bytes sent are appended to `fake.streamed`."""
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
    await response.write_eof()
    return response
