"""The built-in `echo` provider: answers with the last user message, streamed or not, with usage,
and embeds text as deterministic unit vectors. No network and no secrets, so a fresh install
works; it speaks OpenAI's wire format exactly."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..accounting.tokens import estimate_prompt_tokens, estimate_tokens, text_parts
from ..config import ProviderConfig
from ..errors import InvalidRequest
from ..validation import is_token_id
from .base import Call, not_supported

PIECES = 6  # a streamed answer arrives in about this many content chunks
DEFAULT_DIMENSIONS = 16
# The most numbers one echo embeddings answer holds (inputs x dimensions): it is computed on the
# event loop, and 2048 x 8192 of them froze it for seconds and took gigabytes.
MAX_VALUES = 2**18


def last_user_text(messages: list[Any]) -> str:
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


def unit_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for `text`: the same input always embeds the same way."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class EchoReply:
    """A finished answer handed out as a body or as SSE chunks."""

    retry_after: str | None = None

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


def _embedding_inputs(value: Any) -> list[str]:
    """The texts to embed; token lists are embedded by their ids' text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(is_token_id(v) for v in value):
            return [" ".join(str(int(v)) for v in value)]
        if all(isinstance(v, list) and all(is_token_id(i) for i in v) for v in value):
            return [" ".join(str(int(i)) for i in v) for v in value]
    raise InvalidRequest(
        "`input` must be a string, an array of strings, an array of token ids, or an array of "
        "token-id arrays, and must not be empty.",
        param="input",
        code="invalid_type",
    )


class EchoUpstream:
    """Echoes the last user message back; honours stream, include_usage and max_tokens."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider

    async def send(self, call: Call) -> EchoReply:
        payload = call.payload or {}
        if call.endpoint == "embeddings":
            return self._embed(payload)
        if call.endpoint != "chat":
            raise not_supported("echo", call.endpoint)
        return self._chat(payload)

    def _embed(self, payload: dict[str, Any]) -> EchoReply:
        texts = _embedding_inputs(payload.get("input"))
        dimensions = int(payload.get("dimensions") or DEFAULT_DIMENSIONS)  # 30.0 is validated too
        if len(texts) * dimensions > MAX_VALUES:
            raise InvalidRequest(
                f"The echo provider embeds at most {MAX_VALUES} numbers per request (inputs x"
                f" dimensions); this one asks for {len(texts)} x {dimensions}.",
                param="input",
                code="invalid_value",
            )
        as_base64 = payload.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = unit_vector(text, dimensions)
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(max(1, estimate_tokens(t)) for t in texts)
        body = {
            "object": "list",
            "data": data,
            "model": payload.get("model", "echo"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return EchoReply(200, [orjson.dumps(body)], False, 0.0)

    def _chat(self, payload: dict[str, Any]) -> EchoReply:
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
        chunk: dict[str, Any] = {**base, "object": "chat.completion.chunk"}
        if with_usage:
            chunk["usage"] = None

        def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
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
