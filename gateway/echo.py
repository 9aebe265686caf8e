"""The built-in `echo` provider: answers with the last user message, streamed or not, with usage.
No network and no secrets, so a fresh install works; it speaks OpenAI's wire format exactly."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import orjson

from .config import ProviderConfig
from .tokens import estimate_prompt_tokens, estimate_tokens, text_parts

PIECES = 6  # a streamed answer arrives in about this many content chunks


def last_user_text(messages: list) -> str:
    """The text of the last user message (string content or the text parts of a list)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return "".join(text_parts(message.get("content")))
    return ""


def split_pieces(text: str, pieces: int) -> list[str]:
    """Cut text into at most `pieces` consecutive parts on word boundaries."""
    words = text.split(" ")
    size = max(1, -(-len(words) // pieces))
    parts = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p if i == len(parts) - 1 else p + " " for i, p in enumerate(parts)]


class EchoReply:
    """A finished answer handed out as a body or as SSE chunks."""

    content_type: str

    def __init__(self, status: int, parts: list[bytes], stream: bool, delay_s: float):
        self.status = status
        self.content_type = "text/event-stream" if stream else "application/json"
        self._parts = parts
        self._delay_s = delay_s

    async def read(self) -> bytes:
        return b"".join(self._parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        for i, part in enumerate(self._parts):
            if i and self._delay_s:
                await asyncio.sleep(self._delay_s)
            yield part

    def close(self) -> None:
        self._parts = []


class EchoUpstream:
    """Echoes the last user message back; honours stream, include_usage and max_tokens."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider

    async def send(self, payload: dict, request_id: str) -> EchoReply:
        messages = payload.get("messages") or []
        text = last_user_text(messages)
        finish = "stop"
        max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens")
        if isinstance(max_tokens, int) and estimate_tokens(text) > max_tokens:
            text = text[: max_tokens * 4]
            finish = "length"
        usage = {
            "prompt_tokens": estimate_prompt_tokens(messages),
            "completion_tokens": estimate_tokens(text),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {
            "id": f"chatcmpl-echo-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": payload.get("model", "echo"),
            "system_fingerprint": "echo",
        }
        if not payload.get("stream"):
            body = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            }
            return EchoReply(200, [orjson.dumps(body)], False, 0.0)
        options = payload.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        chunk = {**base, "object": "chat.completion.chunk"}
        if with_usage:
            chunk["usage"] = None

        def event(delta: dict, finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return b"data: " + orjson.dumps({**chunk, "choices": [choice]}) + b"\n\n"

        parts = [event({"role": "assistant", "content": "", "refusal": None})]
        parts += [event({"content": piece}) for piece in split_pieces(text, PIECES) if piece]
        parts.append(event({}, finish))
        if with_usage:
            final = {**chunk, "choices": [], "usage": usage}
            parts.append(b"data: " + orjson.dumps(final) + b"\n\n")
        parts.append(b"data: [DONE]\n\n")
        return EchoReply(200, parts, True, self.provider.chunk_delay_s)

    async def close(self) -> None:
        return None
