"""The stream relay: upstream SSE bytes to the client as they arrive, unchanged, while counting.
Drops only the usage-only event the gateway itself asked for, when the client did not ask."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .sse import SSEEvent, SSEParser
from .tokens import StreamAccounting, is_usage_only, may_hold_usage_only


class StreamRelay:
    """Relays one stream; `first_byte_at` is set when the first byte reaches the client."""

    __slots__ = ("accounting", "drop_usage_event", "first_byte_at", "parser")

    def __init__(self, drop_usage_event: bool):
        self.parser = SSEParser()
        self.accounting = StreamAccounting()
        self.drop_usage_event = drop_usage_event
        self.first_byte_at: float | None = None

    def _outgoing(self, chunk: bytes) -> bytes:
        """Keep a chunk's complete events for accounting; return the bytes the client gets now.
        Events are parsed as JSON later, in accounting.settle(), and only as far as needed."""
        parser = self.parser
        if (
            parser.idle
            and chunk.endswith(b"\n\n")
            and b"\r" not in chunk
            and not (self.drop_usage_event and may_hold_usage_only(chunk))
        ):
            # Whole events only (without a CR, a chunk ending in a blank line ends its last event
            # at its last byte), none of them usage-only: forward as-is, split them only if needed.
            self.accounting.hold_events(chunk)
            return chunk
        events = parser.feed(chunk)
        hold = self.accounting.hold
        if not self.drop_usage_event:
            for event in events:
                if event.data is not None:
                    hold(event.data)
            return chunk
        # Hold partial events back so the usage-only event can be dropped whole.
        return self._kept(events)

    def _kept(self, events: list[SSEEvent]) -> bytes:
        """The bytes of ``events`` without the usage-only ones; every event's data is held."""
        hold = self.accounting.hold
        out = []
        for event in events:
            data = event.data
            if data is not None:
                hold(data)
                if is_usage_only(data):
                    continue
            out.append(event.raw)
        return out[0] if len(out) == 1 else b"".join(out)

    def _tail(self) -> bytes:
        events = self.parser.flush()
        hold = self.accounting.hold
        if not self.drop_usage_event:
            for event in events:
                if event.data is not None:
                    hold(event.data)
            return b""
        return self._kept(events)

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
