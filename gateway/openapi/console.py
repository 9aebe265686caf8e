"""The console's part of the OpenAPI document (SPEC 11): the request-log search and failures for
admins, a user's own requests and keys, and the /ui page with its files. Pure data."""

from __future__ import annotations

from ..errors import InvalidRequest, NotFound
from .common import ADMIN, ADMIN_DISABLED, ADMIN_UNAUTHORIZED, DB_503, PUBLIC, UNAUTHORIZED, USER
from .schemas import DAY
from .shapes import (
    INT,
    STR,
    UNIX,
    Schema,
    const,
    error,
    header_refs,
    list_of,
    nullable,
    ok,
    op,
    param,
    record,
    ref,
)

STATUSES = ["ok", "client_closed", "upstream_error", "rejected", "error"]
BAD_QUERY = error(
    InvalidRequest,
    "A bad filter, limit or time (or NUL in the URL).",
    ["invalid_type", "invalid_value"],
)


def _time(name: str, description: str) -> Schema:
    """A `from` / `to` query parameter: a date, a date-time or Unix seconds."""
    out = param(name, "query", STR, description)
    out["schema"] = {
        "type": "string",
        "anyOf": [{"format": "date"}, {"format": "date-time"}, {"pattern": r"^\d{1,11}$"}],
        "examples": ["2026-01-31", "2026-01-31T12:00:00Z", "1769860800"],
    }
    return out


def _filters(*, with_user: bool) -> list[Schema]:
    user = [param("user", "query", STR, "Only this user's requests.")] if with_user else []
    return [
        *user,
        param("model", "query", STR, "Only requests for this public model name."),
        param(
            "status",
            "query",
            {"type": "string", "enum": STATUSES},
            "Only requests that ended so; `error` means every failure (any status but ok and "
            "client_closed).",
        ),
        param(
            "endpoint",
            "query",
            {**STR, "examples": ["chat", "responses", "messages", "embeddings", "completions"]},
            "Only requests to this endpoint.",
        ),
        _time(
            "from",
            "Only requests at or after this time: a UTC date, an RFC 3339 date-time or Unix "
            "seconds.",
        ),
        _time(
            "to",
            "Only requests before this time; a date includes that whole UTC day (`to` at or "
            "before `from` gives an empty page).",
        ),
        param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
            "Page size.",
        ),
        param(
            "before",
            "query",
            STR,
            "Cursor: the last request id of the previous page (an unknown id gives an empty page).",
        ),
    ]


def console_paths() -> dict[str, Schema]:
    """The console's paths, keyed by path."""
    disabled = error(NotFound, f"{ADMIN_DISABLED} no such route.")
    page = ok("A page of the request log, newest first.", ref("AiRequestList"))
    text: Schema = {"type": "string"}
    return {
        "/admin/requests": {
            "get": op(
                "searchRequests", "Admin", "Search the request log (newest first, paged)",
                {"200": page, "400": BAD_QUERY, "401": ADMIN_UNAUTHORIZED, "404": disabled,
                 "503": DB_503},
                ADMIN, parameters=_filters(with_user=True),
            ),
        },
        "/admin/requests/{request_id}": {
            "get": op(
                "getRequest", "Admin", "One request of the log, every column",
                {"200": ok("The request.", ref("AiRequest")),
                 "400": error(InvalidRequest, "NUL in the URL.", ["invalid_value"]),
                 "401": ADMIN_UNAUTHORIZED,
                 "404": error(NotFound, f"{ADMIN_DISABLED} no request has this id."),
                 "503": DB_503},
                ADMIN,
                parameters=[param("request_id", "path", STR, "A request id (X-Request-Id).")],
            ),
        },
        "/admin/errors": {
            "get": op(
                "getErrors", "Admin",
                "Failed requests per UTC day and status (neither ok nor client_closed)",
                {"200": ok("Counts per day and status.", ref("ErrorCounts")),
                 "400": error(InvalidRequest, "A bad date.", ["invalid_value"]),
                 "401": ADMIN_UNAUTHORIZED, "404": disabled, "503": DB_503},
                ADMIN,
                parameters=[
                    param("from", "query", DAY, "First UTC day (default: 29 days before `to`)."),
                    param("to", "query", DAY, "Last UTC day, included (default: today)."),
                ],
            ),
        },
        "/v1/ai/requests": {
            "get": op(
                "listOwnRequests", "Usage", "The caller's own requests (newest first, paged)",
                {"200": page, "400": BAD_QUERY, "401": UNAUTHORIZED, "503": DB_503},
                USER, parameters=_filters(with_user=False),
            ),
        },
        "/v1/ai/keys": {
            "get": op(
                "listOwnKeys", "Usage", "The caller's own API keys (never the keys themselves)",
                {"200": ok("The caller's keys.", ref("OwnApiKeyList")), "401": UNAUTHORIZED,
                 "503": DB_503},
                USER,
            ),
        },
        "/ui": {
            "get": op("console", "Reference", "The web console (works offline; asks for a key)",
                      {"200": ok("HTML page.", text, "text/html")}, PUBLIC),
        },
        "/ui/{asset}": {
            "get": op(
                "consoleAsset", "Reference", "A static file of the console",
                {"200": {"description": "The file.", "headers": header_refs(),
                         "content": {"text/css": {"schema": text},
                                     "text/javascript": {"schema": text},
                                     "image/svg+xml": {"schema": text},
                                     "text/plain": {"schema": text}}},
                 "400": error(InvalidRequest, "NUL in the URL.", ["invalid_value"]),
                 "404": error(NotFound, "No such file.")},
                PUBLIC,
                parameters=[param("asset", "path", {"type": "string", "examples": ["app.js"]},
                                  "A file name.")],
            ),
        },
    }  # fmt: skip


