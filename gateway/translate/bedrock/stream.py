"""Bedrock's decoded event-stream messages -> what the client reads, as they arrive. Pure: the
adapter decodes the binary frames (botocore) and hands each message's type and payload here.

- ConverseStream: ConverseStream events -> OpenAI chat.completion.chunk events, through the
  anthropic stream translation (each Converse event is the Messages API event it amounts to).
- InvokeStream: InvokeModelWithResponseStream `chunk` events of a Claude model, whose payload's
  `bytes` hold Anthropic's own events -> Anthropic's SSE, the event bytes as the model wrote them.
An `exception` message (throttlingException, modelStreamErrorException, ...) after the first
byte is one error event in the client's format; so is a message that cannot be read.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Protocol

import orjson

from ..anthropic import AnthropicStream
from .answer import anthropic_usage, error_message, stop_reason

Json = dict[str, Any]


class EventTranslator(Protocol):
    """Decoded event-stream messages in, the client's SSE bytes out."""

    def message(self, message_type: str, event_type: str, payload: bytes) -> bytes: ...

    def broken(self) -> bytes: ...

    def close(self) -> bytes: ...


def _json(payload: bytes) -> Json | None:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _index(event: Json) -> int:
    index = event.get("contentBlockIndex")
    return index if isinstance(index, int) else -1


class ConverseStream:
    """One ConverseStream answer as chat.completion.chunk events.

    messageStart -> message_start; contentBlockStart of a toolUse -> a tool_use block start;
    contentBlockDelta text / toolUse.input / reasoningContent.text -> text_delta /
    input_json_delta / thinking_delta; messageStop -> message_delta with the stop reason (the
    finish chunk); metadata (usage, after messageStop) -> message_delta usage, then message_stop
    (the usage chunk and [DONE]). Converse's `inputTokens` excludes the cache, as Anthropic's.
    """

    def __init__(
        self, public_model: str, chunk_id: str, created: int, output_tool: str | None = None
    ) -> None:
        self._inner = AnthropicStream(public_model, chunk_id, created, output_tool)

    def message(self, message_type: str, event_type: str, payload: bytes) -> bytes:
        if message_type == "exception":
            return self._fail(event_type, error_message(500, payload))
        if message_type != "event":
            return b""
        event = _json(payload)
        if event is None:
            return self.broken()
        feed = self._inner.feed_event
        if event_type == "messageStart":
            return feed({"type": "message_start", "message": {"usage": {}}})
        if event_type == "contentBlockStart":
            start = event.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if not isinstance(use, dict):
                return b""
            block = {"type": "tool_use", "id": use.get("toolUseId"), "name": use.get("name")}
            return feed(
                {"type": "content_block_start", "index": _index(event), "content_block": block}
            )
        if event_type == "contentBlockDelta":
            return self._delta(event)
        if event_type == "messageStop":
            reason = stop_reason(event.get("stopReason")) or "end_turn"
            return feed({"type": "message_delta", "delta": {"stop_reason": reason}})
        if event_type == "metadata":
            usage = {
                "type": "message_delta",
                "delta": {},
                "usage": anthropic_usage(event.get("usage")),
            }
            return feed(usage) + feed({"type": "message_stop"})
        return b""  # contentBlockStop, and event types Bedrock may add later

    def _delta(self, event: Json) -> bytes:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return b""
        out: Json | None = None
        if isinstance(delta.get("text"), str):
            out = {"type": "text_delta", "text": delta["text"]}
        elif isinstance(delta.get("toolUse"), dict):
            out = {"type": "input_json_delta", "partial_json": delta["toolUse"].get("input")}
        elif isinstance(delta.get("reasoningContent"), dict):
            text = delta["reasoningContent"].get("text")
            if isinstance(text, str):
                out = {"type": "thinking_delta", "thinking": text}
        if out is None:
            return b""  # a reasoning signature, citations
        return self._inner.feed_event(
            {"type": "content_block_delta", "index": _index(event), "delta": out}
        )

    def _fail(self, kind: str, message: str) -> bytes:
        return self._inner.feed_event(
            {"type": "error", "error": {"type": kind, "message": message}}
        )

    def broken(self) -> bytes:
        return self._fail("server_error", "The provider sent an unreadable stream event.")

    def close(self) -> bytes:
        return self._inner.close()


# Anthropic's error type for a Bedrock stream exception.
_ANTHROPIC_ERRORS = {
    "throttlingException": "rate_limit_error",
    "serviceUnavailableException": "overloaded_error",
    "validationException": "invalid_request_error",
}


def _anthropic_error(kind: str, message: str) -> bytes:
    error = {"type": "error", "error": {"type": kind, "message": message}}
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


class InvokeStream:
    """A Claude model's InvokeModelWithResponseStream answer as Anthropic's SSE: each `chunk`
    event's base64 `bytes` is one Messages API event, written as `event: <type>` and `data:`
    with the event's own bytes."""

    def __init__(self) -> None:
        self._done = False

    def message(self, message_type: str, event_type: str, payload: bytes) -> bytes:
        if self._done:
            return b""
        if message_type == "exception":
            self._done = True
            kind = _ANTHROPIC_ERRORS.get(event_type, "api_error")
            return _anthropic_error(kind, error_message(500, payload))
        if message_type != "event" or event_type != "chunk":
            return b""
        chunk = _json(payload)
        encoded = chunk.get("bytes") if chunk is not None else None
        try:
            data = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
        except (binascii.Error, ValueError):
            data = None
        event = _json(data) if data is not None else None
        name = event.get("type") if event is not None else None
        if data is None or not isinstance(name, str) or not name.isprintable():
            return self.broken()
        if b"\n" in data or b"\r" in data:  # one `data:` line per event: compact it
            data = orjson.dumps(event)
        return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"

    def broken(self) -> bytes:
        self._done = True
        return _anthropic_error("api_error", "The provider sent an unreadable stream event.")

    def close(self) -> bytes:
        return b""
