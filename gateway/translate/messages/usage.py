"""Usage of Anthropic Messages answers the gateway relays unchanged (the front door to an
`anthropic` provider): read from the body, or from message_start/message_delta events."""

from __future__ import annotations

from typing import Any

from ...accounting.tokens import Usage, estimate_tokens, json_object, normalised, token_count
from ..anthropic.answer import usage_counts


def message_usage(body: bytes) -> tuple[Usage | None, str]:
    """Usage and text of a Messages response body; (None, "") when it is unreadable."""
    message = json_object(body)
    if message is None:
        return None, ""
    content = message.get("content")
    text = (
        "".join(
            block["text"]
            for block in content or []
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
        if isinstance(content, list)
        else ""
    )
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None, text
    return normalised(*usage_counts(usage)), text


class MessagesStreamReader:
    """Follows a Messages event stream: text, usage, and whether message_stop arrived."""

    def __init__(self) -> None:
        self.complete = False
        self._parts: list[str] = []
        self._extra: list[str] = []
        self._usage: dict[str, Any] = {}  # message_start's usage, updated by message_delta's
        self._prompt: int | None = None
        self._output: int | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, data: bytes) -> None:
        event = json_object(data)
        if event is None:
            return
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self._usage = dict(usage)
                self._prompt = usage_counts(usage)[0]
                self._output = token_count(usage.get("output_tokens"))
        elif kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict):
                for key, into in (("text", self._parts), ("thinking", self._extra)):
                    value = delta.get(key)
                    if isinstance(value, str):
                        into.append(value)
                partial = delta.get("partial_json")
                if isinstance(partial, str):
                    self._extra.append(partial)
        elif kind == "message_delta":
            usage = event.get("usage")
            if isinstance(usage, dict):
                self._output = token_count(usage.get("output_tokens"))
                if any(k in usage for k in ("input_tokens", "cache_read_input_tokens")):
                    self._usage.update((k, v) for k, v in usage.items() if v is not None)
                    self._prompt = usage_counts(usage)[0]
        elif kind == "message_stop":
            self.complete = True

    def final_usage(self, prompt_estimate: int) -> Usage:
        """The provider's counts when a complete answer reported them, else an estimate."""
        if self.complete and self._prompt is not None and self._output is not None:
            prompt, _, reads, writes, writes_1h = usage_counts(self._usage)
            return normalised(prompt, self._output, reads, writes, writes_1h)
        generated = self.text + "".join(self._extra)
        prompt = self._prompt if self._prompt is not None else prompt_estimate
        return Usage(prompt, max(estimate_tokens(generated), self._output or 0), estimated=True)
