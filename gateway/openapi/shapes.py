"""Building blocks of the OpenAPI document: schema helpers, the shared headers, OpenAI's error
shape, and the response, body, parameter and operation objects the paths are made of."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import GatewayError

Schema = dict[str, Any]
Security = list[dict[str, list[str]]]  # alternatives, each scheme -> scopes

NO_NUL = r"^[^\u0000]*$"  # NUL is refused in URLs and stored strings (PostgreSQL text)


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """The same schema, also allowing null (in its enum too, if it has one)."""
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def obj(
    props: dict[str, Schema],
    required: Iterable[str] = (),
    extra: bool = True,
    description: str | None = None,
) -> Schema:
    """An object schema; `extra=False` refuses properties not listed."""
    schema: Schema = {"type": "object", "properties": props, "required": list(required)}
    if not extra:
        schema["additionalProperties"] = False
    if description is not None:
        schema["description"] = description
    return schema


def record(props: dict[str, Schema]) -> Schema:
    """An object the gateway writes itself: every listed property is always present."""
    return obj(props, props)


def const(value: str) -> Schema:
    """A string that is always `value`."""
    return {"type": "string", "const": value}


def list_of(item: str, **more: Schema) -> Schema:
    """OpenAI's list envelope, `{"object": "list", "data": [...]}`, plus required `more`."""
    props = {"object": const("list"), "data": {"type": "array", "items": ref(item)}, **more}
    return obj(props, ["object", "data", *more])


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


def header_refs(*names: str) -> dict[str, Schema]:
    """References to component headers: X-Request-Id (always sent) and `names`."""
    return {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-Id", *names)}


def error_schema(cls: type[GatewayError], codes: Iterable[str] | None) -> Schema:
    """OpenAI's error object; `type` and (when given) `code` pinned to what the gateway sends."""
    code: Schema = {"type": ["string", "null"]}
    if codes is not None:
        code = {"type": "string", "enum": list(codes)}
    inner = obj(
        {"message": STR, "type": const(cls.type), "param": {"type": ["string", "null"]}},
        ["message", "type", "param", "code"],
    )
    inner["properties"]["code"] = code
    return obj({"error": inner}, ["error"])


def error(
    cls: type[GatewayError],
    description: str,
    codes: Iterable[str] | None = None,
    headers: Iterable[str] = (),
) -> Schema:
    """An error response of `cls`'s type; `codes` defaults to the class's own code."""
    codes = list(codes) if codes is not None else [cls.code]
    listed = ", ".join(f"`{c}`" for c in codes)
    return {
        "description": f"{description} Codes: {listed}.",
        "headers": header_refs(*headers),
        "content": {"application/json": {"schema": error_schema(cls, codes)}},
    }


def ok(description: str, schema: Schema, media: str = "application/json", **extra: Any) -> Schema:
    """A successful response with one media type."""
    return {
        "description": description,
        "headers": header_refs(),
        "content": {media: {"schema": schema}},
        **extra,
    }


def body(schema: Schema, example: Any = None, required: bool = True) -> Schema:
    """A JSON request body."""
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def param(name: str, where: str, schema: Schema, description: str) -> Schema:
    """A path parameter (required) or a query parameter (optional; empty means absent)."""
    if schema.get("type") == "string" and "enum" not in schema:
        schema = {**schema, "pattern": NO_NUL}
    out = {"name": name, "in": where, "required": where == "path", "schema": schema}
    if where == "query":
        out["allowEmptyValue"] = True
        description += " Empty or absent: no filter / the default."
    out["description"] = description
    return out


def op(
    operation_id: str,
    tag: str,
    summary: str,
    responses: dict[str, Schema],
    security: Security,
    **extra: Any,
) -> Schema:
    """One operation; `extra` holds parameters, requestBody, description."""
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "security": security,
        **extra,
        "responses": responses,
    }
