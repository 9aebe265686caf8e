"""The API endpoints the bench drives: the request body each sends, its path, its auth header and
the bytes that show a stream arrived whole. Shared by the load generator, wrk and the driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

SYSTEM = "You are a helpful assistant."
PROMPT = "Say hello in a few words, please."
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Endpoint:
    """One API a scenario calls; `path` is under the server root (the gateway's and the mock's)."""

    name: str
    path: str
    stream_end: bytes  # a complete stream contains these bytes (its last event, or part of it)
    key_header: str = "Authorization"  # Authorization: Bearer <key>, or x-api-key: <key>
    extra_headers: tuple[tuple[str, str], ...] = ()

    def body(self, model: str, stream: bool) -> bytes:
        """The request every scenario of this endpoint sends: a short system + user prompt."""
        payload = _PAYLOADS[self.name](model)
        if stream:
            payload["stream"] = True
        return orjson.dumps(payload)

    def headers(self, key: str | None) -> list[tuple[str, str]]:
        """Content type, the endpoint's own headers and the key, if any."""
        out = [("Content-Type", "application/json"), *self.extra_headers]
        if key:
            value = f"Bearer {key}" if self.key_header == "Authorization" else key
            out.append((self.key_header, value))
        return out


def _chat(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "max_tokens": 64,
    }


def _chat_cached(model: str) -> dict[str, Any]:
    """The chat request at temperature 0: one the response cache may answer (--cache)."""
    return {**_chat(model), "temperature": 0}


def _embeddings(model: str) -> dict[str, Any]:
    return {"model": model, "input": PROMPT}


def _responses(model: str) -> dict[str, Any]:
    return {"model": model, "instructions": SYSTEM, "input": PROMPT, "max_output_tokens": 64}


def _messages(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": PROMPT}],
    }


_PAYLOADS = {
    "chat": _chat,
    "chat_cached": _chat_cached,
    "chat_refresh": _chat_cached,
    "embeddings": _embeddings,
    "responses": _responses,
    "messages": _messages,
}

ENDPOINTS = {
    e.name: e
    for e in (
        Endpoint("chat", "/v1/chat/completions", b"data: [DONE]\n\n"),
        # The response cache (--cache): every request a hit once the first is kept, or every
        # request sent upstream again and kept anew (a miss's whole cost).
        Endpoint("chat_cached", "/v1/chat/completions", b"data: [DONE]\n\n"),
        Endpoint(
            "chat_refresh",
            "/v1/chat/completions",
            b"data: [DONE]\n\n",
            extra_headers=(("x-gateway-cache", "refresh"),),
        ),
        Endpoint("embeddings", "/v1/embeddings", b""),
        Endpoint("responses", "/v1/responses", b"event: response.completed\n"),
        # The Anthropic SDK's way: x-api-key and an anthropic-version header.
        Endpoint(
            "messages",
            "/v1/messages",
            b"event: message_stop\n",
            key_header="x-api-key",
            extra_headers=(("anthropic-version", ANTHROPIC_VERSION),),
        ),
    )
}


def chat_body(model: str, stream: bool) -> bytes:
    """The chat completions request (kept for callers of the first bench)."""
    return ENDPOINTS["chat"].body(model, stream)
