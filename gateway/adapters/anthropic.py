"""Anthropic's Messages API: chat completions are translated (gateway/translate/anthropic.py);
the gateway's own /v1/messages and count_tokens are relayed byte for byte."""

from __future__ import annotations

import time

from ..config import ProviderConfig
from ..translate import anthropic as tr
from .base import Call, not_supported
from .http import HttpClient, HttpReply
from .translated import TranslatedReply

API_VERSION = "2023-06-01"
PATHS = {
    "chat": "/v1/messages",
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
}


class AnthropicUpstream:
    """POST {base_url}/v1/messages with `x-api-key` and `anthropic-version`."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self.http = HttpClient(provider)

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {
            "x-api-key": self.provider.api_key,
            "anthropic-version": API_VERSION,
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            **self.provider.headers,
            "X-Request-Id": call.request_id,
            **call.trace,
        }
        # The client's own version and beta flags are its business with Anthropic: forwarded.
        headers.update(call.headers)
        return headers

    async def send(self, call: Call) -> HttpReply | TranslatedReply:
        path = PATHS.get(call.endpoint)
        if path is None or call.payload is None:
            raise not_supported(self.provider.type, call.endpoint)
        url = f"{self.provider.base_url}{path}"
        if call.endpoint != "chat":
            return await self.http.request("POST", url, self._headers(call), call.payload)
        body = tr.chat_to_anthropic(call.payload, call.upstream_model, call.default_max_tokens)
        reply = await self.http.request("POST", url, self._headers(call), body)
        created = int(time.time())
        chunk_id = f"chatcmpl-{call.request_id}"
        model = call.public_model
        # Structured output came back as a call of the forced output tool: its input is the answer.
        output = tr.OUTPUT_TOOL if tr.output_schema(call.payload.get("response_format")) else None
        return TranslatedReply(
            reply,
            body=lambda raw: tr.anthropic_to_chat(raw, model, created, output),
            error=tr.error_to_openai,
            stream=tr.AnthropicStream(model, chunk_id, created, output) if call.stream else None,
        )

    async def close(self) -> None:
        await self.http.close()
