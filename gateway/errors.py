"""The gateway's exception tree; each class knows its HTTP status and OpenAI error type and code.
One middleware renders them (web/middleware.py); streams render them as one in-stream event.

    GatewayError            500 server_error / internal_error
    ├── InvalidRequest        400 invalid_request_error / invalid_request (+ param)
    ├── InvalidApiKey         401 invalid_request_error / invalid_api_key
    ├── NotFound              404 invalid_request_error / not_found
    │   ├── ModelNotFound     404 ... / model_not_found
    │   └── SessionNotFound   404 ... / session_not_found
    ├── MethodNotAllowed      405 invalid_request_error / method_not_allowed
    ├── Conflict              409 invalid_request_error / conflict (e.g. team_exists)
    ├── RequestTooLarge       413 invalid_request_error / request_too_large
    ├── RateLimited           429 rate_limit_error / rate_limit_exceeded or daily_token_quota_*
    ├── UpstreamRejected      upstream's 4xx status, upstream's body passed through
    ├── ProviderError         502 server_error / provider_error
    ├── ProviderNotConfigured 503 server_error / provider_not_configured
    ├── ServiceUnavailable    503 server_error / service_unavailable
    └── ProviderTimeout       504 server_error / provider_timeout
"""

from __future__ import annotations

from typing import Any

import orjson


def clip(value: object, limit: int = 64) -> str:
    """A client-supplied value, shortened for an error message (never echo a megabyte back)."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class GatewayError(Exception):
    """Base of every error a client can see."""

    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = {}

    def payload(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        """The JSON body of the error response."""
        return orjson.dumps(self.payload())


class InvalidRequest(GatewayError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class InvalidApiKey(GatewayError):
    status, type, code = 401, "invalid_request_error", "invalid_api_key"


class NotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


def session_not_found(session_id: str) -> SessionNotFound:
    """The one answer for a session that is missing or someone else's."""
    return SessionNotFound(f"No session found with id `{clip(session_id)}`.", param="session_id")


class MethodNotAllowed(GatewayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class PermissionDenied(GatewayError):
    """The caller is known but their role may not do this (SPEC 19)."""

    status, type, code = 403, "permission_error", "permission_denied"


class Conflict(GatewayError):
    status, type, code = 409, "invalid_request_error", "conflict"


class RequestTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class RequestTimeout(GatewayError):
    status, type, code = 408, "invalid_request_error", "request_timeout"


class RateLimited(GatewayError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"


class ProviderError(GatewayError):
    status, type, code = 502, "server_error", "provider_error"


class ProviderNotConfigured(GatewayError):
    status, type, code = 503, "server_error", "provider_not_configured"


class ServiceUnavailable(GatewayError):
    status, type, code = 503, "server_error", "service_unavailable"


class ProviderTimeout(GatewayError):
    status, type, code = 504, "server_error", "provider_timeout"


class UpstreamRejected(GatewayError):
    """An upstream 4xx: its status and body reach the client unchanged."""

    type, code = "invalid_request_error", "upstream_error"

    def __init__(self, status: int, raw_body: bytes, content_type: str | None):
        super().__init__(f"upstream returned HTTP {status}")
        self.status = status
        self.raw_body = raw_body
        self.content_type = content_type or "application/json"

    def body(self) -> bytes:
        return self.raw_body


def stream_error_event(error: GatewayError) -> bytes:
    """The one SSE event sent when a failure happens after a stream has begun."""
    payload = error.payload()
    payload["error"]["code"] = "stream_error"
    return b"data: " + orjson.dumps(payload) + b"\n\n"
