"""Bedrock Converse answers and errors -> OpenAI's chat.completion and error JSON.
Pure: a Converse answer is read as the Messages API message it amounts to, then translated by
the anthropic translation (one mapping of stop reasons, tool calls and usage for both)."""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import ProviderError
from ..anthropic import message_to_chat

Json = dict[str, Any]

# Converse's stopReason as Anthropic's stop_reason (the anthropic translation maps those).
STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "model_context_window_exceeded": "model_context_window_exceeded",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
}
# The OpenAI error type for a Bedrock HTTP status (Bedrock names its own in x-amzn-ErrorType).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    424: "server_error",
    429: "rate_limit_error",
}


def stop_reason(value: object) -> str | None:
    """Anthropic's stop_reason for a Converse stopReason (end_turn for one added later)."""
    if not isinstance(value, str):
        return None
    return STOP_REASONS.get(value, "end_turn")


def anthropic_usage(usage: object) -> Json:
    """Converse's usage as Anthropic's: `inputTokens` excludes the cache, like `input_tokens`;
    `cacheDetails` (writes by TTL) gives the one-hour writes, as `cache_creation` does."""
    counts = usage if isinstance(usage, dict) else {}
    out: Json = {
        "input_tokens": counts.get("inputTokens", 0),
        "output_tokens": counts.get("outputTokens", 0),
        "cache_read_input_tokens": counts.get("cacheReadInputTokens", 0),
        "cache_creation_input_tokens": counts.get("cacheWriteInputTokens", 0),
    }
    details = counts.get("cacheDetails")
    if isinstance(details, list):
        one_hour = sum(
            d["inputTokens"]
            for d in details
            if isinstance(d, dict)
            and d.get("ttl") == "1h"
            and isinstance(d.get("inputTokens"), int)
        )
        if one_hour:
            out["cache_creation"] = {"ephemeral_1h_input_tokens": one_hour}
    return out


def converse_to_message(answer: Json, message_id: str) -> Json:
    """A Converse answer as the Messages API message it amounts to."""
    output = answer.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise ProviderError("The provider's answer could not be read.")
    blocks: list[Json] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            blocks.append({"type": "text", "text": block["text"]})
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            blocks.append(
                {
                    "type": "tool_use",
                    "id": use.get("toolUseId"),
                    "name": use.get("name"),
                    "input": use.get("input", {}),
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            text = block["reasoningContent"].get("reasoningText")
            if isinstance(text, dict) and isinstance(text.get("text"), str):
                blocks.append({"type": "thinking", "thinking": text["text"]})
            # redactedContent is opaque: nothing a client could show
    return {
        "id": message_id,
        "content": blocks,
        "stop_reason": stop_reason(answer.get("stopReason")),
        "usage": anthropic_usage(answer.get("usage")),
    }


def converse_to_chat(
    body: bytes, public_model: str, message_id: str, created: int, output_tool: str | None
) -> bytes:
    """The chat.completion JSON for a Converse answer; ProviderError if it is unreadable."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise ProviderError("The provider's answer could not be read.")
    message = converse_to_message(answer, message_id)
    return message_to_chat(message, public_model, created, output_tool)


def error_message(status: int, body: bytes) -> str:
    """The message of a Bedrock error body, `{"message": ...}` (or `Message`)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "Message"):
            if isinstance(parsed.get(key), str) and parsed[key]:
                return str(parsed[key])
    return f"The provider returned HTTP {status}."


def error_to_openai(status: int, body: bytes) -> bytes:
    """OpenAI's error JSON for a Bedrock error answer, keeping Bedrock's message."""
    kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    message = error_message(status, body)
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
