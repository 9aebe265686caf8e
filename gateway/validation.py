"""Validation of a chat-completions body into a ChatRequest, and the payload sent upstream.
Pure: checks only what the gateway needs and leaves every other field untouched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import InvalidRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(slots=True)
class ChatRequest:
    """A validated request: the client's JSON plus what the gateway reads from it."""

    payload: dict[str, Any]
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    client_wants_usage: bool
    session_id: str | None
    max_output: int | None = None  # max_completion_tokens, else max_tokens
    choices: int = 1  # `n`


MAX_CHOICES = 128  # OpenAI's bound on `n`


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says why not."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request: it is not valid UTF-8 JSON."
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return payload


MAX_TOKEN_ID = 2**31 - 1


def is_token_id(value: object) -> bool:
    """A token id: a non-negative integer (64.0 counts, as in JSON Schema) below 2**31."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_ID


MAX_INT = 2**31 - 1  # the bound of every count a request may carry (tokens, choices, dimensions)


def optional_int(
    payload: dict[str, Any], field: str, minimum: int = 1, maximum: int = MAX_INT
) -> int | None:
    """An integer from `minimum` to `maximum` when present (64.0 counts, as in JSON Schema),
    else None. The bound keeps 1e30 or 10**30 (which JSON parsing makes a float) from reaching
    an encoder or an upstream; the 400 names the field."""
    value = payload.get(field)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON (and JSON Schema) count 64.0 as an integer; forwarded as sent
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"`{field}` must be an integer.", field, "invalid_type")
    if value < minimum:
        if minimum == 1:
            raise _bad(f"`{field}` must be a positive integer, got {value}.", field)
        raise _bad(f"`{field}` must be at least {minimum}.", field)
    if value > maximum:
        raise _bad(f"`{field}` must be at most {maximum}.", field)
    return value


def optional_positive_int(
    payload: dict[str, Any], field: str, maximum: int = MAX_INT
) -> int | None:
    """A positive integer of at most `maximum` when present, else None (see optional_int)."""
    return optional_int(payload, field, 1, maximum)


# Other integers of the OpenAI request bodies, with the widest range any upstream takes.
INT_FIELDS: dict[str, tuple[int, int]] = {
    "seed": (-(2**63), 2**63 - 1),
    "top_logprobs": (0, 20),
    "logprobs": (0, 20),  # legacy completions' count (chat's is a boolean, checked upstream)
    "max_tool_calls": (1, MAX_INT),  # Responses
}


def check_ints(payload: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Range-check the named INT_FIELDS present in `payload`."""
    for field in fields:
        low, high = INT_FIELDS[field]
        optional_int(payload, field, low, high)


def require_messages(messages: object) -> list[dict[str, Any]]:
    """`messages`: a non-empty array of objects (their roles are the caller's API's business)."""
    if messages is None:
        raise _bad("`messages` is required.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad("`messages` must be an array.", "messages", "invalid_type")
    if not messages:
        raise _bad("`messages` must contain at least one message.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"`messages[{i}]` must be an object.", f"messages[{i}]", "invalid_type")
    return messages


def check_roles(messages: list[dict[str, Any]]) -> None:
    """Each message has one of the chat roles: for a translation, which must understand every
    message (a relay leaves roles to the provider)."""
    for i, message in enumerate(messages):
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:  # a dict or list role is unhashable
            got = repr(role[:64]) if isinstance(role, str) else type(role).__name__  # no deep repr
            got = "no role" if role is None else got
            raise _bad(
                f"`messages[{i}].role` must be one of {', '.join(sorted(ROLES))}, got {got}.",
                f"messages[{i}].role",
            )


def reserialisable(payload: dict[str, Any]) -> None:
    """The body goes upstream re-serialised: orjson reads 1024 levels of nesting but writes 254."""
    try:
        orjson.dumps(payload)
    except orjson.JSONEncodeError:
        raise InvalidRequest(
            "The request body is nested too deeply.", code="invalid_value"
        ) from None


def require_model(payload: dict[str, Any]) -> str:
    """The body's `model`: a non-empty string without NUL."""
    model = payload.get("model")
    if model is None:
        raise _bad("`model` is required.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _bad("`model` must be a non-empty string.", "model", "invalid_type")
    if "\x00" in model:
        raise _bad("`model` must not contain NUL characters.", "model")
    return model


def require_stream(payload: dict[str, Any]) -> bool:
    """The body's `stream`: a boolean when present, false when absent."""
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("`stream` must be a boolean.", "stream", "invalid_type")
    return bool(stream)


def client_wants_usage(payload: dict[str, Any]) -> bool:
    """Whether `stream_options.include_usage` is true; 400 unless stream_options is an object
    (or absent) whose include_usage is a boolean (or absent)."""
    options = payload.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise _bad("`stream_options` must be an object.", "stream_options", "invalid_type")
    include = options.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise _bad(
            "`stream_options.include_usage` must be a boolean.",
            "stream_options.include_usage",
            "invalid_type",
        )
    return include is True


def validate_chat(payload: dict[str, Any]) -> ChatRequest:
    """Check what the gateway reads: model, messages (an array of objects), stream, max_tokens,
    stream_options and session_id. Roles are checked only for translations (check_roles)."""
    model = require_model(payload)
    messages = require_messages(payload.get("messages"))
    stream = require_stream(payload)
    max_tokens = optional_positive_int(payload, "max_tokens")
    max_output = optional_positive_int(payload, "max_completion_tokens") or max_tokens
    choices = optional_positive_int(payload, "n", MAX_CHOICES) or 1
    check_ints(payload, ("seed", "top_logprobs"))
    wants_usage = client_wants_usage(payload)
    session_id = payload.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise _bad("`session_id` must be a non-empty string.", "session_id", "invalid_type")
    if session_id is not None and "\x00" in session_id:  # no stored id has one
        raise _bad("`session_id` must not contain NUL characters.", "session_id")
    reserialisable(payload)
    return ChatRequest(
        payload=payload,
        model=model,
        messages=messages,
        stream=stream,
        client_wants_usage=wants_usage,
        session_id=session_id,
        max_output=max_output,
        choices=choices,
    )


def upstream_payload(chat: ChatRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The body sent upstream (each attempt writes its own `model`): session_id consumed, the
    history-extended messages, usage requested for streams."""
    payload = {k: v for k, v in chat.payload.items() if k != "session_id"}
    payload["messages"] = messages
    if chat.stream:
        payload["stream_options"] = {
            **(chat.payload.get("stream_options") or {}),
            "include_usage": True,
        }
    return payload
