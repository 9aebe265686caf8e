"""The component schemas of the OpenAPI document: chat requests and answers, models, sessions,
messages, usage, keys, quotas, routes, health; `component_schemas(tiers)` builds them all."""

from __future__ import annotations

from ..errors import GatewayError
from ..store.base import BUDGET_PERIODS
from ..validation import MAX_CHOICES, MAX_INT
from .anthropic import messages_schemas
from .endpoint_schemas import endpoint_schemas
from .governance import governance_schemas
from .shapes import (
    INT,
    STR,
    TEXT,
    UNIX,
    Schema,
    const,
    error_schema,
    list_of,
    nullable,
    obj,
    record,
    ref,
)

CAPABILITIES = ["chat", "embeddings", "responses"]  # as adapters/capabilities.py LISTED
ROLES = ["system", "developer", "user", "assistant", "tool", "function"]
SESSION_STATUSES = ["active", "archived"]
RPM_MAX = 2**31 - 1  # as web/admin.py (an INTEGER column)
TPD_MAX = 10**12
DAY: Schema = {"type": "string", "format": "date"}


def component_schemas(tiers: list[str]) -> dict[str, Schema]:
    """Every schema under components; `tiers` (the configured quota tiers) become an enum."""
    tier: Schema = {"type": "string", "description": "A configured quota tier."}
    if tiers:
        tier["enum"] = tiers
    return {
        **_chat(),
        **endpoint_schemas(),
        **messages_schemas(),
        **_sessions(),
        **_admin(),
        **governance_schemas(tier),
        **_operations(),
    }


def _completion(kind: Schema, description: str) -> Schema:
    """A chat answer or one streamed chunk of it: the fields the gateway reads, nothing more."""
    usage = obj(
        {"prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT},
        ["prompt_tokens", "completion_tokens"],
    )
    props = {
        "id": STR,
        "object": kind,
        "created": INT,
        "model": STR,
        "choices": {"type": "array", "items": {"type": "object"}},
        "usage": nullable(usage),
    }
    return obj(props, ["choices"], description=description)


def _chat() -> dict[str, Schema]:
    positive: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
    message = obj(
        {
            "role": {"type": "string", "enum": ROLES},
            "content": {"description": "Text or content parts; forwarded untouched."},
        },
        ["role"],
        description="A chat message; fields besides `role` are forwarded untouched.",
    )
    chat_request = obj(
        {
            "model": {**TEXT, "minLength": 1, "examples": ["echo"]},
            "messages": {"type": "array", "minItems": 1, "items": ref("ChatMessage")},
            "stream": nullable({"type": "boolean"}),
            "stream_options": nullable(obj({"include_usage": nullable({"type": "boolean"})})),
            "max_tokens": nullable(positive),
            "max_completion_tokens": nullable(positive),
            "n": nullable({"type": "integer", "minimum": 1, "maximum": MAX_CHOICES}),
            "session_id": nullable({**TEXT, "minLength": 1})
            | {
                "description": "Gateway extension: the session whose history to use; not forwarded."
            },
        },
        ["model", "messages"],
        description="OpenAI's chat request. The gateway checks the fields listed here and "
        "forwards every other field (temperature, tools, response_format, ...) untouched.",
    )
    event_data = {
        "anyOf": [
            {"const": "[DONE]", "description": "The last event."},
            {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"anyOf": [ref("ChatCompletionChunk"), ref("StreamError")]},
            },
        ]
    }
    event = obj(
        {"data": event_data, "event": STR, "id": STR, "retry": INT},
        ["data"],
        description="One server-sent event of a streamed answer (`data: <json>` then a blank "
        "line), relayed byte for byte from upstream; the stream ends with `data: [DONE]`, or "
        "after one error event when upstream fails mid-stream.",
    )
    stream_error = error_schema(GatewayError, ["stream_error"])
    stream_error["properties"]["error"]["properties"]["type"] = STR
    return {
        "Error": error_schema(GatewayError, None),
        "ChatMessage": message,
        "ChatCompletionRequest": chat_request,
        "ChatCompletion": _completion(
            STR, "The upstream's answer, relayed as received (bytes unchanged)."
        ),
        "ChatCompletionChunk": _completion(
            const("chat.completion.chunk"), "The JSON of one `data:` event of a streamed answer."
        ),
        "ChatCompletionStreamEvent": event,
        "StreamError": stream_error,
        "Model": record(
            {
                "id": STR,
                "object": const("model"),
                "created": UNIX,
                "owned_by": STR,
                "available": {"type": "boolean", "description": "False: provider not configured."},
                "capabilities": {
                    "type": "array",
                    "items": {"type": "string", "enum": CAPABILITIES},
                    "uniqueItems": True,
                    "description": "The endpoints the model accepts: `chat` (chat completions), "
                    "`embeddings`, `responses` (the Responses API).",
                },
            }
        ),
        "ModelList": list_of("Model"),
    }