def console_schemas() -> dict[str, Schema]:
    """The console's component schemas."""
    nstr, nint = nullable(STR), nullable(INT)
    request = record(
        {
            "id": STR,
            "object": const("ai.request"),
            "created_at": UNIX,
            "user": STR,
            "key_id": nstr,
            "team": nstr,
            "endpoint": STR,
            "model": STR,
            "provider": nstr,
            "upstream_model": nstr,
            "stream": {"type": "boolean"},
            "status": STR,
            "status_code": INT,
            "prompt_tokens": INT,
            "completion_tokens": INT,
            "total_tokens": INT,
            "cached_tokens": {
                **INT,
                "description": "Of prompt_tokens: cache reads.",
            },
            "cache_write_tokens": {**INT, "description": "Of prompt_tokens: written to the cache."},
            "reasoning_tokens": {**INT, "description": "Of completion_tokens: reasoning."},
            "usage_estimated": {"type": "boolean"},
            "cost_usd": {"type": "string", "description": "USD, exact decimal text."},
            "cache_savings_usd": {
                "type": "string",
                "description": "USD the prompt cache saved (all input at the input price, less"
                " cost_usd); negative when cache writes cost more than reads saved.",
            },
            "cache_hit": {
                "type": "boolean",
                "description": "Answered by the gateway's response cache: no tokens, no cost.",
            },
            "cache_saved_tokens": {**INT, "description": "A cache hit's tokens, not used."},
            "cache_saved_usd": {
                "type": "string",
                "description": "What a cache hit would have cost.",
            },
            "latency_ms": INT,
            "ttft_ms": nint,
            "attempts": INT,
            "session_id": nstr,
            "error": nstr,
            "tags": {"type": "array", "items": STR},
        }
    )
    request["properties"]["metadata"] = {
        "type": ["object", "null"],
        "description": "The key's metadata (admin routes only).",
    }
    own_key = record(
        {
            "id": STR,
            "object": const("api_key"),
            "key_prefix": STR,
            "name": STR,
            "tier": nstr,
            "status": {"type": "string", "enum": ["active", "revoked"]},
            "expired": {"type": "boolean"},
            "current": {"type": "boolean", "description": "This request's key."},
            "created_at": UNIX,
            "last_used_at": nullable(UNIX),
            "expires_at": nullable(UNIX),
            "models": {"type": ["array", "null"], "items": STR},
            "rpm": nint,
            "tpd": nint,
            "max_budget_usd": nstr,
            "budget_period": nstr,
            "team": nstr,
            "max_parallel_requests": nint,
        }
    )
    failures = record({"day": DAY, "status": STR, "requests": INT})
    return {
        "AiRequest": request,
        "AiRequestList": list_of("AiRequest", has_more={"type": "boolean"}),
        "ErrorCounts": list_of("ErrorCount", **{"from": DAY, "to": DAY}),
        "ErrorCount": failures,
        "OwnApiKey": own_key,
        "OwnApiKeyList": list_of("OwnApiKey", user=STR, current_key_id=STR),
    }
