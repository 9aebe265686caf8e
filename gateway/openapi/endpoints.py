"""The paths of the OpenAI endpoints beside chat: POST /v1/embeddings, POST /v1/completions, and
the Responses API (create, retrieve, delete, input items), each with the errors it can return."""

from __future__ import annotations

from ..errors import InvalidRequest, NotFound, ProviderError, ProviderTimeout
from .common import (
    BAD_FIELD,
    BAD_QUERY,
    DB_503,
    UNAUTHORIZED,
    USER,
    links,
    proxied_errors,
    stream_answer,
)
from .shapes import RATE_HEADERS, STR, Schema, body, error, header_refs, ok, op, param, ref

NOT_SUPPORTED = "model_not_supported"
RESPONSE_404 = error(NotFound, "No such response, or it belongs to another user.")
PASSED_THROUGH: Schema = {
    "description": "An upstream 4xx (for a response made by an openai/azure deployment): its "
    "status and body, passed through unchanged.",
    "headers": header_refs(),
    "content": {"application/json": {"schema": {}}},
}


def endpoint_paths() -> dict[str, Schema]:
    """The path items of embeddings, completions and responses."""
    return {**_embeddings(), **_completions(), **_responses()}


def logged_as(endpoint: str) -> str:
    """The sentence that says how a request shows in the request log and metrics."""
    return (
        f" Routed, rate-limited, retried and accounted like chat; its request-log row and "
        f"`gateway_requests_total` sample carry `endpoint` `{endpoint}`."
    )


def _embeddings() -> dict[str, Schema]:
    answer = {
        "description": "The embeddings.",
        "headers": header_refs(*RATE_HEADERS),
        "content": {"application/json": {"schema": ref("EmbeddingList")}},
    }
    errors = proxied_errors(
        bad=[*BAD_FIELD, NOT_SUPPORTED],
        bad_note="Malformed JSON, a bad field, or a model with no embeddings (`anthropic`: "
        "`model_not_supported`).",
    )
    create = op(
        "createEmbedding",
        "Embeddings",
        "Create embeddings (OpenAI's API)",
        {"200": answer, **errors},
        USER,
        description="openai/azure models get the body byte for byte; gemini models are "
        "translated to `batchEmbedContents`; `echo` answers a deterministic unit vector per "
        "input (`dimensions` long, default 16). Tokens are `usage.prompt_tokens`, billed at the "
        "model's input price." + logged_as("embeddings"),
        requestBody=body(ref("EmbeddingRequest"), {"model": "echo", "input": "Hello"}),
    )
    return {"/v1/embeddings": {"post": create}}


def _completions() -> dict[str, Schema]:
    answer = stream_answer(
        "Upstream's answer: JSON, or with `stream: true` an SSE stream of text_completion "
        "chunks ending with `data: [DONE]`.",
        ref("Completion"),
        ref("CompletionStreamEvent"),
        'data: {"object":"text_completion","choices":[...]}\n\ndata: [DONE]\n\n',
    )
    errors = proxied_errors(
        bad=[*BAD_FIELD, NOT_SUPPORTED],
        bad_note="Malformed JSON, a bad field, or a model that is not openai/azure "
        "(`model_not_supported`).",
    )
    create = op(
        "createCompletion",
        "Completions",
        "Create a legacy text completion (openai/azure models only)",
        {"200": answer, **errors},
        USER,
        description="Relayed like chat: the answer (JSON or stream) byte for byte, usage "
        "requested from upstream and the usage-only event dropped unless the client asked for "
        "it." + logged_as("completions"),
        requestBody=body(
            ref("CompletionRequest"),
            {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hello", "max_tokens": 16},
        ),
    )
    return {"/v1/completions": {"post": create}}


RESPONSE_ID = param("response_id", "path", STR, "A response id (`resp_...`).")


def _owner_errors() -> dict[str, Schema]:
    """A stored response's errors: asked of the openai/azure deployment that made it, if any."""
    return {
        "401": UNAUTHORIZED,
        "404": RESPONSE_404,
        "4XX": PASSED_THROUGH,
        "502": error(ProviderError, "The deployment that made the response failed."),
        "503": DB_503,
        "504": error(ProviderTimeout, "The deployment that made the response timed out."),
    }


def _responses() -> dict[str, Schema]:
    answer = stream_answer(
        "A Response, or with `stream: true` its event stream.",
        ref("Response"),
        ref("ResponseStreamEvent"),
        'event: response.created\ndata: {"type":"response.created",...}\n\n',
    )
    answer["links"] = links(
        "response_id",
        GetResponse="getResponse",
        DeleteResponse="deleteResponse",
        ListInputItems="listResponseInputItems",
    )
    errors = proxied_errors(
        bad=[*BAD_FIELD, "unsupported_parameter"],
        bad_note="Malformed JSON, a bad field, or what a bridged model cannot do "
        "(`unsupported_parameter`).",
        unavailable=["provider_not_configured", "service_unavailable"],
        unavailable_note="The model's provider has no api_key, or the response store is down.",
    )
    create = op(
        "createResponse",
        "Responses",
        "Create a response (OpenAI's Responses API)",
        {"200": answer, **errors},
        USER,
        description="openai/azure models: the body and answer relayed unchanged, and the "
        "response id remembered with its deployment (at least 24 hours, shared by every "
        "instance). Other models are bridged through chat completions." + logged_as("responses"),
        requestBody=body(ref("ResponseRequest"), {"model": "echo", "input": "Hello"}),
    )
    order = param(
        "order", "query", {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
        "Item order.",
    )  # fmt: skip
    limit = param(
        "limit", "query", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        "Page size.",
    )  # fmt: skip
    after = param("after", "query", STR, "Cursor: the last item id of the previous page.")
    items = op(
        "listResponseInputItems",
        "Responses",
        "The input items of a response",
        {
            "200": ok("A page of input items.", ref("ResponseInputItemList")),
            "400": error(InvalidRequest, "A bad query parameter, or NUL in the URL.", BAD_QUERY),
            **_owner_errors(),
        },
        USER,
        parameters=[order, limit, after],
    )
    return {
        "/v1/responses": {"post": create},
        "/v1/responses/{response_id}": {
            "parameters": [RESPONSE_ID],
            "get": op(
                "getResponse",
                "Responses",
                "Retrieve a response",
                {"200": ok("The response.", ref("Response")), **_owner_errors()},
                USER,
            ),
            "delete": op(
                "deleteResponse",
                "Responses",
                "Delete a response",
                {"200": ok("Deleted.", ref("ResponseDeleted")), **_owner_errors()},
                USER,
            ),
        },
        "/v1/responses/{response_id}/input_items": {"parameters": [RESPONSE_ID], "get": items},
    }