def _sessions() -> dict[str, Schema]:
    title = nullable({**TEXT, "maxLength": 256})
    status: Schema = {"type": "string", "enum": SESSION_STATUSES}
    return {
        "Session": record(
            {
                "id": STR,
                "object": const("ai.session"),
                "title": STR,
                "model": nullable(STR),
                "message_count": INT,
                "total_tokens": INT,
                "status": status,
                "created_at": UNIX,
                "updated_at": UNIX,
            }
        ),
        "SessionCreate": obj({"title": title, "model": nullable(TEXT)}, (), False),
        "SessionUpdate": obj({"title": title, "status": nullable(status)}, (), False),
        "SessionList": list_of("Session", has_more={"type": "boolean"}),
        "Message": record(
            {
                "id": STR,
                "object": const("ai.message"),
                "session_id": STR,
                "role": STR,
                "content": STR,
                "tokens": INT,
                "model": nullable(STR),
                "created_at": UNIX,
            }
        ),
        "MessageList": list_of("Message", has_more={"type": "boolean"}),
        "Usage": record(
            {
                "object": const("ai.usage"),
                "user": STR,
                "day": DAY,
                "tier": STR,
                "requests": record(
                    {"limit": nullable(INT), "remaining": nullable(INT), "reset": nullable(STR)}
                ),
                "tokens": record(
                    {"limit": nullable(INT), "used": INT, "remaining": nullable(INT), "reset": STR}
                ),
                "by_model": {"type": "array", "items": ref("UsageRow")},
                "budgets": {"type": "array", "items": ref("UsageBudget")},
            }
        ),
        "UsageBudget": record(
            {
                "scope": {"type": "string", "enum": ["user", "key", "team"]},
                "id": STR,
                "max_budget_usd": _money("The budget per period."),
                "budget_period": {"type": "string", "enum": list(BUDGET_PERIODS)},
                "spend_usd": _money("Settled cost of the current period's requests."),
                "reserved_usd": _money("Worst-case costs held by requests in flight."),
                "remaining_usd": _money("What a new request can still reserve."),
            }
        ),
        "UsageRow": record(
            {
                "model": STR,
                "requests": INT,
                "prompt_tokens": INT,
                "completion_tokens": INT,
                "cached_tokens": INT,
                "cache_write_tokens": INT,
                "reasoning_tokens": INT,
                "cache_savings_usd": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
                "cache_hits": {**INT, "description": "Requests answered by the response cache."},
                "cache_saved_tokens": {**INT, "description": "Tokens those hits did not use."},
                "cache_saved_usd": {
                    "type": "string",
                    "pattern": r"^-?\d+(\.\d+)?$",
                    "description": "What those hits would have cost, USD.",
                },
                "cost_usd": {
                    "type": "string",
                    "pattern": r"^-?\d+(\.\d+)?$",
                    "description": "Exact decimal, USD, fixed point.",
                },
            }
        ),
    }


def _money(description: str) -> Schema:
    return {
        "type": "string",
        "pattern": r"^\d+(\.\d+)?$",
        "description": f"{description} Exact decimal, USD, fixed point.",
    }


def _admin() -> dict[str, Schema]:
    deployment = obj(
        {
            "deployment": STR,
            "provider": STR,
            "upstream_model": STR,
            "weight": {"type": "number"},
            "configured": {"type": "boolean"},
        },
        ["provider", "weight", "configured"],
    )
    return {
        "CreatedApiKey": {
            "allOf": [ref("ApiKey"), record({"key": STR})],
            "description": "The new key; `key` is shown only here.",
        },
        "ApiKeyList": list_of("ApiKey"),
        "ApiKeyRevoked": record(
            {"object": const("api_key.revoked"), "revoked": {"type": "integer", "minimum": 1}}
        ),
        "AdminUsage": list_of("AdminUsageRow", day=DAY),
        "AdminUsageRow": {"allOf": [ref("UsageRow"), record({"user": STR})]},
        "RouteList": list_of("RouteModel", health={"type": "object"}),
        "McpServerList": list_of("McpServer"),
        "McpServer": record(
            {
                "name": STR,
                "transport": {"type": "string", "enum": ["http", "stdio"]},
                "target": {**STR, "description": "The URL, or the command and its arguments."},
                "state": {"type": "string", "enum": ["up", "down", "starting"]},
                "since": {**INT, "description": "Unix time the state began."},
                "error": nullable(STR),
                "restarts": INT,
                "tools": {
                    "type": "array",
                    "items": record(
                        {
                            "name": {**STR, "description": "`<server>__<tool>`"},
                            "title": nullable(STR),
                            "description": nullable(STR),
                        }
                    ),
                },
                "prompts": INT,
                "resources": INT,
            }
        ),
        "RouteModel": record(
            {
                "model": STR,
                "deployments": {"type": "array", "items": deployment},
                "fallbacks": {"type": "array", "items": STR},
            }
        ),
    }


def _operations() -> dict[str, Schema]:
    return {
        "Health": record({"status": const("ok")}),
        "Readiness": record(
            {
                "status": {"type": "string", "enum": ["ready", "unavailable"]},
                "checks": record({"database": STR, "redis": STR}),
            }
        ),
    }
