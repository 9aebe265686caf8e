"""The bytes the bench's mock upstream sends: OpenAI chat completions, embeddings and Responses,
and Anthropic's Messages API, each as JSON or as a stream split into network writes. Pure.

A stream of <chunks> is <chunks> network writes, each with one text delta; the first write also
opens the answer (chat: the role; Responses: response.created ... content_part.added; Anthropic:
message_start, content_block_start, ping) and the last also closes it (chat: the finish event,
the usage event when asked for, `data: [DONE]`; Responses: output_text.done ... response.completed
with usage; Anthropic: content_block_stop, message_delta with usage, message_stop). Every write
carries its HTTP chunk framing, the first the status line and headers, the last the final chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

Json = dict[str, Any]

_SHAPE = re.compile(r"mock-c(\d+)-d(\d+)-t(\d+)$")
_DEFAULT_SHAPE = (20, 0.0, 0.0)
_WORDS = ("Hello", " there", ",", " this", " is", " a", " streamed", " answer", " from", " mock")
PROMPT_TOKENS = 12
EMBEDDING = [0.5, -0.5, 0.5, -0.5, 0.25, -0.25, 0.25, -0.25]  # the same small vector for each
EMBEDDING_TOKENS = 8  # per input

_JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@dataclass(frozen=True)
class Answer:
    """The network writes of one answer, `delay` seconds apart, the first after `ttft`."""

    writes: list[bytes]
    delay: float
    ttft: float


def kind_of(path: bytes) -> str | None:
    """Which API a request path asks for (under any base path), or None."""
    path = path.split(b"?", 1)[0]
    for suffix, kind in (
        (b"/chat/completions", "chat"),
        (b"/embeddings", "embeddings"),
        (b"/responses", "responses"),
        (b"/v1/messages", "messages"),
    ):
        if path.endswith(suffix):
            return kind
    return None


def shape(model: str) -> tuple[int, float, float]:
    """(chunks, delay s, time to first token s) from a model name like mock-c20-d50-t0."""
    match = _SHAPE.match(model)
    if match is None:
        return _DEFAULT_SHAPE
    return max(1, int(match[1])), int(match[2]) / 1000, int(match[3]) / 1000


def words(chunks: int) -> list[str]:
    return [_WORDS[i % len(_WORDS)] for i in range(chunks)]


# -- OpenAI chat completions ------------------------------------------------------------------


def _chat_usage(chunks: int) -> Json:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": chunks,
        "total_tokens": PROMPT_TOKENS + chunks,
    }


def chat_completion(model: str, chunks: int) -> Json:
    message = {"role": "assistant", "content": "".join(words(chunks))}
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _chat_usage(chunks),
    }


def _chat_event(model: str, choices: list[Json], usage: Json | None = None) -> bytes:
    obj: Json = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chat_pieces(model: str, chunks: int, include_usage: bool) -> list[bytes]:
    """A chat stream's writes; usage only when asked for (stream_options), as OpenAI does."""
    pieces = []
    for i, word in enumerate(words(chunks)):
        delta: Json = {"role": "assistant", "content": word} if i == 0 else {"content": word}
        pieces.append(_chat_event(model, [{"index": 0, "delta": delta, "finish_reason": None}]))
    tail = _chat_event(model, [{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if include_usage:
        tail += _chat_event(model, [], _chat_usage(chunks))
    pieces[-1] += tail + b"data: [DONE]\n\n"
    return pieces


# -- OpenAI embeddings ------------------------------------------------------------------------


def embeddings(model: str, inputs: int) -> Json:
    data = [{"object": "embedding", "index": i, "embedding": EMBEDDING} for i in range(inputs)]
    tokens = EMBEDDING_TOKENS * inputs
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# -- OpenAI Responses -------------------------------------------------------------------------


def _output_text(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(text: str, done: bool) -> Json:
    return {
        "type": "message",
        "id": "msg_mock",
        "status": "completed" if done else "in_progress",
        "role": "assistant",
        "content": [_output_text(text)] if done else [],
    }


def response(model: str, chunks: int, done: bool = True) -> Json:
    """A Response object (completed, or as response.created shows it before any output)."""
    usage = {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": chunks,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": PROMPT_TOKENS + chunks,
    }
    return {
        "id": "resp_mock",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed" if done else "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [_message_item("".join(words(chunks)), True)] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage if done else None,
        "user": None,
        "metadata": {},
    }


def responses_pieces(model: str, chunks: int) -> list[bytes]:
    """A Responses stream's writes: one output_text.delta each, opened and closed as documented."""
    sequence = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": next(sequence), **fields}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    at: Json = {"item_id": "msg_mock", "output_index": 0}
    part: Json = {**at, "content_index": 0}
    started = response(model, chunks, done=False)
    head = (
        event("response.created", response=started)
        + event("response.in_progress", response=started)
        + event("response.output_item.added", output_index=0, item=_message_item("", False))
        + event("response.content_part.added", **part, part=_output_text(""))
    )
    pieces = [
        event("response.output_text.delta", **part, delta=word, logprobs=[])
        for word in words(chunks)
    ]
    text = "".join(words(chunks))
    pieces[0] = head + pieces[0]
    pieces[-1] += (
        event("response.output_text.done", **part, text=text, logprobs=[])
        + event("response.content_part.done", **part, part=_output_text(text))
        + event("response.output_item.done", output_index=0, item=_message_item(text, True))
        + event("response.completed", response=response(model, chunks))
    )
    return pieces


# -- Anthropic Messages -----------------------------------------------------------------------


def _anthropic_usage(output_tokens: int) -> Json:
    return {
        "input_tokens": PROMPT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def message(model: str, chunks: int) -> Json:
    return {
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(words(chunks))}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(chunks),
    }


def messages_pieces(model: str, chunks: int) -> list[bytes]:
    """An Anthropic stream's writes: one text_delta each, opened and closed as documented."""

    def event(data: Json) -> bytes:
        kind: str = data["type"]
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    start = message(model, chunks) | {"content": [], "stop_reason": None}
    start["usage"] = _anthropic_usage(1)
    head = (
        event({"type": "message_start", "message": start})
        + event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        )
        + event({"type": "ping"})
    )
    pieces = [
        event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": word},
            }
        )
        for word in words(chunks)
    ]
    pieces[0] = head + pieces[0]
    pieces[-1] += (
        event({"type": "content_block_stop", "index": 0})
        + event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": chunks},
            }
        )
        + event({"type": "message_stop"})
    )
    return pieces


