"""Request id, authentication and error rendering: the one place errors become responses.
Refuses to render a JSON error once a response has started (streams end with an in-stream event)."""

from __future__ import annotations

import logging
import uuid

from aiohttp import web

from ..errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ServiceUnavailable,
)
from ..store import StoreUnavailable
from .keys import PRINCIPAL, REQUEST_ID, SERVICES

log = logging.getLogger("gateway.web")

JSON = "application/json"


def error_response(error: GatewayError, request_id: str) -> web.Response:
    """An OpenAI-shaped error response carrying the error's own headers."""
    content_type = getattr(error, "content_type", JSON)
    response = web.Response(
        status=error.status, body=error.body(), content_type=None, headers=error.headers
    )
    response.headers["Content-Type"] = content_type
    response.headers["X-Request-Id"] = request_id
    return response


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 128 and given.isprintable() and given.isascii():
        return given
    return uuid.uuid4().hex


def _from_http(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return RequestTooLarge("The request body is larger than this gateway accepts.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        error = MethodNotAllowed(f"Method {exc.method} is not allowed on this route.")
        error.headers["Allow"] = exc.headers.get("Allow", "")  # RFC 9110: a 405 lists them
        return error
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("Unknown route.")
    error = GatewayError(exc.reason or "HTTP error")
    error.status = exc.status
    error.type = "invalid_request_error" if exc.status < 500 else "server_error"
    return error


def _refuse_nul(request: web.Request) -> None:
    """No id, cursor or filter holds NUL, and PostgreSQL text cannot: refuse it at the door."""
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.items()):
        raise InvalidRequest("The URL must not contain NUL characters.", code="invalid_value")


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Assign the request id; render every GatewayError and unexpected failure as OpenAI JSON."""
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    try:
        _refuse_nul(request)
        response = await handler(request)
    except GatewayError as error:
        return error_response(error, request_id)
    except web.HTTPException as exc:
        return error_response(_from_http(exc), request_id)
    except StoreUnavailable:
        error = ServiceUnavailable("The database is unavailable; try again shortly.")
        return error_response(error, request_id)
    except Exception:
        log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
        return error_response(GatewayError("The gateway failed to handle the request."), request_id)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Bearer key on every /v1 route; the Principal is stored on the request."""
    if request.path.startswith("/v1/"):
        auth = request.app[SERVICES].authenticator
        request[PRINCIPAL] = await auth.authenticate(request.headers.get("Authorization"))
    return await handler(request)
