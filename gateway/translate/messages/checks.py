"""The Anthropic front door's request checks: what every request needs (model, max_tokens,
stream, messages as objects) and what a translation to chat completions needs besides. Pure."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidRequest, clip
from ...validation import (
    optional_positive_int,
    require_messages,
    require_model,
    require_stream,
)

# Roles a translation understands; `system` inside `messages` is what Claude Code sends now.
ROLES = ("user", "assistant", "system")


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def validate_messages_request(body: dict[str, Any], *, count_tokens: bool = False) -> None:
    """Check what the gateway itself reads: model, max_tokens, stream, and messages as an array
    of objects. Roles, blocks and every other field are the provider's business when the body
    is relayed; check_translatable() checks them for a translation.

    With ``count_tokens`` (for /v1/messages/count_tokens) max_tokens and stream are not needed.
    """
    require_model(body)
    if not count_tokens:
        max_tokens(body.get("max_tokens"))
        require_stream(body)
    _check_ints(body)
    require_messages(body.get("messages"))


def _check_ints(body: dict[str, Any]) -> None:
    """top_k and thinking.budget_tokens: integers in range (forwarded to Anthropic as they are)."""
    optional_positive_int(body, "top_k")
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        optional_positive_int(thinking, "budget_tokens")


def check_translatable(body: dict[str, Any]) -> None:
    """Roles, contents (as far as each block's ``type``) and ``system`` of a request that is
    translated to chat completions; 400 naming what chat cannot carry."""
    system_text(body.get("system"))
    for i, message in enumerate(require_messages(body.get("messages"))):
        path = f"messages[{i}]"
        role = message.get("role")
        if role not in ROLES:
            got = repr(clip(role)) if isinstance(role, str) else type(role).__name__
            got = "no role" if role is None else got
            raise _bad(
                f"`{path}.role` must be `user`, `assistant` or `system` for this model, got {got}.",
                f"{path}.role",
            )
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _bad(
                f"`{path}.content` must be a string or an array of content blocks.",
                f"{path}.content",
                "invalid_type",
            )
        for j, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise _bad(
                    f"`{path}.content[{j}]` must be an object with a string `type`.",
                    f"{path}.content[{j}]",
                    "invalid_type",
                )


def max_tokens(value: object) -> int:
    """``max_tokens``: a positive integer (64.0 counts), required."""
    if value is None:
        raise _bad("`max_tokens` is required.", "max_tokens", "missing_required_parameter")
    checked = optional_positive_int({"max_tokens": value}, "max_tokens")  # in range, 400 if not
    assert checked is not None
    return checked


def system_text(system: object, param: str = "system") -> str:
    """A system prompt as one string ("" when absent); 400 unless a string or text blocks."""
    if system is None or isinstance(system, str):
        return system or ""
    if not isinstance(system, list):
        raise _bad(f"`{param}` must be a string or an array of text blocks.", param, "invalid_type")
    texts: list[str] = []
    for i, block in enumerate(system):
        if not (
            isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        ):
            raise _bad(
                f'`{param}[{i}]` must be a text block: {{"type": "text", "text": ...}}.',
                f"{param}[{i}]",
                "invalid_type",
            )
        texts.append(block["text"])
    return "\n\n".join(texts)
