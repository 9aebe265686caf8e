"""Which endpoints each provider type serves, natively or bridged through chat completions.
Pure: tables and lookups for routing, the handlers and /v1/models; no I/O."""

from __future__ import annotations

from typing import Final

from ..translate.bedrock.embeddings import embedding_family

# Endpoints an adapter answers itself (relayed or translated in the adapter).
_NATIVE: Final[dict[str, frozenset[str]]] = {
    "openai": frozenset({"chat", "embeddings", "responses", "completions"}),
    "azure": frozenset({"chat", "embeddings", "responses", "completions"}),
    "anthropic": frozenset({"chat", "messages", "count_tokens"}),
    "gemini": frozenset({"chat", "embeddings"}),
    "bedrock": frozenset({"chat", "embeddings"}),
    "vertex": frozenset({"chat"}),
    "echo": frozenset({"chat", "embeddings"}),
}
# Endpoints whose body an adapter relays as the client sent it (model rewritten): the provider,
# not the gateway, judges every field, role and block it does not read.
_RELAYED: Final[dict[str, frozenset[str]]] = {
    "openai": frozenset({"chat", "embeddings", "responses", "completions"}),
    "azure": frozenset({"chat", "embeddings", "responses", "completions"}),
    "anthropic": frozenset({"messages", "count_tokens"}),
}
# Endpoints the gateway serves for any type that speaks chat, by translating to and from chat.
_BRIDGED: Final = frozenset({"responses", "messages", "count_tokens"})

# What /v1/models lists as a model's capabilities (the OpenAI-side names clients use).
LISTED: Final = ("chat", "embeddings", "responses")


def native(provider_type: str, endpoint: str) -> bool:
    """Whether the adapter of this type answers the endpoint itself."""
    return endpoint in _NATIVE.get(provider_type, frozenset())


def relayed(provider_type: str, endpoint: str) -> bool:
    """Whether the adapter of this type sends the client's body upstream as is."""
    return endpoint in _RELAYED.get(provider_type, frozenset())


def relays_messages(provider_type: str, upstream_model: str) -> bool:
    """Whether /v1/messages goes to this deployment as Anthropic's own body (relayed), rather
    than bridged through chat: Anthropic, and Claude models on Bedrock and Vertex, which take
    Anthropic's body (InvokeModel, rawPredict) and answer with Anthropic's events."""
    if provider_type == "anthropic":
        return True
    if provider_type == "bedrock":
        return "anthropic." in upstream_model or "anthropic/" in upstream_model
    return provider_type == "vertex" and upstream_model.startswith("claude")


def serves(provider_type: str, endpoint: str, upstream_model: str = "") -> bool:
    """Whether a deployment of this type (serving `upstream_model`, when known) can serve the
    endpoint at all. Bedrock's embedding models (Titan, Cohere) serve embeddings only, and its
    other models everything but embeddings."""
    if provider_type == "bedrock" and upstream_model:
        embedder = embedding_family(upstream_model) is not None
        if embedder != (endpoint == "embeddings"):
            return False
    return native(provider_type, endpoint) or (
        endpoint in _BRIDGED and native(provider_type, "chat")
    )


def listed_capabilities(deployments: set[tuple[str, str]]) -> list[str]:
    """The capabilities of a model whose deployments are these (provider type, upstream model)
    pairs (the upstream model "" when a wildcard route leaves it to the request)."""
    return [c for c in LISTED if any(serves(t, c, m) for t, m in deployments)]
