"""Stream relays for the endpoints besides chat: one forwards upstream events unchanged while a
reader counts them (Responses, Anthropic Messages); one translates OpenAI chat chunks into
another API's events as they arrive (the Responses and Messages bridges), counting the chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from ..accounting.recorder import Outcome
from ..accounting.tokens import StreamAccounting, Usage
from ..errors import GatewayError, stream_error_event
from ..sse import SSEEvent, SSEParser
from .relay import pump


class EventReader(Protocol):
    """Reads each SSE event's data of a relayed stream for accounting."""

    @property
    def complete(self) -> bool:
        """The stream's terminal event has arrived."""
        ...

    @property
    def text(self) -> str: ...

    def feed(self, data: bytes) -> None: ...

    def final_usage(self, prompt_estimate: int) -> Usage: ...


class StreamTranslator(Protocol):
    """OpenAI chunk bytes in (split anywhere), another API's events out."""

    def feed(self, raw: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class PassthroughRelay:
    """Upstream bytes to the client unchanged; `reader` sees every event's data."""

    def __init__(
        self,
        reader: EventReader,
        error_event: Callable[[GatewayError, int], bytes],
        prompt_estimate: int,
    ):
        self.reader = reader
        self.events = 0  # events relayed so far (a Responses error event numbers itself after)
        self.parser = SSEParser()
        self._error_event = error_event
        self.prompt_estimate = prompt_estimate
        self.first_byte_at: float | None = None

    @property
    def complete(self) -> bool:
        return self.reader.complete

    def outgoing(self, chunk: bytes) -> bytes:
        """The whole events this chunk completes, bytes unchanged. An event cut by a chunk
        boundary waits for its end: should upstream break inside it, the client's next event is
        the error event rather than a half event run into it (which no SSE client can parse)."""
        return self._relayed(self.parser.feed(chunk))

    def tail(self) -> bytes:
        """What remains at the end of the stream, an unterminated last event included."""
        return self._relayed(self.parser.flush())

    def _relayed(self, events: list[SSEEvent]) -> bytes:
        for event in events:
            if event.data is not None:
                self.events += 1
                self.reader.feed(event.data)
        return b"".join(event.raw for event in events)

    async def run(
        self, first: bytes, rest: AsyncIterator[bytes], write: Callable[[bytes], Awaitable[None]]
    ) -> None:
        await pump(self, first, rest, write)

    def error_event(self, error: GatewayError) -> bytes:
        return self._error_event(error, self.events)

    def settle(self, outcome: Outcome) -> None:
        outcome.usage = self.reader.final_usage(self.prompt_estimate)
        outcome.answer = self.reader.text
        if not self.reader.complete and outcome.status == "ok":
            outcome.status, outcome.error = "upstream_error", "stream ended before its end event"


class TranslatingRelay:
    """OpenAI chat chunks (from any chat-speaking adapter) to the client as another API's
    events; the chunks are counted exactly as the chat relay counts them."""

    def __init__(
        self,
        translator: StreamTranslator,
        prompt_estimate: int,
    ):
        self.translator = translator
        self.accounting = StreamAccounting()
        self.parser = SSEParser()
        self.prompt_estimate = prompt_estimate
        self.first_byte_at: float | None = None
        self.complete = False
        self.closed = False

    def outgoing(self, chunk: bytes) -> bytes:
        for event in self.parser.feed(chunk):
            if event.data is not None:
                self.accounting.observe(event.data)
                self.complete = self.complete or event.data == b"[DONE]"
        return self.translator.feed(chunk)

    def tail(self) -> bytes:
        self.closed = True
        for event in self.parser.flush():
            if event.data is not None:
                self.accounting.observe(event.data)
        return self.translator.close()

    async def run(
        self, first: bytes, rest: AsyncIterator[bytes], write: Callable[[bytes], Awaitable[None]]
    ) -> None:
        await pump(self, first, rest, write)

    def error_event(self, error: GatewayError) -> bytes:
        """The translator's own rendering of an OpenAI in-stream error event."""
        # The blank line ends an event the broken connection left half-written.
        return self.translator.feed(b"\n\n" + stream_error_event(error))

    def settle(self, outcome: Outcome) -> None:
        acc = self.accounting
        outcome.usage = acc.final_usage(self.prompt_estimate)
        outcome.answer = acc.text
        if acc.error is not None and outcome.status == "ok":
            outcome.status, outcome.error = "upstream_error", "error event in upstream stream"
