"""Responses and security requirements shared by the paths: the usual errors, and the error set
of a proxied endpoint (routed, admitted, forwarded upstream) with its rate-limit headers."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import (
    InvalidApiKey,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    RateLimited,
    RequestTooLarge,
    ServiceUnavailable,
    SessionNotFound,
)
from .shapes import RATE_HEADERS, Schema, Security, error, header_refs

BAD_FIELD = ["invalid_request", "missing_required_parameter", "invalid_type", "invalid_value"]
BAD_BODY = [*BAD_FIELD, "unknown_parameter"]
BAD_QUERY = ["invalid_type", "invalid_value"]
DB_DOWN = "The database is unavailable (`service_unavailable`); retry shortly."
UPSTREAM_NOTE = " An upstream error with this status passes through with upstream's body."

UNAUTHORIZED = error(InvalidApiKey, "Missing, unknown or revoked API key.")
ADMIN_UNAUTHORIZED = error(
    InvalidApiKey,
    "Missing or wrong admin key (or, with auth.oidc, no live console session).",
    ["invalid_api_key", "invalid_session"],
)
ADMIN_DISABLED = "The admin API is disabled (empty `auth.admin_key`), or"
TOO_LARGE = error(RequestTooLarge, "The body is larger than `server.max_body_bytes`.")
DB_503 = error(ServiceUnavailable, DB_DOWN)
SESSION_404 = error(SessionNotFound, "No such session, or it belongs to another user.")
MALFORMED = error(InvalidRequest, "Malformed JSON or a bad field.", BAD_BODY)
USER: Security = [{"UserKey": []}]
ADMIN: Security = [{"AdminKey": []}]
PUBLIC: Security = []


def links(param_name: str, **operations: str) -> dict[str, Schema]:
    """Links from a created object to the operations that take its `id` as `param_name`."""
    by_id = {param_name: "$response.body#/id"}
    return {
        name: {"operationId": target, "parameters": by_id} for name, target in operations.items()
    }


def proxied_errors(
    *,
    bad: Iterable[str] = BAD_FIELD,
    bad_note: str = "Malformed JSON or a bad field.",
    not_found: Iterable[str] = ("model_not_found",),
    not_found_note: str = "Unknown model.",
    unavailable: Iterable[str] = ("provider_not_configured",),
    unavailable_note: str = "The model's provider has no api_key.",
) -> dict[str, Schema]:
    """The errors of a request that is routed, admitted and forwarded like a chat completion:
    every one but the 401 carries the rate-limit headers; an upstream 4xx passes through."""
    rate = RATE_HEADERS
    return {
        "400": error(InvalidRequest, bad_note + UPSTREAM_NOTE, bad, rate),
        "401": error(InvalidApiKey, "Missing, unknown or revoked API key." + UPSTREAM_NOTE),
        "404": error(ModelNotFound, not_found_note + UPSTREAM_NOTE, not_found, rate),
        "413": error(
            RequestTooLarge, "The body is larger than `server.max_body_bytes`.", headers=rate
        ),
        "429": error(
            RateLimited,
            "RPM or daily token quota exceeded (`Retry-After` is "
            "always sent with the gateway's own 429)." + UPSTREAM_NOTE,
            ["rate_limit_exceeded", "daily_token_quota_exceeded"],
            [*rate, "Retry-After"],
        ),
        "4XX": {
            "description": "Another upstream 4xx: its status, content type and body, "
            "passed through unchanged.",
            "headers": header_refs(*rate),
            "content": {"application/json": {"schema": {}}},
        },
        "502": error(
            ProviderError,
            "Upstream 5xx or unreachable (after retries and fallbacks).",
            headers=rate,
        ),
        "503": error(ProviderNotConfigured, unavailable_note, unavailable, rate),
        "504": error(ProviderTimeout, "Upstream timed out.", headers=rate),
    }


def stream_answer(
    description: str, json_schema: Schema, event_schema: Schema, example: str
) -> Schema:
    """A 200 that is JSON, or with `"stream": true` an SSE stream, with the rate-limit headers."""
    return {
        "description": description,
        "headers": header_refs(*RATE_HEADERS, "Cache-Control", "X-Accel-Buffering"),
        "content": {
            "application/json": {"schema": json_schema},
            "text/event-stream": {"schema": event_schema, "example": example},
        },
    }
