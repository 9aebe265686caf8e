"""Anthropic Messages API answers and errors -> OpenAI's chat.completion and error JSON.
Pure: bytes in, bytes out; also the stop_reason and usage mappings the stream translator shares."""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import ProviderError

Json = dict[str, Any]

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object, tool_calls: bool = True) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason; "stop" for one we do not know, and
    for tool_use when the only tool called was the structured-output one (``tool_calls`` off)."""
    if stop_reason == "tool_use" and not tool_calls:
        return "stop"
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def anthropic_to_chat(
    body: bytes, public_model: str, created: int, output_tool: str | None = None
) -> bytes:
    """The chat.completion JSON for a Messages API answer; ProviderError if it is unreadable.
    A call of ``output_tool`` (structured output) is the answer: its input as JSON content."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    return message_to_chat(answer, public_model, created, output_tool)


def message_to_chat(
    answer: object, public_model: str, created: int, output_tool: str | None = None
) -> bytes:
    """anthropic_to_chat of an answer already parsed (or built, as from Bedrock's Converse)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
        raise ProviderError("The provider's answer could not be read.")
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[Json] = []
    for block in answer["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thoughts.append(block["thinking"])
        elif kind == "tool_use" and output_tool is not None and block.get("name") == output_tool:
            texts.append(orjson.dumps(block.get("input", {})).decode())
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        # redacted_thinking is opaque ciphertext: nothing a client could show or send back.
    content = "".join(texts)
    message: Json = {"role": "assistant", "content": content if content or not calls else None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(answer.get("stop_reason"), bool(calls) or not output_tool),
    }
    return orjson.dumps(
        {
            "id": answer.get("id"),
            "object": "chat.completion",
            "created": created,
            "model": public_model,
            "choices": [choice],
            "usage": openai_usage(answer.get("usage")),
        }
    )


def _tool_call(block: Json) -> Json:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {
            "name": block.get("name"),
            "arguments": orjson.dumps(block.get("input", {})).decode(),
        },
    }


def usage_counts(usage: object) -> tuple[int, int, int, int, int]:
    """(input, output, cache reads, cache writes, of which one-hour writes) of Anthropic's usage
    object. Its ``input_tokens`` excludes the cache, so the whole input is the sum of the three;
    ``cache_creation`` splits the writes into 5-minute and 1-hour ones when it is there."""
    counts = usage if isinstance(usage, dict) else {}
    reads = _count(counts.get("cache_read_input_tokens"))
    writes = _count(counts.get("cache_creation_input_tokens"))
    split = counts.get("cache_creation")
    writes_1h = _count(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
    prompt = _count(counts.get("input_tokens")) + writes + reads
    return prompt, _count(counts.get("output_tokens")), reads, writes, writes_1h


def openai_usage(usage: object) -> Json:
    """OpenAI's usage object for Anthropic's: every input count (cache writes and reads too) is
    prompt; cache reads are reported as cached, cache writes in the gateway's own
    ``cache_write_tokens`` / ``cache_write_1h_tokens`` details (OpenAI has none)."""
    prompt, completion, reads, writes, writes_1h = usage_counts(usage)
    details = {"cached_tokens": reads}
    if writes:
        details["cache_write_tokens"] = writes
    if writes_1h:
        details["cache_write_1h_tokens"] = writes_1h
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
    }


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def error_to_openai(status: int, body: bytes) -> bytes:
    """OpenAI's error JSON for an Anthropic error answer, keeping Anthropic's type and message."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message, kind = f"The provider returned HTTP {status}.", None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message, kind = error["message"], error.get("type")
    if not isinstance(kind, str) or not kind:
        kind = "invalid_request_error" if status < 500 else "server_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
