"""OpenAI-compatible providers (`openai`) and Azure OpenAI (`azure`): the body goes upstream as
the client sent it (model rewritten) and the answer comes back byte for byte."""

from __future__ import annotations

from typing import Any

from ..config import ProviderConfig
from .base import Call, not_supported, path_segment
from .http import HttpClient, HttpReply

# The path of each endpoint under an OpenAI-style base URL.
PATHS = {
    "chat": "/chat/completions",
    "embeddings": "/embeddings",
    "responses": "/responses",
    "completions": "/completions",
}


# Where each endpoint takes its answer-length cap: the first name is sent when none is given.
# Chat's is max_completion_tokens, the name OpenAI's reasoning models accept (they refuse
# max_tokens); servers that know only max_tokens ignore it.
_CAPS = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "responses": ("max_output_tokens",),
}


def capped(call: Call) -> dict[str, Any] | None:
    """The payload with the model entry's max_tokens as its answer-length cap when the client
    set none: the reservation counted on that cap, so the answer must not run past it."""
    names, payload = _CAPS.get(call.endpoint), call.payload
    if names is None or payload is None or call.default_max_tokens is None:
        return payload
    if any(payload.get(name) is not None for name in names):
        return payload
    return {**payload, names[0]: call.default_max_tokens}


def _headers(provider: ProviderConfig, auth: dict[str, str], call: Call) -> dict[str, str]:
    return {
        **auth,
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",  # relayed bytes are never re-encoded or decompressed
        **provider.headers,
        "X-Request-Id": call.request_id,
        **call.trace,
    }


class OpenAIUpstream:
    """Any OpenAI-compatible API: {base_url}/<endpoint> with `Authorization: Bearer <key>`."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self.http = HttpClient(provider)
        self._auth = {"Authorization": f"Bearer {provider.api_key}"}

    async def send(self, call: Call) -> HttpReply:
        path = PATHS.get(call.endpoint)
        if path is None:
            raise not_supported(self.provider.type, call.endpoint)
        url = f"{self.provider.base_url}{path}{call.path}"
        headers = _headers(self.provider, self._auth, call)
        return await self.http.request(call.method, url, headers, capped(call), call.query)

    async def close(self) -> None:
        await self.http.close()


class AzureUpstream:
    """Azure OpenAI: /openai/deployments/{deployment}/<endpoint>?api-version=..., `api-key`.

    The Responses API is not deployment-scoped on Azure: /openai/responses, with the deployment
    name as the body's `model` (which the gateway has already written there).
    """

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self.http = HttpClient(provider)
        self._auth = {"api-key": provider.api_key}

    def url(self, call: Call) -> str:
        path = PATHS.get(call.endpoint)
        if path is None:
            raise not_supported(self.provider.type, call.endpoint)
        base = f"{self.provider.base_url}/openai"
        if call.endpoint == "responses":
            return f"{base}{path}{call.path}"
        return f"{base}/deployments/{path_segment(call.upstream_model)}{path}{call.path}"

    async def send(self, call: Call) -> HttpReply:
        url = self.url(call)
        query = {**call.query, "api-version": self.provider.api_version}
        headers = _headers(self.provider, self._auth, call)
        return await self.http.request(call.method, url, headers, capped(call), query)

    async def close(self) -> None:
        await self.http.close()
