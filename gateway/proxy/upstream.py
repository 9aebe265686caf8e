"""The upstream client of every configured provider, picked by provider type.
The adapters live in gateway/adapters/; this registry is what handlers and reload hold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from ..adapters.anthropic import AnthropicUpstream
from ..adapters.base import Call, Reply, Upstream
from ..adapters.bedrock import BedrockUpstream
from ..adapters.echo import EchoUpstream
from ..adapters.gemini import GeminiUpstream
from ..adapters.openai import AzureUpstream, OpenAIUpstream
from ..adapters.vertex import VertexUpstream
from ..config import ProviderConfig

__all__ = ["Call", "Reply", "Upstream", "Upstreams", "build_upstreams"]

ADAPTERS: dict[str, Callable[[ProviderConfig], Upstream]] = {
    "openai": OpenAIUpstream,
    "azure": AzureUpstream,
    "anthropic": AnthropicUpstream,
    "gemini": GeminiUpstream,
    "bedrock": BedrockUpstream,
    "vertex": VertexUpstream,
    "echo": EchoUpstream,
}


class Upstreams:
    """The upstream client of every provider, built once per app."""

    def __init__(self, clients: Mapping[str, Upstream]):
        self.clients = dict(clients)

    def __getitem__(self, provider: str) -> Upstream:
        return self.clients[provider]

    def forget(self, retired: Mapping[str, Upstream]) -> None:
        """Drop retired clients that are still listed under their name (not their successor)."""
        for name, client in retired.items():
            if self.clients.get(name) is client:
                del self.clients[name]

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)


def build_upstreams(providers: Mapping[str, ProviderConfig]) -> Upstreams:
    """One client per configured provider."""
    return Upstreams({name: ADAPTERS[p.type](p) for name, p in providers.items()})
