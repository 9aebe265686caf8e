"""Errors in the shape of Anthropic's Messages API, for the gateway's Anthropic front door:
``{"type": "error", "error": {"type", "message"}}`` with Anthropic's error type for each status."""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import clip

# Anthropic's error types by status (their "errors" page). The gateway's 503s (provider not
# configured, service unavailable) are temporary capacity trouble, the meaning of overloaded_error.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's ``error.type`` for an HTTP status: other 4xx are invalid_request_error,
    other 5xx (500, 502) api_error."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(status: int, message: str, request_id: str | None = None) -> bytes:
    """An error response body in Anthropic's shape (``request_id`` added when given)."""
    payload: dict[str, Any] = {
        "type": "error",
        "error": {"type": anthropic_error_type(status), "message": message},
    }
    if request_id is not None:
        payload["request_id"] = request_id
    return orjson.dumps(payload)


def openai_error_to_anthropic(status: int, body: bytes) -> bytes:
    """An upstream's error body (OpenAI's ``{"error": {"message"}}`` or anything else) in
    Anthropic's shape, keeping the upstream's message."""
    return error_body(status, upstream_error_message(status, body))


def upstream_error_message(status: int, body: bytes) -> str:
    """The message of an upstream error body: ``error.message``, a string ``error`` or
    ``message``, else the body's text; a generic line when the body is empty."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        error = obj.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for value in (error, obj.get("message")):
            if isinstance(value, str) and value:
                return value
    text = body.decode("utf-8", "replace").strip()
    return clip(text, 1000) if text else f"upstream returned HTTP {status}"
