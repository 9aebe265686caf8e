"""Component schemas of the OpenAI endpoints beside chat: embeddings, legacy completions and the
Responses API. Requests say what every model accepts (what the gateway and its bridge check)."""

from __future__ import annotations

from typing import Any

from ..translate.responses.tools import HOSTED
from ..validation import MAX_INT
from .shapes import INT, STR, TEXT, UNIX, Schema, const, nullable, obj, ref

MAX_INPUTS = 2048  # as web/embeddings.py
MAX_DIMENSIONS = 8192
MAX_TOKEN_ID = 2**31 - 1
RESPONSE_STATUSES = ["completed", "incomplete", "failed", "in_progress", "queued", "cancelled"]

BOOL: Schema = {"type": "boolean"}
POSITIVE: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
TOKEN: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_TOKEN_ID}


def model_field(example: str) -> Schema:
    """The body's `model`: a public model name."""
    return {**TEXT, "minLength": 1, "examples": [example]}


def nullable_any(*choices: Schema) -> Schema:
    """One of `choices`, or null."""
    return {"anyOf": [*choices, {"type": "null"}]}


def sse_event(data: Schema, description: str, event: Schema = STR) -> Schema:
    """One server-sent event whose `data:` is JSON described by `data`."""
    json_data = {"type": "string", "contentMediaType": "application/json", "contentSchema": data}
    return obj(
        {"data": json_data, "event": event, "id": STR, "retry": INT},
        ["data"],
        description=description,
    )


def endpoint_schemas() -> dict[str, Schema]:
    """Every schema of embeddings, completions and the Responses API."""
    return {**_embeddings(), **_completions(), **_responses_request(), **_responses_answer()}


def _embeddings() -> dict[str, Schema]:
    def inputs(item: Schema) -> Schema:
        return {"type": "array", "minItems": 1, "maxItems": MAX_INPUTS, "items": item}

    text: Schema = {"type": "string", "minLength": 1}
    request = obj(
        {
            "model": model_field("echo"),
            "input": {
                "anyOf": [
                    text,
                    inputs(text),
                    inputs(TOKEN),
                    inputs({"type": "array", "minItems": 1, "items": TOKEN}),
                ],
                "description": "A string, or 1 to 2048 strings, token ids, or token-id arrays "
                "(one kind per request; `gemini` models take text only).",
            },
            "encoding_format": nullable({"type": "string", "enum": ["float", "base64"]}),
            "dimensions": nullable({"type": "integer", "minimum": 1, "maximum": MAX_DIMENSIONS}),
        },
        ["model", "input"],
        description="OpenAI's embeddings request. The gateway checks the fields listed here; "
        "others (`user`, ...) go to openai/azure upstreams untouched.",
    )
    vector = {"type": "array", "items": {"type": "number"}}
    packed = {"type": "string", "contentEncoding": "base64", "description": "Little-endian f32."}
    embedding = obj(
        {"object": const("embedding"), "index": INT, "embedding": {"anyOf": [vector, packed]}},
        ["object", "index", "embedding"],
    )
    usage = obj({"prompt_tokens": INT, "total_tokens": INT}, ["prompt_tokens"])
    answer = obj(
        {
            "object": const("list"),
            "data": {"type": "array", "items": ref("Embedding")},
            "model": STR,
            "usage": usage,
        },
        ["object", "data"],
        description="OpenAI's embeddings list: relayed from openai/azure, built by the gateway "
        "for gemini and echo.",
    )
    return {"EmbeddingRequest": request, "Embedding": embedding, "EmbeddingList": answer}


