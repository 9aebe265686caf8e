"""The paths of the OpenAPI document: every operation the gateway serves, with its parameters,
body, security and the responses (error codes included) it can return."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidRequest, ModelNotFound, NotFound
from .anthropic import messages_paths
from .common import (
    ADMIN,
    ADMIN_DISABLED,
    ADMIN_UNAUTHORIZED,
    BAD_QUERY,
    DB_503,
    MALFORMED,
    PUBLIC,
    SESSION_404,
    TOO_LARGE,
    UNAUTHORIZED,
    USER,
    links,
    proxied_errors,
    stream_answer,
)
from .endpoints import endpoint_paths
from .governance import NO_PERIOD_409
from .schemas import SESSION_STATUSES
from .shapes import STR, Schema, body, error, header_refs, ok, op, param, ref


def all_paths() -> dict[str, Schema]:
    """Every path item of the document, keyed by path."""
    return _refuse_nul(
        {
            **_chat_paths(),
            **endpoint_paths(),
            **messages_paths(),
            **_session_paths(),
            **_admin_paths(),
            **_ops_paths(),
        }
    )


def _chat_paths() -> dict[str, Schema]:
    answer = stream_answer(
        "The upstream's answer: JSON, or with `stream: true` an SSE stream whose "
        "`data:` events are ChatCompletionChunk objects, ending with `data: [DONE]`.",
        ref("ChatCompletion"),
        ref("ChatCompletionStreamEvent"),
        'data: {"object":"chat.completion.chunk","choices":[...]}\n\ndata: [DONE]\n\n',
    )
    example = {"model": "echo", "messages": [{"role": "user", "content": "Hello"}]}
    errors = proxied_errors(
        not_found=["model_not_found", "session_not_found"],
        not_found_note="Unknown model, or a session that is not the caller's.",
        unavailable=["provider_not_configured", "service_unavailable"],
        unavailable_note="The model's provider has no api_key, or the session store is down.",
    )
    chat = op(
        "createChatCompletion",
        "Chat",
        "Create a chat completion (OpenAI's API, plus session_id)",
        {"200": answer, **errors},
        USER,
        description="OpenAI's request and response, unchanged: the gateway validates `model`, "
        "`messages`, `stream`, `max_tokens`, `max_completion_tokens`, `stream_options` and "
        "`session_id`, rewrites `model` to the upstream id and forwards every other field. "
        "`session_id` (extension, not forwarded) prepends that session's history and appends "
        'this turn to it; with the OpenAI SDK pass it as `extra_body={"session_id": ...}`. '
        "Logged with `endpoint` `chat`.",
        requestBody=body(ref("ChatCompletionRequest"), example),
    )
    models = op("listModels", "Models", "List the configured models",
                {"200": ok("OpenAI's model list.", ref("ModelList")), "401": UNAUTHORIZED},
                USER)  # fmt: skip
    model = op(
        "retrieveModel",
        "Models",
        "Retrieve one model",
        {
            "200": ok("The model.", ref("Model")),
            "401": UNAUTHORIZED,
            "404": error(ModelNotFound, "No such model."),
        },
        USER,
        parameters=[param("model", "path", STR, "The public model name (may contain `/`).")],
    )
    return {
        "/v1/chat/completions": {"post": chat},
        "/v1/models": {"get": models},
        "/v1/models/{model}": {"get": model},
    }


SESSION_ID = param("session_id", "path", STR, "A session id (`sess_...`).")


def _session_paths() -> dict[str, Schema]:
    bad_query = error(InvalidRequest, "A bad query parameter.", BAD_QUERY)
    limit = param(
        "limit", "query", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        "Page size.",
    )  # fmt: skip
    session_links = links(
        "session_id", GetSession="getSession", UpdateSession="updateSession",
        DeleteSession="deleteSession", ListSessionMessages="listSessionMessages",
    )  # fmt: skip
    created = ok("The new session.", ref("Session"), links=session_links)
    return {
        "/v1/ai/sessions": {
            "post": op(
                "createSession", "Sessions", "Create a session",
                {"201": created, "400": MALFORMED, "401": UNAUTHORIZED,
                 "404": error(ModelNotFound, "`model` is not a configured model."),
                 "413": TOO_LARGE, "503": DB_503},
                USER,
                requestBody=body(ref("SessionCreate"), {"title": "trip", "model": "echo"},
                                 required=False),
            ),
            "get": op(
                "listSessions", "Sessions", "List the caller's sessions, newest-updated first",
                {"200": ok("A page of sessions.", ref("SessionList")), "400": bad_query,
                 "401": UNAUTHORIZED, "503": DB_503},
                USER,
                parameters=[
                    param("status", "query", {"type": "string", "enum": SESSION_STATUSES},
                          "Only sessions with this status."),
                    limit,
                    param("after", "query", STR, "Cursor: the last session id of the previous "
                          "page (an unknown id gives an empty page)."),
                ],
            ),
        },
        "/v1/ai/sessions/{session_id}": {
            "parameters": [SESSION_ID],
            "get": op("getSession", "Sessions", "Retrieve a session",
                      {"200": ok("The session.", ref("Session")), "401": UNAUTHORIZED,
                       "404": SESSION_404, "503": DB_503}, USER),
            "patch": op(
                "updateSession", "Sessions", "Rename or archive a session",
                {"200": ok("The updated session.", ref("Session")), "400": MALFORMED,
                 "401": UNAUTHORIZED, "404": SESSION_404, "413": TOO_LARGE, "503": DB_503},
                USER,
                requestBody=body(ref("SessionUpdate"), {"status": "archived"}, required=False),
            ),
            "delete": op(
                "deleteSession", "Sessions", "Delete a session and its messages",
                {"204": {"description": "Deleted.", "headers": header_refs()},
                 "401": UNAUTHORIZED, "404": SESSION_404, "503": DB_503},
                USER,
            ),
        },
        "/v1/ai/sessions/{session_id}/messages": {
            "parameters": [SESSION_ID],
            "get": op(
                "listSessionMessages", "Sessions",
                "The newest messages of a session, oldest first",
                {"200": ok("A page of messages.", ref("MessageList")), "400": bad_query,
                 "401": UNAUTHORIZED, "404": SESSION_404, "503": DB_503},
                USER,
                parameters=[limit, param("before", "query", STR,
                                         "Page to messages older than this message id.")],
            ),
        },
        "/v1/ai/usage": {
            "get": op("getUsage", "Usage",
                      "The caller's usage today, remaining quota and budgets",
                      {"200": ok("Today's usage.", ref("Usage")), "401": UNAUTHORIZED,
                       "503": DB_503}, USER),
        },
    }  # fmt: skip


def _admin_paths() -> dict[str, Schema]:
    def not_found(what: str, codes: Iterable[str] = ("not_found",)) -> Schema:
        return error(NotFound, f"{ADMIN_DISABLED} {what}", codes)

    disabled = not_found("no such route.")
    user_query = param("user", "query", STR, "Only this user's rows.")
    revoke_link = links("key", RevokeKey="revokeKey", UpdateKey="updateKey")
    return {
        "/admin/keys": {
            "post": op(
                "createKey", "Admin", "Create an API key for a user",
                {"201": ok("The key (shown once).", ref("CreatedApiKey"), links=revoke_link),
                 "400": MALFORMED, "401": ADMIN_UNAUTHORIZED, "404": disabled,
                 "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                requestBody=body(ref("ApiKeyCreate"), {"user": "carol", "name": "laptop"}),
            ),
            "get": op(
                "listKeys", "Admin", "List API keys (never the keys themselves)",
                {"200": ok("The keys.", ref("ApiKeyList")), "401": ADMIN_UNAUTHORIZED,
                 "404": disabled, "503": DB_503},
                ADMIN, parameters=[user_query],
            ),
        },
        "/admin/keys/{key}": {
            "delete": op(
                "revokeKey", "Admin", "Revoke a key by id or by its 12-character prefix",
                {"200": ok("How many keys were revoked.", ref("ApiKeyRevoked")),
                 "401": ADMIN_UNAUTHORIZED, "404": not_found("no active key matches."),
                 "503": DB_503},
                ADMIN,
                parameters=[param("key", "path", STR, "A key id or key prefix (`sk-gw-...`).")],
            ),
        },
        "/admin/users/{uid}/quota": {
            "put": op(
                "putUserQuota", "Admin", "Set a user's quota override (null: the tier's value)",
                {"200": ok("The override and the limits now in force.", ref("UserQuota")),
                 "400": MALFORMED, "401": ADMIN_UNAUTHORIZED, "404": disabled,
                 "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                parameters=[param("uid", "path", STR, "The user id.")],
                requestBody=body(ref("QuotaUpdate"), {"tier": None, "rpm": 120, "tpd": 0},
                                 required=False),
            ),
            "patch": op(
                "patchUserQuota", "Admin",
                "Change some of a user's quota override (fields left out keep their values)",
                {"200": ok("The override and the limits now in force.", ref("UserQuota")),
                 "400": MALFORMED, "401": ADMIN_UNAUTHORIZED, "404": disabled,
                 "409": NO_PERIOD_409, "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                parameters=[param("uid", "path", STR, "The user id.")],
                requestBody=body(ref("QuotaChange"), {"max_budget_usd": 5}, required=False),
            ),
        },
        "/admin/usage": {
            "get": op(
                "getAdminUsage", "Admin", "Usage per user and model for one UTC day",
                {"200": ok("Aggregated request log.", ref("AdminUsage")),
                 "400": error(InvalidRequest, "`day` is not a date.", ["invalid_value"]),
                 "401": ADMIN_UNAUTHORIZED, "404": disabled, "503": DB_503},
                ADMIN,
                parameters=[
                    user_query,
                    param("day", "query", {"type": "string", "format": "date"},
                          "A UTC day, YYYY-MM-DD (default: today)."),
                ],
            ),
        },
        "/admin/routes": {
            "get": op(
                "getRoutes", "Admin", "The routing table and deployment health",
                {"200": ok("Models, deployments, fallbacks, health.", ref("RouteList")),
                 "401": ADMIN_UNAUTHORIZED, "404": disabled},
                ADMIN,
            ),
        },
        "/admin/mcp": {
            "get": op(
                "getMcpServers", "Admin", "The upstream MCP servers, their state and tools",
                {"200": ok("Every configured MCP server (none: an empty list); the gateway "
                           "serves their tools at /mcp.", ref("McpServerList")),
                 "401": ADMIN_UNAUTHORIZED, "404": disabled},
                ADMIN,
            ),
        },
    }  # fmt: skip


def _ops_paths() -> dict[str, Schema]:
    text: Schema = {"type": "string"}
    asset_404 = error(NotFound, "No such asset.")
    return {
        "/healthz": {"get": op("healthz", "Operations", "200 while the process serves",
                               {"200": ok("Alive.", ref("Health"))}, PUBLIC)},
        "/readyz": {
            "get": op(
                "readyz", "Operations", "Whether the database and Redis answer",
                {"200": ok("Ready.", ref("Readiness")),
                 "503": ok("Not ready: `checks` says what is down (this 503 is not an "
                           "OpenAI error).", ref("Readiness"))},
                PUBLIC,
            ),
        },
        "/metrics": {"get": op("metrics", "Operations", "Prometheus metrics (text format)",
                               {"200": ok("Prometheus exposition format.", text,
                                          "text/plain")}, PUBLIC)},
        "/openapi.json": {"get": op("openapi", "Reference", "This document",
                                    {"200": ok("OpenAPI 3.1.", {"type": "object"})}, PUBLIC)},
        "/docs": {"get": op("docs", "Reference", "Browsable API reference (works offline)",
                            {"200": ok("HTML page.", text, "text/html")}, PUBLIC)},
        "/docs/{asset}": {
            "get": op(
                "docsAsset", "Reference", "A static file of the /docs page",
                {"200": {"description": "The file.", "headers": header_refs(),
                         "content": {"text/css": {"schema": text},
                                     "text/javascript": {"schema": text},
                                     "text/plain": {"schema": text}}},
                 "404": asset_404},
                PUBLIC,
                parameters=[param("asset", "path", {"type": "string", "examples": ["docs.js"]},
                                  "A file name.")],
            ),
        },
    }  # fmt: skip


def _refuse_nul(paths: dict[str, Schema]) -> dict[str, Schema]:
    """Every operation with a path or query parameter can get 400 `invalid_value` for NUL."""
    for item in paths.values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            params = [*item.get("parameters", ()), *operation.get("parameters", ())]
            if not any(p["in"] in ("path", "query") for p in params):
                continue  # headers are not the URL
            responses = operation["responses"]
            if "400" not in responses:
                responses["400"] = error(InvalidRequest, "NUL in the URL.", ["invalid_value"])
                operation["responses"] = dict(sorted(responses.items()))
    return paths
