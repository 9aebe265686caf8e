"""Estimated input tokens of an Anthropic Messages request, for /v1/messages/count_tokens on
models that no Anthropic endpoint serves. Pure; built on gateway.accounting.tokens' estimators."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson

from ...accounting.tokens import estimate_prompt_tokens, estimate_tokens, text_parts

# Anthropic bills an image by its size (about width * height / 750 tokens, 1568 px at most on a
# side); the estimate cannot see the size, so each image counts as a large one.
_IMAGE_TOKENS = 1600


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of a Messages request, for count_tokens on non-Anthropic models:
    system and message text, tool calls and results, a flat amount per image, tool definitions.

    Lenient: reads what it understands and skips the rest (count_tokens answers, never fails).
    """
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, str | list):
        messages.append({"content": _parts(text_parts(system))})
    images = 0
    raw_messages = body.get("messages")
    for message in raw_messages if isinstance(raw_messages, list) else []:
        if isinstance(message, dict):
            texts: list[str] = []
            images += _countable(message.get("content"), texts)
            messages.append({"content": _parts(texts)})
    total = estimate_prompt_tokens(messages) + images * _IMAGE_TOKENS
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        total += estimate_tokens(orjson.dumps(tools).decode())
    return total


def _parts(texts: list[str]) -> list[dict[str, str]]:
    return [{"type": "text", "text": text} for text in texts]


def _countable(content: object, texts: list[str]) -> int:
    """Append the countable text of ``content`` to ``texts``; return its number of images."""
    if isinstance(content, str):
        texts.append(content)
        return 0
    images = 0
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "image":
            images += 1
        elif kind == "tool_use":
            texts.append(str(block.get("name", "")))
            with contextlib.suppress(orjson.JSONEncodeError):
                texts.append(orjson.dumps(block.get("input")).decode())
        elif kind == "tool_result":
            images += _countable(block.get("content"), texts)
        else:
            for field in ("text", "thinking"):
                if isinstance(block.get(field), str):
                    texts.append(block[field])
    return images
