"""The OpenAPI 3.1 description of the gateway's HTTP API (SPEC section 4), built as plain data.
Pure: `build_document(tiers=...)` -> dict; web/docs.py serves it at /openapi.json and /docs."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from typing import Any

from .errors import (
    GatewayError,
    InvalidApiKey,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    RateLimited,
    RequestTooLarge,
    ServiceUnavailable,
    SessionNotFound,
)

Schema = dict[str, Any]

ROLES = ["system", "developer", "user", "assistant", "tool", "function"]
SESSION_STATUSES = ["active", "archived"]
RPM_MAX = 2**31 - 1  # as web/admin.py (an INTEGER column)
TPD_MAX = 10**12
NO_NUL = r"^[^\u0000]*$"  # NUL is refused in URLs and stored strings (PostgreSQL text)
BAD_FIELD = ["invalid_request", "missing_required_parameter", "invalid_type", "invalid_value"]
BAD_BODY = [*BAD_FIELD, "unknown_parameter"]
BAD_QUERY = ["invalid_type", "invalid_value"]
DB_DOWN = "The database is unavailable (`service_unavailable`); retry shortly."

DESCRIPTION = """\
An OpenAI-compatible gateway: point an OpenAI SDK at `<gateway>/v1` and use a gateway key.

**Errors** always have OpenAI's shape,
`{"error": {"message": "...", "type": "...", "param": null|"field", "code": "..."}}`; each
operation lists the codes it can return. `param` names the offending field of a 400.
An upstream 4xx on /v1/chat/completions reaches the client unchanged (its status and body).
A method a route does not support gets 405 `method_not_allowed` (with `Allow`), an unknown route
404 `not_found`. Every response, errors included, carries `X-Request-Id` (echoed when the
client sent a printable ASCII one of at most 128 characters, generated otherwise).

