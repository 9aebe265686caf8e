"""The Anthropic front door in the OpenAPI document: POST /v1/messages and /v1/messages/count_tokens
(SPEC section 9), with Anthropic's request, message, event and error shapes."""

from __future__ import annotations

from ..translate.messages.errors import anthropic_error_type
from .endpoint_schemas import BOOL, POSITIVE, model_field, nullable_any, sse_event
from .shapes import (
    INT,
    RATE_HEADERS,
    STR,
    Schema,
    Security,
    body,
    const,
    header_refs,
    nullable,
    obj,
    op,
    ref,
)

SECURITY: Security = [{"UserKey": []}, {"AnthropicKey": []}]
STOP_REASONS = ["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]
EVENTS = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
]
HELLO = [{"role": "user", "content": "Hello"}]
NON_EMPTY: Schema = {"type": "string", "minLength": 1}


def anthropic_error_schema(kind: Schema) -> Schema:
    """Anthropic's error body, `{"type": "error", "error": {"type", "message"}}`."""
    inner = obj({"type": kind, "message": STR}, ["type", "message"])
    return obj({"type": const("error"), "error": inner, "request_id": STR}, ["type", "error"])


def anthropic_error(status: int, description: str, headers: tuple[str, ...] = ()) -> Schema:
    """An error response in Anthropic's shape, its type the one the gateway sends for `status`."""
    kind = anthropic_error_type(status)
    return {
        "description": f"{description} Type: `{kind}`.",
        "headers": header_refs(*headers),
        "content": {"application/json": {"schema": anthropic_error_schema(const(kind))}},
    }


def messages_schemas() -> dict[str, Schema]:
    """The request, message, event and count schemas of the Messages API."""
    return {**_request(), **_answer()}


def _blocks(*kinds: Schema) -> Schema:
    return {"anyOf": [STR, {"type": "array", "items": {"anyOf": list(kinds)}}]}