# -- HTTP framing and the cache ----------------------------------------------------------------


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_writes(pieces: list[bytes]) -> list[bytes]:
    """SSE pieces as network writes: chunk framing, the head on the first, the end on the last."""
    writes = [_http_chunk(p) for p in pieces]
    writes[-1] += b"0\r\n\r\n"
    writes[0] = _SSE_HEAD + writes[0]
    return writes


def json_write(body: Json) -> list[bytes]:
    data = orjson.dumps(body)
    return [_JSON_HEAD % len(data) + data]


_BODIES: dict[str, Callable[[str, int], Json]] = {
    "chat": chat_completion,
    "responses": response,
    "messages": message,
}


def build(kind: str, model: str, stream: bool, include_usage: bool, inputs: int) -> Answer:
    """The answer to one request (`inputs`: the number of embeddings inputs)."""
    chunks, delay, ttft = shape(model)
    if kind == "embeddings":
        return Answer(json_write(embeddings(model, inputs)), 0.0, ttft)
    if not stream:
        return Answer(json_write(_BODIES[kind](model, chunks)), 0.0, ttft)
    if kind == "chat":
        pieces = chat_pieces(model, chunks, include_usage)
    elif kind == "responses":
        pieces = responses_pieces(model, chunks)
    else:
        pieces = messages_pieces(model, chunks)
    writes = stream_writes(pieces)
    if delay <= 0:
        writes = [b"".join(writes)]  # delay 0: the whole stream in one write
    return Answer(writes, delay, ttft)


class Answers:
    """Built answers, cached by everything they depend on: each is built once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, bool, bool, int], Answer] = {}

    def get(self, kind: str, model: str, stream: bool, include_usage: bool, inputs: int) -> Answer:
        key = (kind, model, stream, include_usage, inputs)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = build(*key)
        return found