**Rate limits**: every /v1/chat/completions response, 429s included, carries OpenAI's
`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers (the token headers speak of the
daily quota; an unlimited quota omits its three); a 429 also carries `Retry-After` in whole
seconds.

**Streams**: with `"stream": true` the answer is `text/event-stream`, upstream's events relayed
byte for byte. A failure before the first byte is a plain JSON error; after it, one
`data: {"error": {..., "code": "stream_error"}}` event, then the connection closes.
"""


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def _obj(props: dict[str, Schema], required: Iterable[str] = (), extra: bool = True) -> Schema:
    schema: Schema = {"type": "object", "properties": props, "required": list(required)}
    if not extra:
        schema["additionalProperties"] = False
    return schema


def _const(value: str) -> Schema:
    return {"type": "string", "const": value}


def _list_of(item: str, **more: Schema) -> Schema:
    props = {"object": _const("list"), "data": {"type": "array", "items": _ref(item)}, **more}
    return _obj(props, ["object", "data", *more])


STR: Schema = {"type": "string"}
TEXT: Schema = {"type": "string", "pattern": NO_NUL}
INT: Schema = {"type": "integer"}
UNIX: Schema = {"type": "integer", "description": "Unix time, seconds."}
DURATION: Schema = {
    "type": "string",
    "pattern": r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$",
    "description": "A Go-style duration as OpenAI sends it: `120ms`, `1s`, `6m0s`, `2h3m4s`.",
}


def _header(description: str, schema: Schema, required: bool = False) -> Schema:
    return {"description": description, "required": required, "schema": schema}


HEADERS: dict[str, Schema] = {
    "X-Request-Id": _header("The request's id (echoed or generated).", STR, required=True),
    "x-ratelimit-limit-requests": _header("Requests per minute allowed (RPM bucket size).", INT),
    "x-ratelimit-remaining-requests": _header("Requests left in the bucket.", INT),
    "x-ratelimit-reset-requests": _header("Time until the bucket is full again.", DURATION),
    "x-ratelimit-limit-tokens": _header("Tokens per UTC day allowed.", INT),
    "x-ratelimit-remaining-tokens": _header("Tokens left today.", INT),
    "x-ratelimit-reset-tokens": _header("Time until the next UTC midnight.", DURATION),
    "Cache-Control": _header("`no-cache` on a stream.", STR),
    "X-Accel-Buffering": _header("`no` on a stream: proxies must not buffer it.", STR),
    "Retry-After": _header(
        "Whole seconds before a retry can succeed.", {"type": "integer", "minimum": 1}, True
    ),
}
RATE_HEADERS = [name for name in HEADERS if name.startswith("x-ratelimit-")]


def _headers(*names: str) -> dict[str, Schema]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-Id", *names)}


def _error_schema(error: type[GatewayError], codes: Iterable[str] | None) -> Schema:
    """OpenAI's error object; `type` and (when given) `code` pinned to what the gateway sends."""
    code: Schema = {"type": ["string", "null"]}
    if codes is not None:
        code = {"type": "string", "enum": list(codes)}
    inner = _obj(
        {"message": STR, "type": _const(error.type), "param": {"type": ["string", "null"]}},
        ["message", "type", "param", "code"],
    )
    inner["properties"]["code"] = code
    return _obj({"error": inner}, ["error"])


def _error(
    error: type[GatewayError],
    description: str,
    codes: Iterable[str] | None = None,
    headers: Iterable[str] = (),
) -> Schema:
    codes = list(codes) if codes is not None else [error.code]
    listed = ", ".join(f"`{c}`" for c in codes)
    return {
        "description": f"{description} Codes: {listed}.",
        "headers": _headers(*headers),
        "content": {"application/json": {"schema": _error_schema(error, codes)}},
    }


def _ok(description: str, schema: Schema, media: str = "application/json", **extra: Any) -> Schema:
    return {
        "description": description,
        "headers": _headers(),
        "content": {media: {"schema": schema}},
        **extra,
    }


def _body(schema: Schema, example: Any = None, required: bool = True) -> Schema:
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def _param(name: str, where: str, schema: Schema, description: str) -> Schema:
    """A path parameter (required) or a query parameter (optional; empty means absent)."""
    if schema.get("type") == "string" and "enum" not in schema:
        schema = {**schema, "pattern": NO_NUL}
    param = {"name": name, "in": where, "required": where == "path", "schema": schema}
    if where == "query":
        param["allowEmptyValue"] = True
        description += " Empty or absent: no filter / the default."
    param["description"] = description
    return param


UNAUTHORIZED = _error(InvalidApiKey, "Missing, unknown or revoked API key.")
ADMIN_UNAUTHORIZED = _error(InvalidApiKey, "Missing or wrong admin key.")
ADMIN_DISABLED = "The admin API is disabled (empty `auth.admin_key`), or"
TOO_LARGE = _error(RequestTooLarge, "The body is larger than `server.max_body_bytes`.")
DB_503 = _error(ServiceUnavailable, DB_DOWN)
SESSION_404 = _error(SessionNotFound, "No such session, or it belongs to another user.")
USER = [{"UserKey": []}]
ADMIN = [{"AdminKey": []}]
PUBLIC: list = []


def _op(
    operation_id: str,
    tag: str,
    summary: str,
    responses: dict[str, Schema],
    security: list,
    **extra: Any,
) -> Schema:
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "security": security,
        **extra,
        "responses": responses,
    }


def _schemas(tiers: list[str]) -> dict[str, Schema]:
    tier: Schema = {"type": "string", "description": "A configured quota tier."}
    if tiers:
        tier["enum"] = tiers
    message = _obj(
        {
            "role": {"type": "string", "enum": ROLES},
            "content": {"description": "Text or content parts; forwarded untouched."},
        },
        ["role"],
    )
    message["description"] = "A chat message; fields besides `role` are forwarded untouched."
    positive: Schema = {"type": "integer", "minimum": 1}
    chat_request = _obj(
        {
            "model": {**TEXT, "minLength": 1, "examples": ["echo"]},
            "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
            "stream": _nullable({"type": "boolean"}),
            "stream_options": _nullable(_obj({"include_usage": _nullable({"type": "boolean"})})),
            "max_tokens": _nullable(positive),
            "max_completion_tokens": _nullable(positive),
            "session_id": _nullable({**TEXT, "minLength": 1})
            | {
                "description": "Gateway extension: the session whose history to use; not forwarded."
            },
        },
        ["model", "messages"],
    )
    chat_request["description"] = (
        "OpenAI's chat request. The gateway checks the fields listed here and forwards every "
        "other field (temperature, tools, response_format, ...) untouched."
    )
    usage = _obj(
        {"prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT},
        ["prompt_tokens", "completion_tokens"],
    )
    completion = _obj(
        {
            "id": STR,
            "object": STR,
            "created": INT,
            "model": STR,
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": _nullable(usage),
        },
        ["choices"],
    )
    completion["description"] = "The upstream's answer, relayed as received (bytes unchanged)."
    chunk = _obj(
        {
            "id": STR,
            "object": _const("chat.completion.chunk"),
            "created": INT,
            "model": STR,
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": _nullable(usage),
        },
        ["choices"],
    )
    chunk["description"] = "The JSON of one `data:` event of a streamed answer."
    event_data = {
        "anyOf": [
            {"const": "[DONE]", "description": "The last event."},
            {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"anyOf": [_ref("ChatCompletionChunk"), _ref("StreamError")]},
            },
        ]
    }
    event = _obj({"data": event_data, "event": STR, "id": STR, "retry": INT}, ["data"])
    event["description"] = (
        "One server-sent event of a streamed answer (`data: <json>` then a blank line), relayed "
        "byte for byte from upstream; the stream ends with `data: [DONE]`, or after one error "
        "event when upstream fails mid-stream."
    )
    stream_error = _error_schema(GatewayError, ["stream_error"])
    stream_error["properties"]["error"]["properties"]["type"] = STR
    title = _nullable({**TEXT, "maxLength": 256})
    api_key = _obj(
        {
            "id": STR,
            "object": _const("api_key"),
            "key_prefix": STR,
            "user": STR,
            "name": STR,
            "tier": _nullable(STR),
            "status": STR,
            "created_at": UNIX,
            "last_used_at": _nullable(UNIX),
        },
        ["id", "object", "key_prefix", "user", "name", "tier", "status", "created_at"],
    )
    usage_row = _obj(
        {
            "model": STR,
            "requests": INT,
            "prompt_tokens": INT,
            "completion_tokens": INT,
            "cost_usd": {
                "type": "string",
                "pattern": r"^-?\d+(\.\d+)?$",
                "description": "Exact decimal, USD, fixed point.",
            },
        },
        ["model", "requests", "prompt_tokens", "completion_tokens", "cost_usd"],
    )
    return {
        "Error": _error_schema(GatewayError, None),
        "ChatMessage": message,
        "ChatCompletionRequest": chat_request,
        "ChatCompletion": completion,
        "ChatCompletionChunk": chunk,
        "ChatCompletionStreamEvent": event,
        "StreamError": stream_error,
        "Model": _obj(
            {
                "id": STR,
                "object": _const("model"),
                "created": UNIX,
                "owned_by": STR,
                "available": {"type": "boolean", "description": "False: provider not configured."},
            },
            ["id", "object", "created", "owned_by", "available"],
        ),
        "ModelList": _list_of("Model"),
        "Session": _obj(
            {
                "id": STR,
                "object": _const("ai.session"),
                "title": STR,
                "model": _nullable(STR),
                "message_count": INT,
                "total_tokens": INT,
                "status": {"type": "string", "enum": SESSION_STATUSES},
                "created_at": UNIX,
                "updated_at": UNIX,
            },
            [
                *("id", "object", "title", "model", "message_count", "total_tokens", "status"),
                "created_at",
                "updated_at",
            ],
        ),
        "SessionCreate": _obj({"title": title, "model": _nullable(TEXT)}, (), False),
        "SessionUpdate": _obj(
            {"title": title, "status": _nullable({"type": "string", "enum": SESSION_STATUSES})},
            (),
            False,
        ),
        "SessionList": _list_of("Session", has_more={"type": "boolean"}),
        "Message": _obj(
            {
                "id": STR,
                "object": _const("ai.message"),
                "session_id": STR,
                "role": STR,
                "content": STR,
                "tokens": INT,
                "model": _nullable(STR),
                "created_at": UNIX,
            },
            ["id", "object", "session_id", "role", "content", "tokens", "model", "created_at"],
        ),
        "MessageList": _list_of("Message", has_more={"type": "boolean"}),
        "Usage": _obj(
            {
                "object": _const("ai.usage"),
                "user": STR,
                "day": {"type": "string", "format": "date"},
                "tier": STR,
                "requests": _obj(
                    {"limit": _nullable(INT), "remaining": _nullable(INT), "reset": _nullable(STR)},
                    ["limit", "remaining", "reset"],
                ),
                "tokens": _obj(
                    {
                        "limit": _nullable(INT),
                        "used": INT,
                        "remaining": _nullable(INT),
                        "reset": STR,
                    },
                    ["limit", "used", "remaining", "reset"],
                ),
                "by_model": {"type": "array", "items": _ref("UsageRow")},
            },
            ["object", "user", "day", "tier", "requests", "tokens", "by_model"],
        ),
        "UsageRow": usage_row,
        "ApiKey": api_key,
        "CreatedApiKey": {
            "allOf": [_ref("ApiKey"), _obj({"key": STR}, ["key"])],
            "description": "The new key; `key` is shown only here.",
        },
        "ApiKeyList": _list_of("ApiKey"),
        "ApiKeyCreate": _obj(
            {
                "user": {**TEXT, "minLength": 1, "maxLength": 128},
                "tier": _nullable(tier),
                "name": _nullable({**TEXT, "maxLength": 128}),
            },
            ["user"],
            False,
        ),
        "ApiKeyRevoked": _obj(
            {"object": _const("api_key.revoked"), "revoked": {"type": "integer", "minimum": 1}},
            ["object", "revoked"],
        ),
        "QuotaUpdate": _obj(
            {
                "tier": _nullable(tier),
                "rpm": _nullable({"type": "integer", "minimum": 0, "maximum": RPM_MAX}),
                "tpd": _nullable({"type": "integer", "minimum": 0, "maximum": TPD_MAX}),
            },
            (),
            False,
        ),
        "UserQuota": _obj(
            {
                "object": _const("user_quota"),
                "user": STR,
                "tier": _nullable(STR),
                "rpm": _nullable(INT),
                "tpd": _nullable(INT),
                "effective": _obj({"rpm": INT, "tpd": INT}, ["rpm", "tpd"]),
            },
            ["object", "user", "tier", "rpm", "tpd", "effective"],
        ),
        "AdminUsage": _list_of("AdminUsageRow", day={"type": "string", "format": "date"}),
        "AdminUsageRow": {"allOf": [_ref("UsageRow"), _obj({"user": STR}, ["user"])]},
        "RouteList": _list_of("RouteModel", health={"type": "object"}),
        "RouteModel": _obj(
            {
                "model": STR,
                "deployments": {
                    "type": "array",
                    "items": _obj(
                        {
                            "deployment": STR,
                            "provider": STR,
                            "upstream_model": STR,
                            "weight": {"type": "number"},
                            "configured": {"type": "boolean"},
                        },
                        ["provider", "weight", "configured"],
                    ),
                },
                "fallbacks": {"type": "array", "items": STR},
            },
            ["model", "deployments", "fallbacks"],
        ),
        "Health": _obj({"status": _const("ok")}, ["status"]),
        "Readiness": _obj(
            {
                "status": {"type": "string", "enum": ["ready", "unavailable"]},
                "checks": _obj({"database": STR, "redis": STR}, ["database", "redis"]),
            },
            ["status", "checks"],
        ),
    }


def _chat_paths() -> dict[str, Schema]:
    rate = RATE_HEADERS
    upstream_note = " An upstream error with this status passes through with upstream's body."
    answer = {
        "description": "The upstream's answer: JSON, or with `stream: true` an SSE stream whose "
        "`data:` events are ChatCompletionChunk objects, ending with `data: [DONE]`.",
        "headers": _headers(*rate, "Cache-Control", "X-Accel-Buffering"),
        "content": {
            "application/json": {"schema": _ref("ChatCompletion")},
            "text/event-stream": {
                "schema": _ref("ChatCompletionStreamEvent"),
                "example": 'data: {"object":"chat.completion.chunk","choices":[...]}\n\n'
                "data: [DONE]\n\n",
            },
        },
    }
    example = {"model": "echo", "messages": [{"role": "user", "content": "Hello"}]}
    chat = _op(
        "createChatCompletion",
        "Chat",
        "Create a chat completion (OpenAI's API, plus session_id)",
        {
            "200": answer,
            "400": _error(
                InvalidRequest, "Malformed JSON or a bad field." + upstream_note, BAD_FIELD, rate
            ),
            "401": _error(InvalidApiKey, "Missing, unknown or revoked API key." + upstream_note),
            "404": _error(
                ModelNotFound,
                "Unknown model, or a session that is not the caller's." + upstream_note,
                ["model_not_found", "session_not_found"],
                rate,
            ),
            "413": _error(
                RequestTooLarge, "The body is larger than `server.max_body_bytes`.", headers=rate
            ),
            "429": _error(
                RateLimited,
                "RPM or daily token quota exceeded (`Retry-After` is "
                "always sent with the gateway's own 429)." + upstream_note,
                ["rate_limit_exceeded", "daily_token_quota_exceeded"],
                [*rate, "Retry-After"],
            ),
            "4XX": {
                "description": "Another upstream 4xx: its status, content type and body, "
                "passed through unchanged.",
                "headers": _headers(*rate),
                "content": {"application/json": {"schema": {}}},
            },
            "502": _error(
                ProviderError,
                "Upstream 5xx or unreachable (after retries and fallbacks).",
                headers=rate,
            ),
            "503": _error(
                ProviderNotConfigured,
                "The model's provider has no api_key, or the session store is down.",
                ["provider_not_configured", "service_unavailable"],
                rate,
            ),
            "504": _error(ProviderTimeout, "Upstream timed out.", headers=rate),
        },
        USER,
        description="OpenAI's request and response, unchanged: the gateway validates `model`, "
        "`messages`, `stream`, `max_tokens`, `max_completion_tokens`, `stream_options` and "
        "`session_id`, rewrites `model` to the upstream id and forwards every other field. "
        "`session_id` (extension, not forwarded) prepends that session's history and appends "
        'this turn to it; with the OpenAI SDK pass it as `extra_body={"session_id": ...}`.',
        requestBody=_body(_ref("ChatCompletionRequest"), example),
    )
    models = _op("listModels", "Models", "List the configured models",
                 {"200": _ok("OpenAI's model list.", _ref("ModelList")), "401": UNAUTHORIZED},
                 USER)  # fmt: skip
    model = _op(
        "retrieveModel",
        "Models",
        "Retrieve one model",
        {
            "200": _ok("The model.", _ref("Model")),
            "401": UNAUTHORIZED,
            "404": _error(ModelNotFound, "No such model."),
        },
        USER,
        parameters=[_param("model", "path", STR, "The public model name (may contain `/`).")],
    )
    return {
        "/v1/chat/completions": {"post": chat},
        "/v1/models": {"get": models},
        "/v1/models/{model}": {"get": model},
    }


SESSION_ID = _param("session_id", "path", STR, "A session id (`sess_...`).")


def _session_links() -> dict[str, Schema]:
    by_id = {"session_id": "$response.body#/id"}
    return {
        name: {"operationId": op, "parameters": by_id}
        for name, op in (
            ("GetSession", "getSession"),
            ("UpdateSession", "updateSession"),
            ("DeleteSession", "deleteSession"),
            ("ListSessionMessages", "listSessionMessages"),
        )
    }


def _session_paths() -> dict[str, Schema]:
    bad_query = _error(InvalidRequest, "A bad query parameter.", BAD_QUERY)
    bad_body = _error(InvalidRequest, "Malformed JSON or a bad field.", BAD_BODY)
    limit = _param(
        "limit", "query", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        "Page size.",
    )  # fmt: skip
    created = _ok("The new session.", _ref("Session"), links=_session_links())
    return {
        "/v1/ai/sessions": {
            "post": _op(
                "createSession", "Sessions", "Create a session",
                {"201": created, "400": bad_body, "401": UNAUTHORIZED,
                 "404": _error(ModelNotFound, "`model` is not a configured model."),
                 "413": TOO_LARGE, "503": DB_503},
                USER,
                requestBody=_body(_ref("SessionCreate"), {"title": "trip", "model": "echo"},
                                  required=False),
            ),
            "get": _op(
                "listSessions", "Sessions", "List the caller's sessions, newest-updated first",
                {"200": _ok("A page of sessions.", _ref("SessionList")), "400": bad_query,
                 "401": UNAUTHORIZED, "503": DB_503},
                USER,
                parameters=[
                    _param("status", "query", {"type": "string", "enum": SESSION_STATUSES},
                           "Only sessions with this status."),
                    limit,
                    _param("after", "query", STR, "Cursor: the last session id of the previous "
                           "page (an unknown id gives an empty page)."),
                ],
            ),
        },
        "/v1/ai/sessions/{session_id}": {
            "parameters": [SESSION_ID],
            "get": _op("getSession", "Sessions", "Retrieve a session",
                       {"200": _ok("The session.", _ref("Session")), "401": UNAUTHORIZED,
                        "404": SESSION_404, "503": DB_503}, USER),
            "patch": _op(
                "updateSession", "Sessions", "Rename or archive a session",
                {"200": _ok("The updated session.", _ref("Session")), "400": bad_body,
                 "401": UNAUTHORIZED, "404": SESSION_404, "413": TOO_LARGE, "503": DB_503},
                USER,
                requestBody=_body(_ref("SessionUpdate"), {"status": "archived"}, required=False),
            ),
            "delete": _op(
                "deleteSession", "Sessions", "Delete a session and its messages",
                {"204": {"description": "Deleted.", "headers": _headers()},
                 "401": UNAUTHORIZED, "404": SESSION_404, "503": DB_503},
                USER,
            ),
        },
        "/v1/ai/sessions/{session_id}/messages": {
            "parameters": [SESSION_ID],
            "get": _op(
                "listSessionMessages", "Sessions",
                "The newest messages of a session, oldest first",
                {"200": _ok("A page of messages.", _ref("MessageList")), "400": bad_query,
                 "401": UNAUTHORIZED, "404": SESSION_404, "503": DB_503},
                USER,
                parameters=[limit, _param("before", "query", STR,
                                          "Page to messages older than this message id.")],
            ),
        },
        "/v1/ai/usage": {
            "get": _op("getUsage", "Usage", "The caller's usage today and remaining quota",
                       {"200": _ok("Today's usage.", _ref("Usage")), "401": UNAUTHORIZED,
                        "503": DB_503}, USER),
        },
    }  # fmt: skip


def _admin_paths() -> dict[str, Schema]:
    def not_found(what: str, codes: Iterable[str] = ("not_found",)) -> Schema:
        return _error(NotFound, f"{ADMIN_DISABLED} {what}", codes)

    disabled = not_found("no such route.")
    bad_body = _error(InvalidRequest, "Malformed JSON or a bad field.", BAD_BODY)
    user_query = _param("user", "query", STR, "Only this user's rows.")
    revoke_link = {"RevokeKey": {"operationId": "revokeKey",
                                 "parameters": {"key": "$response.body#/id"}}}  # fmt: skip
    return {
        "/admin/keys": {
            "post": _op(
                "createKey", "Admin", "Create an API key for a user",
                {"201": _ok("The key (shown once).", _ref("CreatedApiKey"), links=revoke_link),
                 "400": bad_body, "401": ADMIN_UNAUTHORIZED, "404": disabled,
                 "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                requestBody=_body(_ref("ApiKeyCreate"), {"user": "carol", "name": "laptop"}),
            ),
            "get": _op(
                "listKeys", "Admin", "List API keys (never the keys themselves)",
                {"200": _ok("The keys.", _ref("ApiKeyList")), "401": ADMIN_UNAUTHORIZED,
                 "404": disabled, "503": DB_503},
                ADMIN, parameters=[user_query],
            ),
        },
        "/admin/keys/{key}": {
            "delete": _op(
                "revokeKey", "Admin", "Revoke a key by id or by its 12-character prefix",
                {"200": _ok("How many keys were revoked.", _ref("ApiKeyRevoked")),
                 "401": ADMIN_UNAUTHORIZED, "404": not_found("no active key matches."),
                 "503": DB_503},
                ADMIN,
                parameters=[_param("key", "path", STR, "A key id or key prefix (`sk-gw-...`).")],
            ),
        },
        "/admin/users/{uid}/quota": {
            "put": _op(
                "putUserQuota", "Admin", "Set a user's quota override (null: the tier's value)",
                {"200": _ok("The override and the limits now in force.", _ref("UserQuota")),
                 "400": bad_body, "401": ADMIN_UNAUTHORIZED, "404": disabled,
                 "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                parameters=[_param("uid", "path", STR, "The user id.")],
                requestBody=_body(_ref("QuotaUpdate"), {"tier": None, "rpm": 120, "tpd": 0},
                                  required=False),
            ),
        },
        "/admin/usage": {
            "get": _op(
                "getAdminUsage", "Admin", "Usage per user and model for one UTC day",
                {"200": _ok("Aggregated request log.", _ref("AdminUsage")),
                 "400": _error(InvalidRequest, "`day` is not a date.", ["invalid_value"]),
                 "401": ADMIN_UNAUTHORIZED, "404": disabled, "503": DB_503},
                ADMIN,
                parameters=[
                    user_query,
                    _param("day", "query", {"type": "string", "format": "date"},
                           "A UTC day, YYYY-MM-DD (default: today)."),
                ],
            ),
        },
        "/admin/routes": {
            "get": _op(
                "getRoutes", "Admin", "The routing table and deployment health",
                {"200": _ok("Models, deployments, fallbacks, health.", _ref("RouteList")),
                 "401": ADMIN_UNAUTHORIZED, "404": disabled},
                ADMIN,
            ),
        },
    }  # fmt: skip


def _ops_paths() -> dict[str, Schema]:
    text: Schema = {"type": "string"}
    asset_404 = _error(NotFound, "No such asset.")
    return {
        "/healthz": {"get": _op("healthz", "Operations", "200 while the process serves",
                                {"200": _ok("Alive.", _ref("Health"))}, PUBLIC)},
        "/readyz": {
            "get": _op(
                "readyz", "Operations", "Whether the database and Redis answer",
                {"200": _ok("Ready.", _ref("Readiness")),
                 "503": _ok("Not ready: `checks` says what is down (this 503 is not an "
                            "OpenAI error).", _ref("Readiness"))},
                PUBLIC,
            ),
        },
        "/metrics": {"get": _op("metrics", "Operations", "Prometheus metrics (text format)",
                                {"200": _ok("Prometheus exposition format.", text,
                                            "text/plain")}, PUBLIC)},
        "/openapi.json": {"get": _op("openapi", "Reference", "This document",
                                     {"200": _ok("OpenAPI 3.1.", {"type": "object"})}, PUBLIC)},
        "/docs": {"get": _op("docs", "Reference", "Browsable API reference (works offline)",
                             {"200": _ok("HTML page.", text, "text/html")}, PUBLIC)},
        "/docs/{asset}": {
            "get": _op(
                "docsAsset", "Reference", "A static file of the /docs page",
                {"200": {"description": "The file.", "headers": _headers(),
                         "content": {"text/css": {"schema": text},
                                     "text/javascript": {"schema": text},
                                     "text/plain": {"schema": text}}},
                 "404": asset_404},
                PUBLIC,
                parameters=[_param("asset", "path", {"type": "string", "examples": ["docs.js"]},
                                   "A file name.")],
            ),
        },
    }  # fmt: skip


def _refuse_nul(paths: dict[str, Schema]) -> dict[str, Schema]:
    """Every operation with a path or query parameter can get 400 `invalid_value` for NUL."""
    for item in paths.values():
        for method, op in item.items():
            if method == "parameters" or not (item.get("parameters") or op.get("parameters")):
                continue
            responses = op["responses"]
            if "400" not in responses:
                responses["400"] = _error(InvalidRequest, "NUL in the URL.", ["invalid_value"])
                op["responses"] = dict(sorted(responses.items()))
    return paths


def _version() -> str:
    try:
        return metadata.version("ai-gateway")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(*, tiers: Iterable[str] = ()) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document; `tiers` (the configured quota tiers) become enums."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AI Gateway",
            "version": _version(),
            "description": DESCRIPTION,
        },
        "tags": [
            {"name": "Chat", "description": "OpenAI's chat completions, proxied."},
            {"name": "Models", "description": "Models from the config."},
            {"name": "Sessions", "description": "Server-side conversation history."},
            {"name": "Usage", "description": "The caller's usage and quota."},
            {"name": "Admin", "description": "Keys, quotas, usage, routes (admin key)."},
            {"name": "Operations", "description": "Health, readiness, metrics (no key)."},
            {"name": "Reference", "description": "This reference (no key)."},
        ],
        "paths": _refuse_nul(
            {**_chat_paths(), **_session_paths(), **_admin_paths(), **_ops_paths()}
        ),
        "components": {
            "securitySchemes": {
                "UserKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A gateway API key: `sk-gw-...` from `gateway keys create` "
                    "or POST /admin/keys, or a static key from `auth.keys`.",
                },
                "AdminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`auth.admin_key` from the config (empty: /admin is off).",
                },
            },
            "headers": HEADERS,
            "schemas": _schemas(list(tiers)),
        },
    }
