"""A reply from a provider whose wire format is translated: body, error body and stream come out
in OpenAI's chat format, converted as they arrive by a pure translator from gateway/translate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from .http import HttpReply

JSON = "application/json"


class StreamTranslator(Protocol):
    """Provider SSE bytes in (split anywhere), OpenAI chunk events out."""

    def feed(self, raw: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class TranslatedReply:
    """An HttpReply seen through a translator; status and Retry-After are upstream's own."""

    __slots__ = ("_body", "_error", "_inner", "_stream", "content_type", "retry_after", "status")

    def __init__(
        self,
        inner: HttpReply,
        body: Callable[[bytes], bytes],
        error: Callable[[int, bytes], bytes],
        stream: StreamTranslator | None,
    ):
        self._inner = inner
        self._body = body
        self._error = error
        self._stream = stream
        self.status = inner.status
        self.retry_after = inner.retry_after
        ok_stream = stream is not None and inner.status < 400
        self.content_type = "text/event-stream" if ok_stream else JSON

    async def read(self) -> bytes:
        raw = await self._inner.read()
        if self.status >= 400:
            return self._error(self.status, raw)
        return self._body(raw)

    async def chunks(self) -> AsyncIterator[bytes]:
        translator = self._stream
        assert translator is not None, "chunks() of a non-stream call"
        async for raw in self._inner.chunks():
            out = translator.feed(raw)
            if out:
                yield out
        tail = translator.close()
        if tail:
            yield tail

    def close(self) -> None:
        self._inner.close()


class Passthrough:
    """The stream translator of an answer relayed as upstream wrote it (only errors translated)."""

    def feed(self, raw: bytes) -> bytes:
        return raw

    def close(self) -> bytes:
        return b""


def unchanged(raw: bytes) -> bytes:
    """The body translator of an answer relayed as upstream wrote it."""
    return raw
