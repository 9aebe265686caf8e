"""Session history: the sliding window prepended to a chat request.
Pure: the request's system messages stay first; the oldest history is dropped first to fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import Message


def with_history(
    history: Sequence[Message], messages: list[dict[str, Any]], max_tokens: int, max_messages: int
) -> list[dict[str, Any]]:
    """Request system messages, then the newest history that fits, then the other new messages."""
    kept: list[Message] = []
    budget = max_tokens
    for message in reversed(history):
        if len(kept) >= max_messages or message.tokens > budget:
            break
        budget -= message.tokens
        kept.append(message)
    kept.reverse()
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    rest = [m for m in messages if m.get("role") not in ("system", "developer")]
    past = [{"role": m.role, "content": m.content} for m in kept]
    return system + past + rest


def storable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request messages a session keeps: everything but system/developer instructions."""
    return [m for m in messages if m.get("role") not in ("system", "developer")]
