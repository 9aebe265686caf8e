"""Anthropic Messages API event stream -> OpenAI chat.completion.chunk events (SPEC section 7).
Pure and incremental: raw upstream bytes in, complete OpenAI SSE events out as they are ready."""

from __future__ import annotations

from typing import Any

import orjson

from ...sse import SSEParser
from .answer import finish_reason, openai_usage

Json = dict[str, Any]


class AnthropicStream:
    """Translates one Messages API event stream into chat.completion.chunk events as it arrives.

    Rules:
    - Bytes may be split anywhere; whole SSE events are read with SSEParser and dispatched on
      their JSON ``type`` (the ``event:`` line repeats it). An event cut off by the end of the
      stream is discarded, as the SSE spec says.
    - message_start -> the first chunk, delta {role: assistant, content: ""}. Any chunk that
      would come before it (a provider out of order) is preceded by that chunk all the same.
    - text_delta -> delta.content; thinking_delta -> delta.reasoning_content; a tool_use block
      start -> delta.tool_calls [{index k, id, type, function {name, arguments: ""}}], k counting
      tool calls from 0; input_json_delta -> delta.tool_calls [{index k, function {arguments}}].
      Empty fragments produce nothing; signature_delta, citations_delta, ping, content_block_stop,
      redacted thinking and event types Anthropic may add later produce nothing either.
    - A tool_use block of ``output_tool`` (structured output) is the answer: its
      input_json_delta fragments are delta.content, and tool_use alone finishes as ``stop``.
    - message_delta with a stop_reason -> the chunk with finish_reason and delta {} (once).
    - message_stop -> the finish chunk if none came yet, then always a usage-only chunk
      (``"choices": []``; the relay drops it when the client did not ask), then ``[DONE]``.
      Usage: output from message_delta (cumulative), input and cache counts from message_start
      unless message_delta carries them.
    - An ``error`` event, or data that is not JSON -> one stream_error event; close() before
      message_stop -> one stream_error event ("ended early"). After either, or after message_stop,
      every feed() and close() returns b"".
    """

    __slots__ = (
        "_created",
        "_done",
        "_finished",
        "_head",
        "_id",
        "_model",
        "_output",
        "_output_tool",
        "_parser",
        "_started",
        "_tools",
        "_usage",
    )

    def __init__(
        self, public_model: str, chunk_id: str, created: int, output_tool: str | None = None
    ) -> None:
        self._output_tool = output_tool
        self._output: set[int] = set()  # content block indexes of output_tool calls
        self._model = public_model
        self._id = chunk_id
        self._created = created
        self._head: bytes | None = None
        self._parser = SSEParser()
        self._started = False  # the role chunk was sent
        self._finished = False  # the finish_reason chunk was sent
        self._done = False  # [DONE] or an error event was sent: nothing more goes out
        self._tools: dict[int, int] = {}  # Anthropic content block index -> OpenAI tool index
        self._usage: dict[str, Any] = {}

    def feed(self, raw: bytes) -> bytes:
        """Upstream bytes in; the complete OpenAI SSE events they make, or b""."""
        if self._done:
            return b""
        out: list[bytes] = []
        for event in self._parser.feed(raw):
            if event.data is None:
                continue
            out += self._on_data(event.data)
            if self._done:
                break
        return b"".join(out)

    def close(self) -> bytes:
        """Upstream ended: a stream_error event unless the answer was complete, else b""."""
        self._parser = SSEParser()  # an unterminated last event is discarded
        if self._done:
            return b""
        self._done = True
        return _error_event("The provider's stream ended early.", "server_error")

    def feed_event(self, event: Json) -> bytes:
        """One Messages API event already parsed (or built from another provider's event, as
        Bedrock's ConverseStream is); the OpenAI SSE events it makes, or b""."""
        if self._done:
            return b""
        return b"".join(self._on_event(event))

    def _on_data(self, data: bytes) -> list[bytes]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            self._done = True
            return [_error_event("The provider sent an unreadable stream event.", "server_error")]
        return self._on_event(event)

    def _on_event(self, event: Json) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            self._add_usage(message.get("usage") if isinstance(message, dict) else None)
            return self._start()
        if kind == "content_block_start":
            return self._on_block_start(event)
        if kind == "content_block_delta":
            return self._on_block_delta(event)
        if kind == "message_delta":
            return self._on_message_delta(event)
        if kind == "message_stop":
            return self._on_message_stop()
        if kind == "error":
            return [self._on_error(event.get("error"))]
        return []  # ping, content_block_stop, and event types added later

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, event: Json) -> list[bytes]:
        block = event.get("content_block")
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        if kind == "tool_use" and self._output_tool and block.get("name") == self._output_tool:
            self._output.add(_index(event))
            return self._start()
        if kind == "tool_use":
            k = self._tools[_index(event)] = len(self._tools)
            call = {
                "index": k,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._emit({"tool_calls": [call]})
        # Text and thinking blocks start empty; were one to carry text, it is the first delta.
        if kind == "text":
            return self._text("content", block.get("text"))
        if kind == "thinking":
            return self._text("reasoning_content", block.get("thinking"))
        return []

    def _on_block_delta(self, event: Json) -> list[bytes]:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            return self._text("content", delta.get("text"))
        if kind == "thinking_delta":
            return self._text("reasoning_content", delta.get("thinking"))
        if kind == "input_json_delta" and _index(event) in self._output:
            return self._text("content", delta.get("partial_json"))
        if kind == "input_json_delta":
            k = self._tools.get(_index(event))
            fragment = delta.get("partial_json")
            if k is None or not isinstance(fragment, str) or not fragment:
                return []
            return self._emit({"tool_calls": [{"index": k, "function": {"arguments": fragment}}]})
        return []  # signature_delta, citations_delta

    def _text(self, field: str, text: object) -> list[bytes]:
        if not isinstance(text, str) or not text:
            return []
        return self._emit({field: text})

    def _on_message_delta(self, event: Json) -> list[bytes]:
        self._add_usage(event.get("usage"))
        delta = event.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None or self._finished:
            return []
        return self._finish(stop_reason)

    def _finish(self, stop_reason: object) -> list[bytes]:
        self._finished = True
        return self._emit(
            {}, finish_reason(stop_reason, bool(self._tools) or not self._output_tool)
        )

    def _on_message_stop(self) -> list[bytes]:
        out = [] if self._finished else self._finish(None)
        self._done = True
        usage = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": openai_usage(self._usage),
        }
        return [*out, _event(usage), b"data: [DONE]\n\n"]

    def _on_error(self, error: object) -> bytes:
        self._done = True
        details = error if isinstance(error, dict) else {}
        message = details.get("message")
        kind = details.get("type")
        return _error_event(
            message if isinstance(message, str) else "The provider reported an error.",
            kind if isinstance(kind, str) else "server_error",
        )

    def _add_usage(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        for key, value in usage.items():
            if (isinstance(value, int) and not isinstance(value, bool)) or (
                key == "cache_creation" and isinstance(value, dict)
            ):
                self._usage[key] = value

    def _emit(self, delta: Json, finish: str | None = None) -> list[bytes]:
        return [*self._start(), self._chunk(delta, finish)]

    def _chunk(self, delta: Json, finish: str | None = None) -> bytes:
        # The bytes orjson makes of {"id", "object", "created", "model", "choices": [{"index": 0,
        # "delta", "finish_reason"}]}, with the parts every chunk shares serialised once.
        if self._head is None:
            self._head = (
                b'data: {"id":'
                + orjson.dumps(self._id)
                + b',"object":"chat.completion.chunk","created":'
                + orjson.dumps(self._created)
                + b',"model":'
                + orjson.dumps(self._model)
                + b',"choices":[{"index":0,"delta":'
            )
        tail = (
            b',"finish_reason":null}]}\n\n'
            if finish is None
            else (b',"finish_reason":' + orjson.dumps(finish) + b"}]}\n\n")
        )
        return self._head + orjson.dumps(delta) + tail


def _index(event: Json) -> int:
    index = event.get("index")
    return index if isinstance(index, int) else -1


def _event(obj: Json) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _error_event(message: str, kind: str) -> bytes:
    return _event(
        {"error": {"message": message, "type": kind, "param": None, "code": "stream_error"}}
    )
