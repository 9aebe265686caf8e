"""The chat stream relay: upstream SSE bytes to the client as they arrive, unchanged, counted.
Drops only the usage-only event the gateway itself asked for, when the client did not ask; adds
the gateway's own usage event before `[DONE]` when the client asked and upstream sent none."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import orjson

from ..accounting.recorder import Outcome
from ..accounting.tokens import StreamAccounting, is_usage_only, may_hold_usage_only
from ..errors import GatewayError, stream_error_event
from ..sse import SSEEvent, SSEParser

DONE = b"[DONE]"


class StreamRelay:
    """Relays one chat stream; `first_byte_at` is set when the first byte reaches the client and
    `complete` once `data: [DONE]` has been relayed."""

    __slots__ = (
        "accounting",
        "add_usage",
        "complete",
        "drop_usage_event",
        "first_byte_at",
        "need_text",
        "parser",
        "prompt_estimate",
    )

    def __init__(
        self,
        drop_usage_event: bool,
        prompt_estimate: int = 0,
        add_usage: bool = False,
        need_text: bool = False,
    ):
        self.parser = SSEParser()
        self.accounting = StreamAccounting()
        self.drop_usage_event = drop_usage_event
        self.add_usage = add_usage  # the client asked for usage: make sure it gets one
        self.prompt_estimate = prompt_estimate
        self.need_text = need_text  # the answer text is stored (session) or logged
        self.first_byte_at: float | None = None
        self.complete = False

    def outgoing(self, chunk: bytes) -> bytes:
        """Keep a chunk's complete events for accounting; return the bytes the client gets now.
        Events are parsed as JSON later, in accounting.settle(), and only as far as needed."""
        parser = self.parser
        if (
            parser.idle
            and chunk.endswith(b"\n\n")
            and b"\r" not in chunk
            and not (self.drop_usage_event and may_hold_usage_only(chunk))
            and not (self.add_usage and DONE in chunk)
        ):
            # Whole events only (without a CR, a chunk ending in a blank line ends its last event
            # at its last byte), none of them usage-only: forward as-is, split them only if needed.
            self.accounting.hold_events(chunk)
            if chunk.endswith(b"data: [DONE]\n\n"):
                self.complete = True
            return chunk
        events = parser.feed(chunk)
        if not self.drop_usage_event and not self.add_usage:
            hold = self.accounting.hold
            for event in events:
                if event.data is not None:
                    hold(event.data)
                    self.complete = self.complete or event.data == DONE
            return chunk
        # Hold partial events back so the usage-only event can be dropped (or one added) whole.
        return self._kept(events)

    def _kept(self, events: list[SSEEvent]) -> bytes:
        """The bytes of ``events`` without the usage-only ones to drop, plus the gateway's usage
        event before `[DONE]` when one is owed; every event's data is held."""
        hold = self.accounting.hold
        out = []
        for event in events:
            data = event.data
            if data is not None:
                if data == DONE:
                    self.complete = True
                    if self.add_usage:
                        out.append(self._own_usage())
                hold(data)
                if self.drop_usage_event and is_usage_only(data):
                    continue
            out.append(event.raw)
        return out[0] if len(out) == 1 else b"".join(out)

    def _own_usage(self) -> bytes:
        """The gateway's usage-only event when upstream sent no usage (else b"")."""
        acc = self.accounting
        acc.settle(need_text=False)
        if acc.usage is not None:
            return b""
        usage = acc.final_usage(self.prompt_estimate)
        chunk = {
            **acc.identity(),
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total,
            },
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def tail(self) -> bytes:
        events = self.parser.flush()
        if not self.drop_usage_event and not self.add_usage:
            for event in events:
                if event.data is not None:
                    self.accounting.hold(event.data)
            return b""
        return self._kept(events)

    def error_event(self, error: GatewayError) -> bytes:
        """The one event that tells the client the stream broke."""
        return stream_error_event(error)

    def settle(self, outcome: Outcome) -> None:
        """Usage and answer text of what was relayed so far; an upstream error event inside an
        otherwise fine stream makes the request an upstream error."""
        acc = self.accounting
        acc.settle(need_text=self.need_text)
        outcome.usage = acc.final_usage(self.prompt_estimate)
        outcome.answer = acc.text
        if acc.error is not None and outcome.status == "ok":
            outcome.status, outcome.error = "upstream_error", "error event in upstream stream"

    async def run(
        self,
        first_chunk: bytes,
        rest: AsyncIterator[bytes],
        write: Callable[[bytes], Awaitable[None]],
    ) -> None:
        """Relay until upstream ends; upstream errors and client disconnects propagate."""
        await pump(self, first_chunk, rest, write)


class Pumped(Protocol):
    """A relay's per-chunk step: bytes to write now, the rest at the end, the first byte's time."""

    first_byte_at: float | None

    def outgoing(self, chunk: bytes) -> bytes: ...

    def tail(self) -> bytes: ...


async def pump(
    relay: Pumped,
    first: bytes,
    rest: AsyncIterator[bytes],
    write: Callable[[bytes], Awaitable[None]],
) -> None:
    """Write what `relay` makes of each upstream chunk as it arrives, then its tail; sets
    `first_byte_at` when the first byte reaches the client."""
    out = relay.outgoing(first)
    if out:
        await write(out)
        relay.first_byte_at = time.perf_counter()
    async for chunk in rest:
        out = relay.outgoing(chunk)
        if out:
            await write(out)
            if relay.first_byte_at is None:
                relay.first_byte_at = time.perf_counter()
    tail = relay.tail()
    if tail:
        await write(tail)
