"""Choice 0 of an OpenAI chat.completion body, shared by the translators that turn such an answer
into another API's (the Anthropic front door, the Responses bridge). Pure."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import ProviderError


def first_choice(body: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the answer, its choice 0, that choice's message or {}) of a chat.completion body;
    ProviderError when the body is not JSON or has no choices."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError("The provider's answer is not JSON.") from None
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError("The provider's answer has no choices.")
    choice = choices[0]
    message = choice.get("message")
    return obj, choice, message if isinstance(message, dict) else {}
