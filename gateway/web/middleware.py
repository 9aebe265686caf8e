"""The front door of every request: in-flight count, request id, keys, and the one place errors
become responses.
Refuses to render a JSON error once a response has started (streams end with an in-stream event)."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from ..access.auth import Principal
from ..errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ServiceUnavailable,
    UpstreamRejected,
)
from ..store import StoreUnavailable
from ..tracing import NO_TRACE, RequestTrace
from ..translate.messages.errors import error_body as anthropic_error_body
from .console_auth import admin_actor, console_principal
from .keys import ACTOR, PRINCIPAL, REQUEST_ID, SERVICES, STARTED, TRACE, TRACER, UPSTREAM_S
from .lifecycle import INFLIGHT

log = logging.getLogger("gateway.web")

JSON = "application/json"


def _anthropic_route(request: web.Request) -> bool:
    """Routes of the Anthropic front door answer errors in Anthropic's shape."""
    return request.path == "/v1/messages" or request.path.startswith("/v1/messages/")


def error_response(error: GatewayError, anthropic: bool = False) -> web.Response:
    """An error response in OpenAI's shape (or Anthropic's) carrying the error's own headers.
    An upstream's own 4xx body is passed through as it came (already in the route's shape)."""
    content_type = getattr(error, "content_type", JSON)
    body = error.body()
    if anthropic and not isinstance(error, UpstreamRejected):
        body = anthropic_error_body(error.status, error.message)
    response = web.Response(
        status=error.status, body=body, content_type=None, headers=error.headers
    )
    response.headers["Content-Type"] = content_type
    return response


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 128 and given.isprintable() and given.isascii():
        return given
    return f"{random.getrandbits(128):032x}"  # unique, not secret: no syscall, no UUID object


def _from_http(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return RequestTooLarge("The request body is larger than this gateway accepts.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        error = MethodNotAllowed(f"Method {exc.method} is not allowed on this route.")
        error.headers["Allow"] = exc.headers.get("Allow", "")  # RFC 9110: a 405 lists them
        return error
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("Unknown route.")
    other = GatewayError(exc.reason or "HTTP error")
    other.status = exc.status
    other.type = "invalid_request_error" if exc.status < 500 else "server_error"
    return other


def _refuse_nul(request: web.Request) -> None:
    """No id, cursor or filter holds NUL, and PostgreSQL text cannot: refuse it at the door."""
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.items()):
        raise InvalidRequest("The URL must not contain NUL characters.", code="invalid_value")


@web.middleware
async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request, in one step: held in flight until answered (streams included), given its
    id, let in (a key on /v1 and /mcp, the admin key on /admin), every failure rendered as an
    error in its route's shape (OpenAI's, or Anthropic's on the Messages routes). An API
    request (/v1) is a server span when tracing is on."""
    tracker = request.app[INFLIGHT]
    ticket = tracker.begin()
    request[STARTED] = time.perf_counter()
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    path = request.path
    trace: RequestTrace = NO_TRACE
    if path.startswith("/v1/"):
        tracer = request.app[TRACER]
        trace = request[TRACE] = tracer.start(request.method, path, request.headers, request_id)
    try:
        _refuse_nul(request)
        if path.startswith("/v1/") or path == "/mcp":
            request[PRINCIPAL] = await _authenticate(request)
        elif path.startswith("/admin/"):
            request[ACTOR] = await admin_actor(request)
        response = await handler(request)
        trace.end(response.status)
        return response
    except asyncio.CancelledError:
        trace.end(499, "client_closed")
        raise
    except GatewayError as exc:
        error = exc
    except web.HTTPException as exc:
        error = _from_http(exc)
    except StoreUnavailable:
        error = ServiceUnavailable("The database is unavailable; try again shortly.")
    except Exception:
        log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
        error = GatewayError("The gateway failed to handle the request.")
    finally:
        tracker.end(ticket)
    trace.end(error.status, error.code)
    return error_response(error, _anthropic_route(request))


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The one place X-Request-Id and Server-Timing are set: every response, streamed or not,
    as it is prepared (a stream's headers leave after upstream's first byte)."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id
    started = request.get(STARTED)
    if started is not None:
        upstream = request.get(UPSTREAM_S, 0.0)
        gateway = time.perf_counter() - started - upstream
        response.headers["Server-Timing"] = (
            f"gateway;dur={gateway * 1000:.2f}, upstream;dur={upstream * 1000:.2f}"
        )


async def _authenticate(request: web.Request) -> Principal:
    """The Principal of a /v1 request's key (Bearer, or x-api-key on the Messages routes), or
    of the console's cookie on /v1/ai."""
    auth = request.app[SERVICES].authenticator
    console = await console_principal(request)
    if console is not None:
        return console
    header = request.headers.get("Authorization")
    api_key = request.headers.get("x-api-key")
    if header is None and api_key is not None and _anthropic_route(request):
        header = f"Bearer {api_key}"  # the Anthropic SDKs may send their key as x-api-key
    return await auth.authenticate(header)
