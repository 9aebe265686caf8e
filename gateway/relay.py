"""The stream relay: upstream SSE bytes to the client as they arrive, unchanged, while counting.
Drops only the usage-only event the gateway itself asked for, when the client did not ask."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .sse import SSEParser
from .tokens import StreamAccounting


class StreamRelay:
    """Relays one stream; `first_byte_at` is set when the first byte reaches the client."""

    __slots__ = ("accounting", "drop_usage_event", "first_byte_at", "parser")

    def __init__(self, drop_usage_event: bool):
        self.parser = SSEParser()
        self.accounting = StreamAccounting()
        self.drop_usage_event = drop_usage_event
        self.first_byte_at: float | None = None

    def _outgoing(self, chunk: bytes) -> bytes:
        """Observe a chunk's complete events; return the bytes the client should get now."""
        events = self.parser.feed(chunk)
        observe = self.accounting.observe
        if not self.drop_usage_event:
            for event in events:
                if event.data is not None:
                    observe(event.data)
            return chunk
        # Hold partial events back so the usage-only event can be dropped whole.
        return b"".join(
            event.raw for event in events if event.data is None or not observe(event.data)
        )

    def _tail(self) -> bytes:
        events = self.parser.flush()
        observe = self.accounting.observe
        out = [e.raw for e in events if e.data is None or not observe(e.data)]
        return b"" if not self.drop_usage_event else b"".join(out)

    async def run(
        self,
        first_chunk: bytes,
        rest: AsyncIterator[bytes],
        write: Callable[[bytes], Awaitable[None]],
    ) -> None:
        """Relay until upstream ends; upstream errors and client disconnects propagate."""
        out = self._outgoing(first_chunk)
        if out:
            await write(out)
            self.first_byte_at = time.perf_counter()
        async for chunk in rest:
            out = self._outgoing(chunk)
            if out:
                await write(out)
                if self.first_byte_at is None:
                    self.first_byte_at = time.perf_counter()
        tail = self._tail()
        if tail:
            await write(tail)
