"""OpenAI wire shapes the fake upstream answers with: embeddings, legacy text completions and the
Responses API (objects, input items, stream events). Pure: ids and the clock are passed in."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Iterable
from typing import Any

import orjson

Json = dict[str, Any]


# -- embeddings -------------------------------------------------------------------------------


def embedding_inputs(value: Any) -> list[str | list[int]]:
    """The request's `input` as one entry per vector: a string, a list of strings, a token list
    or a list of token lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(_token(v) for v in value):
        return [[int(v) for v in value]]
    if isinstance(value, list):
        return [v if isinstance(v, str) else [int(t) for t in v] for v in value]
    raise ValueError("input must be a string, a list of strings or token lists")


def _token(value: Any) -> bool:
    """A token id as JSON Schema's integer: 7 or 7.0."""
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def vector(item: str | list[int], dimensions: int) -> list[float]:
    """A deterministic unit vector for one input, every value exactly a float32 (so the float
    and base64 encodings decode to the same numbers)."""
    seed = orjson.dumps(item)
    raw: list[float] = []
    counter = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        raw += [(b - 127.5) / 127.5 for b in digest]
        counter += 1
    raw = raw[:dimensions]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in raw]


def float32_base64(values: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def embeddings_body(body: Json, prompt_tokens: int, default_dimensions: int = 8) -> Json:
    """The answer to POST /v1/embeddings for request `body`."""
    dimensions = int(body.get("dimensions") or default_dimensions)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(embedding_inputs(body.get("input"))):
        values = vector(item, dimensions)
        encoded: list[float] | str = float32_base64(values) if as_base64 else values
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", ""),
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


# -- legacy text completions ------------------------------------------------------------------


def text_completion(
    completion_id: str, created: int, model: str, text: str, usage: Json | None
) -> Json:
    """A non-streamed POST /v1/completions answer."""
    body: Json = {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def text_completion_stream(
    completion_id: str, created: int, model: str, pieces: list[str], usage: Json | None
) -> bytes:
    """A streamed POST /v1/completions answer: one event per piece, a finish event, the
    usage-only event (`choices: []`) when `usage` is given, then `[DONE]`."""

    def event(choices: list[Json], usage: Json | None = None) -> bytes:
        obj = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage,
        }
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def choice(text: str, finish: str | None) -> Json:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    out = [event([choice(p, None)]) for p in pieces]
    out.append(event([choice("", "stop")]))
    if usage is not None:
        out.append(event([], usage))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


# -- Responses API ----------------------------------------------------------------------------


def response_usage(usage: Json | None) -> Json | None:
    """A chat-style usage dict (prompt/completion tokens) in the Responses API's shape."""
    if usage is None:
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
    return {
        "input_tokens": usage.get("prompt_tokens", 0),
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.get("completion_tokens", 0),
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens", 0),
    }


def input_items(value: Any, new_id: Iterable[str]) -> list[Json]:
    """The request's `input` as stored input items, each with an id (`new_id` supplies them)."""
    ids = iter(new_id)
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    items: list[Json] = []
    for raw in value or []:
        item = dict(raw)
        item.setdefault("type", "message")
        if item["type"] == "message":
            content = item.get("content")
            kind = "output_text" if item.get("role") == "assistant" else "input_text"
            if isinstance(content, str):
                part: Json = {"type": kind, "text": content}
                if kind == "output_text":
                    part["annotations"] = []
                item["content"] = [part]
            item.setdefault("status", "completed")
        item.setdefault("id", next(ids))
        items.append(item)
    return items


def message_item(item_id: str, text: str, status: str = "completed") -> Json:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [output_text(text)] if status == "completed" else [],
    }


def output_text(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item_id: str, call: Json, status: str = "completed") -> Json:
    """A function_call output item; `call` holds the scripted name, arguments and call_id."""
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.get("call_id", "call_fake"),
        "name": call["name"],
        "arguments": call.get("arguments", "{}") if status == "completed" else "",
        "status": status,
    }


def response_object(
    response_id: str,
    created_at: int,
    request: Json,
    output: list[Json],
    usage: Json | None,
    metadata: Json,
    status: str = "completed",
) -> Json:
    """A Response object echoing the request's settings, with every field the API returns."""
    text = request.get("text") or {"format": {"type": "text"}, "verbosity": "medium"}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": request.get("model", ""),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": text,
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "top_logprobs": 0,
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation", "disabled"),
        "usage": usage,
        "user": request.get("user"),
        "metadata": metadata,
    }


def sse_event(kind: str, sequence_number: int, fields: Json) -> bytes:
    """One Responses stream event: `event: <type>` and its JSON `data:` line."""
    data = {"type": kind, "sequence_number": sequence_number, **fields}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def response_events(final: Json, pieces: list[str], stop_before_completed: bool = False) -> bytes:
    """The documented event sequence that builds `final` (a completed Response): created,
    in_progress, then per output item its added / delta / done events, then completed."""
    events: list[tuple[str, Json]] = []

    def add(kind: str, **fields: Any) -> None:
        events.append((kind, fields))

    started = {**final, "status": "in_progress", "output": [], "usage": None}
    add("response.created", response=started)
    add("response.in_progress", response=started)
    for index, item in enumerate(final["output"]):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            text = item["content"][0]["text"]
            part = {**at, "content_index": 0}
            add("response.output_item.added", output_index=index,
                item=message_item(item["id"], "", "in_progress"))  # fmt: skip
            add("response.content_part.added", **part, part=output_text(""))
            for piece in pieces:
                add("response.output_text.delta", **part, delta=piece, logprobs=[])
            add("response.output_text.done", **part, text=text, logprobs=[])
            add("response.content_part.done", **part, part=output_text(text))
        elif item["type"] == "function_call":
            add("response.output_item.added", output_index=index,
                item=function_call_item(item["id"], item, "in_progress"))  # fmt: skip
            add("response.function_call_arguments.delta", **at, delta=item["arguments"])
            add("response.function_call_arguments.done", **at, name=item["name"],
                arguments=item["arguments"])  # fmt: skip
        add("response.output_item.done", output_index=index, item=item)
    if not stop_before_completed:
        add("response.completed", response=final)
    return b"".join(sse_event(kind, n, fields) for n, (kind, fields) in enumerate(events))
