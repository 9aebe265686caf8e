"""Small helpers shared by the JSON handlers: responses, query parameters, JSON bodies.
Every bad value becomes an InvalidRequest naming the parameter."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from ..errors import InvalidRequest, RequestTimeout
from ..validation import parse_json_object
from .keys import SERVICES

STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def json_response(payload: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    digits = raw.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):  # int() would take " 5", "1_0" and "٣"
        raise InvalidRequest(f"`{name}` must be an integer.", param=name, code="invalid_type")
    value = int(raw) if len(digits) <= 18 else None  # a 5000-digit number is just out of range
    if value is None or not low <= value <= high:
        raise InvalidRequest(
            f"`{name}` must be between {low} and {high}, got {raw[:24]}.",
            param=name,
            code="invalid_value",
        )
    return value


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise InvalidRequest(
            f"`{name}` must be one of {', '.join(choices)}.", param=name, code="invalid_value"
        )
    return raw


async def read_body(request: web.Request) -> bytes:
    """The whole body, or 408 when the client takes longer than server.body_timeout_s to send
    it (a slow body must not hold a connection and a handler forever)."""
    try:
        async with asyncio.timeout(request.app[SERVICES].config.server.body_timeout_s):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout("The request body did not arrive in time.") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await read_body(request)
    return parse_json_object(body) if body.strip() else {}


def reject_unknown(payload: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in payload:
        if key not in allowed:
            raise InvalidRequest(f"Unknown field `{key}`.", param=key, code="unknown_parameter")


def optional_str(payload: dict[str, Any], name: str, max_length: int = 256) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"`{name}` must be a string.", param=name, code="invalid_type")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise InvalidRequest(
            f"`{name}` must not contain NUL characters.", param=name, code="invalid_value"
        )
    if len(value) > max_length:
        raise InvalidRequest(
            f"`{name}` must be at most {max_length} characters.", param=name, code="invalid_value"
        )
    return value