def _request() -> dict[str, Schema]:
    text = obj({"type": const("text"), "text": STR}, ["type", "text"])
    source = {
        "anyOf": [
            obj(
                {"type": const("base64"), "media_type": NON_EMPTY, "data": NON_EMPTY},
                ["type", "media_type", "data"],
            ),
            obj({"type": const("url"), "url": NON_EMPTY}, ["type", "url"]),
        ]
    }
    image = obj({"type": const("image"), "source": source}, ["type", "source"])
    inner = {"type": "array", "items": {"anyOf": [text, image]}}
    tool_result = obj(
        {
            "type": const("tool_result"),
            "tool_use_id": NON_EMPTY,
            "content": {"anyOf": [STR, inner, {"type": "null"}]},
            "is_error": {"description": "`true`: the text is prefixed with `Error: `."},
        },
        ["type", "tool_use_id"],
    )
    tool_use = obj(
        {
            "type": const("tool_use"),
            "id": NON_EMPTY,
            "name": NON_EMPTY,
            "input": {"type": "object"},
        },
        ["type", "id", "name"],
    )
    thinking = obj(
        {"type": {"type": "string", "enum": ["thinking", "redacted_thinking"]}}, ["type"]
    )
    user = obj(
        {"role": const("user"), "content": _blocks(text, image, tool_result)}, ["role", "content"]
    )
    assistant = obj(
        {"role": const("assistant"), "content": _blocks(text, tool_use, thinking)},
        ["role", "content"],
    )
    # null counts as absent, as for every optional field the gateway reads
    system = {"anyOf": [STR, {"type": "array", "items": text}, {"type": "null"}]}
    tool = obj(
        {
            "type": {"anyOf": [const("custom"), {"type": "null"}]},
            "name": NON_EMPTY,
            "description": {"description": "Forwarded when a string."},
            "input_schema": {"type": "object"},
        },
        ["name", "input_schema"],
    )
    choice = {
        "anyOf": [
            obj({"type": {"type": "string", "enum": ["auto", "any", "none"]}}, ["type"]),
            obj({"type": const("tool"), "name": NON_EMPTY}, ["type", "name"]),
        ]
    }
    system_message = obj({"role": const("system"), "content": _blocks(text)}, ["role", "content"])
    messages = {
        "type": "array",
        "minItems": 1,
        "items": {"anyOf": [user, assistant, system_message]},
    }
    request = obj(
        {
            "model": model_field("echo"),
            "max_tokens": POSITIVE,
            "messages": messages,
            "system": system,
            "stream": nullable(BOOL),
            "tools": nullable({"type": "array", "items": tool}),
            "tool_choice": nullable_any(*choice["anyOf"]),
            "stop_sequences": nullable({"type": "array", "items": STR}),
            "temperature": nullable({"type": "number"}),
            "top_p": nullable({"type": "number"}),
            "metadata": nullable(obj({"user_id": nullable(STR)})),
        },
        ["model", "max_tokens", "messages"],
        description=MESSAGES_REQUEST,
    )
    count = obj(
        {
            "model": model_field("echo"),
            "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        },
        ["model", "messages"],
        description="The Messages request without `max_tokens`; `tools` count as well. "
        "Counting never fails on content: what the estimate does not understand is skipped.",
    )
    return {"MessagesRequest": request, "CountTokensRequest": count}


MESSAGES_REQUEST = """\
Anthropic's Messages request. The blocks listed are what every model accepts: `anthropic` models \
get the body unchanged (so documents, server tools, thinking, cache_control work there); other \
models are translated to chat completions, which refuses other block types and server tools \
(400) and drops Anthropic-only settings (`top_k`, `thinking`, ...)."""


def _answer() -> dict[str, Schema]:
    usage = obj(
        {
            "input_tokens": INT,
            "output_tokens": INT,
            "cache_creation_input_tokens": nullable(INT),
            "cache_read_input_tokens": nullable(INT),
        },
        ["input_tokens", "output_tokens"],
    )
    block = obj({"type": STR}, ["type"], description="text, tool_use, thinking, ...")
    message = obj(
        {
            "id": STR,
            "type": const("message"),
            "role": const("assistant"),
            "content": {"type": "array", "items": block},
            "model": STR,
            "stop_reason": nullable({"type": "string", "enum": STOP_REASONS}),
            "stop_sequence": nullable(STR),
            "usage": usage,
        },
        ["id", "type", "role", "content", "model", "stop_reason", "usage"],
        description="Anthropic's message object.",
    )
    event_data = obj({"type": {"type": "string", "enum": EVENTS}}, ["type"])
    event = sse_event(
        event_data,
        "One event of a streamed message (`event: <type>` then `data: <json>`): message_start, "
        "content_block_start/_delta/_stop (text_delta, input_json_delta), message_delta with "
        "stop_reason and usage, message_stop; an `error` event (api_error) when upstream fails "
        "mid-stream.",
        event={"type": "string", "enum": EVENTS},
    )
    return {
        "AnthropicMessage": message,
        "AnthropicStreamEvent": event,
        "AnthropicError": anthropic_error_schema(STR),
        "InputTokens": obj({"input_tokens": INT}, ["input_tokens"]),
    }


def _header(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": STR,
        "description": description,
    }


HEADERS = [
    _header("anthropic-version", "Forwarded to anthropic models (whatever date is sent)."),
    _header("anthropic-beta", "Forwarded to anthropic models."),
]


def _errors(statuses: dict[int, str], headers: tuple[str, ...] = ()) -> dict[str, Schema]:
    out = {str(s): anthropic_error(s, note, headers) for s, note in statuses.items()}
    out["4XX"] = {
        "description": "An anthropic upstream's other 4xx, passed through; another upstream's "
        "in Anthropic's shape.",
        "headers": header_refs(*headers),
        "content": {"application/json": {"schema": ref("AnthropicError")}},
    }
    return out


COMMON = {
    400: "Malformed JSON, a bad field, or what chat completions cannot carry.",
    401: "Missing, unknown or revoked key (`x-api-key` or Bearer).",
    404: "Unknown model.",
    413: "The body is larger than `server.max_body_bytes`.",
    502: "Upstream 5xx or unreachable (after retries and fallbacks).",
    503: "The model's provider has no api_key.",
    504: "Upstream timed out.",
}


def messages_paths() -> dict[str, Schema]:
    """POST /v1/messages and POST /v1/messages/count_tokens."""
    rate = tuple(RATE_HEADERS)
    answer = {
        "description": "Anthropic's message, or with `stream: true` its event stream.",
        "headers": header_refs(*rate, "Cache-Control", "X-Accel-Buffering"),
        "content": {
            "application/json": {"schema": ref("AnthropicMessage")},
            "text/event-stream": {
                "schema": ref("AnthropicStreamEvent"),
                "example": 'event: message_start\ndata: {"type":"message_start",...}\n\n',
            },
        },
    }
    statuses = {**COMMON, 429: "RPM or daily token quota exceeded."}
    errors = _errors(statuses, rate)
    errors["429"]["headers"] = header_refs(*rate, "Retry-After")
    create = op(
        "createMessage",
        "Anthropic",
        "Create a message (Anthropic's Messages API)",
        {"200": answer, **errors},
        SECURITY,
        description="For Anthropic SDKs and Claude Code (`ANTHROPIC_BASE_URL` = the gateway). "
        "anthropic models: body and answer relayed byte for byte; other models: translated to "
        "chat completions and back. Errors have Anthropic's shape. Its request-log row carries "
        "`endpoint` `messages`.",
        parameters=HEADERS,
        requestBody=body(
            ref("MessagesRequest"),
            {"model": "echo", "max_tokens": 256, "messages": HELLO},
        ),
    )
    count_errors = _errors(
        {**COMMON, 403: "The key may not use this model.", 429: "RPM exceeded."}, rate
    )
    count_errors["429"]["headers"] = header_refs(*rate, "Retry-After")
    count = op(
        "countMessageTokens",
        "Anthropic",
        "Count the input tokens of a Messages request",
        {"200": {"description": "The count.", "headers": header_refs(*rate),
                 "content": {"application/json": {"schema": ref("InputTokens")}}},
         **count_errors},
        SECURITY,
        description="anthropic models: asked of the provider's count endpoint; others: "
        "estimated. Held to the key's model list and counted against the RPM like any request; "
        "reserves no budget and charges no tokens.",
        parameters=HEADERS,
        requestBody=body(ref("CountTokensRequest"), {"model": "echo", "messages": HELLO}),
    )  # fmt: skip
    return {"/v1/messages": {"post": create}, "/v1/messages/count_tokens": {"post": count}}