def _completions() -> dict[str, Schema]:
    request = obj(
        {
            "model": model_field("gpt-3.5-turbo-instruct"),
            "prompt": {
                "not": {"type": "null"},
                "description": "A string, strings, token ids or token-id arrays; checked by "
                "upstream.",
            },
            "stream": nullable(BOOL),
            "stream_options": nullable(obj({"include_usage": nullable(BOOL)})),
            "max_tokens": nullable(POSITIVE),
        },
        ["model", "prompt"],
        description="OpenAI's legacy completions request (openai/azure models only). The "
        "gateway checks the fields listed here and forwards every other field untouched.",
    )
    usage = obj({"prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT})
    props = {
        "id": STR,
        "object": const("text_completion"),
        "created": INT,
        "model": STR,
        "choices": {"type": "array", "items": {"type": "object"}},
        "usage": nullable(usage),
    }
    answer = obj(props, ["choices"], description="Upstream's answer, relayed as received.")
    data = {"anyOf": [ref("Completion"), ref("StreamError")]}
    event = sse_event(
        data, "One event of a streamed completion, relayed; the stream ends with `data: [DONE]`."
    )
    event["properties"]["data"] = {"anyOf": [{"const": "[DONE]"}, event["properties"]["data"]]}
    return {"CompletionRequest": request, "Completion": answer, "CompletionStreamEvent": event}


def _parts(*extra: Schema) -> Schema:
    """Content: a string or an array of content parts (text, refusal, and `extra`)."""
    text_part = obj(
        {"type": {"type": "string", "enum": ["input_text", "output_text"]}, "text": STR},
        ["type", "text"],
    )
    refusal = obj({"type": const("refusal")}, ["type"])
    return {"anyOf": [STR, {"type": "array", "items": {"anyOf": [text_part, refusal, *extra]}}]}


def _responses_request() -> dict[str, Schema]:
    image = obj(
        {"type": const("input_image"), "image_url": {"type": "string", "minLength": 1}},
        ["type", "image_url"],
        description="An image by URL (or data: URL); `file_id` only on openai/azure models.",
    )
    user_message = obj(
        {"type": const("message"), "role": const("user"), "content": _parts(image)},
        ["role", "content"],
    )
    other_message = obj(
        {
            "type": const("message"),
            "role": {"type": "string", "enum": ["assistant", "system", "developer"]},
            "content": _parts(),
        },
        ["role", "content"],
    )
    function_call = obj(
        {
            "type": const("function_call"),
            "call_id": STR,
            "name": STR,
            "namespace": nullable(STR),
            "arguments": STR,
        },
        ["type", "call_id", "name", "arguments"],
    )
    function_output = obj(
        {"type": const("function_call_output"), "call_id": STR, "output": _parts()},
        ["type", "call_id", "output"],
    )
    reasoning = obj({"type": const("reasoning")}, ["type"])
    # At least one item must make a conversation turn: a user or assistant message, or a call.
    a_turn = {
        "anyOf": [
            obj(
                {
                    "type": const("message"),
                    "role": {"type": "string", "enum": ["user", "assistant"]},
                },
                ["role"],
            ),
            obj(
                {"type": {"type": "string", "enum": ["function_call", "function_call_output"]}},
                ["type"],
            ),
        ]
    }
    items = {"type": "array", "items": ref("ResponseInputItem"), "contains": a_turn}
    function_tool = obj(
        {
            "type": const("function"),
            "name": STR,
            "description": {"description": "Forwarded as is."},
            "parameters": {"description": "The JSON Schema of the arguments; forwarded as is."},
        },
        ["type", "name"],
    )
    namespace_tool = obj(
        {
            "type": const("namespace"),
            "name": STR,
            "tools": {"type": "array", "items": obj({**function_tool["properties"],
                                                     "type": nullable(const("function"))},
                                                    ["name"])},
        },
        ["type", "name", "tools"],
        description="Function tools under a name: bridged as `<namespace>__<name>` functions.",
    )  # fmt: skip
    hosted_tool = obj(
        {"type": {"type": "string", "enum": sorted(HOSTED)}},
        ["type"],
        description="Run by OpenAI: relayed to openai/azure, left out on a bridge (named in "
        "`x-gateway-dropped-tools`), or 400 with the model's `hosted_tools: reject`.",
    )
    tool = {"anyOf": [function_tool, namespace_tool, hosted_tool]}
    named = obj({"type": const("function"), "name": STR}, ["type", "name"])
    choice = {"type": "string", "enum": ["auto", "none", "required"]}
    plain = obj({"type": {"type": "string", "enum": ["text", "json_object"]}}, ["type"])
    json_schema = obj(
        {"type": const("json_schema"), "name": STR, "schema": {"type": "object"}},
        ["type", "name", "schema"],
    )
    request = obj(
        {
            "model": model_field("echo"),
            "input": {"anyOf": [STR, items], "description": "Text, or input items."},
            "instructions": nullable(STR),
            "tools": nullable({"type": "array", "items": tool}),
            "tool_choice": nullable_any(choice, named),
            "max_output_tokens": nullable(POSITIVE),
            "temperature": nullable({"type": "number"}),
            "top_p": nullable({"type": "number"}),
            "parallel_tool_calls": nullable(BOOL),
            "user": nullable(STR),
            "text": nullable(obj({"format": nullable_any(plain, json_schema)})),
            "stream": nullable(BOOL),
        },
        ["model", "input"],
        description=RESPONSES_REQUEST,
    )
    return {
        "ResponseRequest": request,
        "ResponseInputItem": {
            "anyOf": [user_message, other_message, function_call, function_output, reasoning]
        },
    }


RESPONSES_REQUEST = """\
OpenAI's Responses request. The fields listed are what every model accepts: openai/azure models \
get the body unchanged (so OpenAI's other fields and tool types work there), other models are \
bridged through chat completions, which takes exactly these. On a bridged model `background: \
true`, `conversation`, `prompt`, `custom` tools and `file_id` images are refused (400 \
`unsupported_parameter`); `store` (default true) keeps the answer for `previous_response_id`, \
GET and input_items; `previous_response_id` must name a response this gateway stored for the \
caller (else 400 `unsupported_parameter`; openai/azure: the deployment that made it answers)."""


def _responses_answer() -> dict[str, Schema]:
    usage = obj(
        {"input_tokens": INT, "output_tokens": INT, "total_tokens": INT},
        ["input_tokens", "output_tokens"],
    )
    item = obj({"id": STR, "type": STR, "status": STR}, ["type"])
    response = obj(
        {
            "id": STR,
            "object": const("response"),
            "created_at": UNIX,
            "status": {"type": "string", "enum": RESPONSE_STATUSES},
            "model": STR,
            "output": {"type": "array", "items": item},
            "usage": nullable(usage),
            "error": {"type": ["object", "null"]},
            "incomplete_details": {"type": ["object", "null"]},
        },
        ["id", "object", "created_at", "status", "model", "output"],
        description="A Response: upstream's (openai/azure), or the gateway's for a bridged model.",
    )
    event_data = obj(
        {"type": STR, "sequence_number": INT},
        ["type"],
        description="`response.created`, `response.output_item.added`, "
        "`response.output_text.delta`, `response.function_call_arguments.delta`, "
        "`response.output_item.done`, `response.completed`, ... or `error` (code `stream_error`) "
        "when upstream fails mid-stream.",
    )
    input_item: dict[str, Any] = obj({"id": STR, "type": STR}, ["id", "type"])
    return {
        "Response": response,
        "ResponseStreamEvent": sse_event(
            event_data, "One event of a streamed response (`event: <type>` then `data: <json>`)."
        ),
        "ResponseDeleted": obj(
            {"id": STR, "object": const("response.deleted"), "deleted": {"const": True}},
            ["id", "object", "deleted"],
        ),
        "ResponseInputItemList": obj(
            {
                "object": const("list"),
                "data": {"type": "array", "items": input_item},
                "first_id": nullable(STR),
                "last_id": nullable(STR),
                "has_more": BOOL,
            },
            ["object", "data", "first_id", "last_id", "has_more"],
        ),
    }
