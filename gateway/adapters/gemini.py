"""Google's Gemini API (generateContent): chat completions and embeddings are translated by
gateway/translate/gemini.py on the way up and on the way back."""

from __future__ import annotations

import time
from typing import Any

from ..accounting.tokens import estimate_tokens
from ..config import ProviderConfig
from ..translate import gemini as tr
from .base import Call, not_supported, path_segment
from .http import HttpClient
from .translated import TranslatedReply


def _embedding_texts(payload: dict[str, Any]) -> list[str]:
    value = payload.get("input")
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _n(payload: dict[str, Any]) -> int:
    n = payload.get("n")
    return n if isinstance(n, int) and n > 1 else 1


async def gemini_chat(
    http: HttpClient, base: str, headers: dict[str, str], call: Call
) -> TranslatedReply:
    """A chat completion through `{base}:generateContent` (or `:streamGenerateContent?alt=sse`),
    translated both ways: Gemini's API and Vertex's Gemini models alike."""
    assert call.payload is not None
    body = tr.chat_to_gemini(call.payload, call.default_max_tokens)
    if call.stream:
        url, query = f"{base}:streamGenerateContent", {"alt": "sse"}
    else:
        url, query = f"{base}:generateContent", {}
    reply = await http.request("POST", url, headers, body, query)
    model, chunk_id, created = call.public_model, f"chatcmpl-{call.request_id}", int(time.time())
    return TranslatedReply(
        reply,
        body=lambda raw: tr.gemini_to_chat(raw, model, chunk_id, created),
        error=tr.error_to_openai,
        stream=tr.GeminiStream(model, chunk_id, created, n=_n(call.payload))
        if call.stream
        else None,
    )


class GeminiUpstream:
    """{base_url}/models/{model}:generateContent (or :streamGenerateContent?alt=sse, or
    :batchEmbedContents) with `x-goog-api-key`."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self.http = HttpClient(provider)
        self.headers = {
            "x-goog-api-key": provider.api_key,
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            **provider.headers,
        }

    async def send(self, call: Call) -> TranslatedReply:
        if call.payload is None or call.endpoint not in ("chat", "embeddings"):
            raise not_supported(self.provider.type, call.endpoint)
        base = f"{self.provider.base_url}/models/{path_segment(call.upstream_model)}"
        headers = {**self.headers, "X-Request-Id": call.request_id, **call.trace}
        model = call.public_model
        if call.endpoint == "embeddings":
            body = tr.embeddings_to_gemini(call.payload, call.upstream_model)
            reply = await self.http.request("POST", f"{base}:batchEmbedContents", headers, body)
            fmt = str(call.payload.get("encoding_format") or "float")
            tokens = sum(max(1, estimate_tokens(t)) for t in _embedding_texts(call.payload))
            return TranslatedReply(
                reply,
                body=lambda raw: tr.gemini_embeddings_to_openai(raw, model, fmt, tokens),
                error=tr.error_to_openai,
                stream=None,
            )
        return await gemini_chat(self.http, base, headers, call)

    async def close(self) -> None:
        await self.http.close()
