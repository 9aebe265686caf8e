"""Google Vertex AI (`vertex`): Gemini models through the gemini translation on Vertex's
generateContent URLs, Claude models through rawPredict / streamRawPredict with Anthropic's body;
a Google OAuth bearer token (google_token.py) on every call."""

from __future__ import annotations

import time
from typing import Any

from ..config import ProviderConfig
from ..translate import anthropic as claude
from ..translate.messages import openai_error_to_anthropic
from .base import Call, not_supported, path_segment
from .gemini import gemini_chat
from .google_token import GoogleToken
from .http import HttpClient
from .translated import Passthrough, TranslatedReply, unchanged

# The `anthropic_version` Vertex wants in the body of a Claude request (instead of the header).
ANTHROPIC_VERSION = "vertex-2023-10-16"


def is_claude(upstream_model: str) -> bool:
    """Whether a Vertex model id names an Anthropic model (publishers/anthropic)."""
    return upstream_model.startswith("claude")


def claude_body(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages API body as Vertex takes it: the model is in the URL, the version in the body."""
    out = {k: v for k, v in body.items() if k != "model"}
    out["anthropic_version"] = ANTHROPIC_VERSION
    return out


class VertexUpstream:
    """{base_url}/v1/projects/{project}/locations/{location}/publishers/{google|anthropic}/models/
    {model}:{method}, with `Authorization: Bearer <Google access token>`."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self.http = HttpClient(provider)
        self.token = GoogleToken(provider.name, provider.credentials_file)
        # project and location are plain names (config.reader checks them)
        self.root = (
            f"{provider.base_url}/v1/projects/{provider.project}"
            f"/locations/{provider.location}/publishers"
        )

    def _headers(self, call: Call, bearer: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {bearer}",
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            **self.provider.headers,
            "X-Request-Id": call.request_id,
            **call.trace,
        }

    async def send(self, call: Call) -> TranslatedReply:
        if call.payload is None or call.endpoint not in ("chat", "messages"):
            raise not_supported(self.provider.type, call.endpoint)
        model = path_segment(call.upstream_model)
        claude_model = is_claude(call.upstream_model)
        if not claude_model and call.endpoint != "chat":
            raise not_supported(self.provider.type, call.endpoint)
        bearer = await self.token.token()
        headers = self._headers(call, bearer)
        if claude_model:
            reply = await self._claude(call, f"{self.root}/anthropic/models/{model}", headers)
        else:
            reply = await gemini_chat(
                self.http, f"{self.root}/google/models/{model}", headers, call
            )
        if reply.status == 401:  # the token was refused: the next request gets a new one
            self.token.forget(bearer)
        return reply

    async def _claude(self, call: Call, base: str, headers: dict[str, str]) -> TranslatedReply:
        assert call.payload is not None
        url = f"{base}:streamRawPredict" if call.stream else f"{base}:rawPredict"
        if call.endpoint == "messages":  # the front door: Anthropic's body and answer, relayed
            if "anthropic-beta" in call.headers:
                headers["anthropic-beta"] = call.headers["anthropic-beta"]
            reply = await self.http.request("POST", url, headers, claude_body(call.payload))
            return TranslatedReply(
                reply,
                body=unchanged,
                error=openai_error_to_anthropic,
                stream=Passthrough() if call.stream else None,
            )
        body = claude_body(
            claude.chat_to_anthropic(call.payload, call.upstream_model, call.default_max_tokens)
        )
        reply = await self.http.request("POST", url, headers, body)
        created, chunk_id, public = (
            int(time.time()),
            f"chatcmpl-{call.request_id}",
            call.public_model,
        )
        output = (
            claude.OUTPUT_TOOL
            if claude.output_schema(call.payload.get("response_format"))
            else None
        )
        return TranslatedReply(
            reply,
            body=lambda raw: claude.anthropic_to_chat(raw, public, created, output),
            error=claude.error_to_openai,
            stream=claude.AnthropicStream(public, chunk_id, created, output)
            if call.stream
            else None,
        )

    async def close(self) -> None:
        await self.http.close()
