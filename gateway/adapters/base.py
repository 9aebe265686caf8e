"""The adapter seam: what the gateway asks of an upstream (Call) and what comes back (Reply).
Each provider type implements Upstream; a Reply's body and chunks are in the endpoint's
client-facing format (OpenAI's, or the provider's own bytes when they are relayed unchanged)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from ..errors import InvalidRequest, clip


@dataclass(frozen=True, slots=True)
class Call:
    """One upstream attempt, already routed to a deployment.

    `payload` is the body the client's endpoint speaks (OpenAI's chat, embeddings, responses or
    completions; Anthropic's messages), with `model` rewritten to `upstream_model`; None for a
    GET or DELETE. `path` follows the endpoint's base path (e.g. "/resp_1/input_items").
    """

    endpoint: str
    payload: dict[str, Any] | None
    request_id: str
    public_model: str
    upstream_model: str
    stream: bool = False
    method: str = "POST"
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # client headers allowed upstream
    default_max_tokens: int | None = None  # the model entry's max_tokens
    trace: dict[str, str] = field(default_factory=dict)  # the attempt span's W3C headers, once set


class Reply(Protocol):
    """An upstream answer whose status and headers have arrived."""

    status: int
    content_type: str
    retry_after: str | None

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        ...

    def close(self) -> None:
        """Drop the answer (and the connection under it, cancelling upstream work)."""
        ...


class Upstream(Protocol):
    """A configured provider: answers Calls for the endpoints its type serves."""

    async def send(self, call: Call) -> Reply:
        """Start the call; returns once upstream's status has arrived."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def not_supported(provider_type: str, endpoint: str) -> InvalidRequest:
    """The 400 for an endpoint a provider type cannot serve."""
    return InvalidRequest(
        f"This model's provider ({provider_type}) does not support the {endpoint} endpoint.",
        param="model",
        code="model_not_supported",
    )


# What could take a name out of its URL path segment (or into the query, the fragment, or a
# Gemini `:method`), whatever a percent-encoding-aware server might decode it to.
_UNSAFE_IN_SEGMENT = ("/", "\\", "..", "?", "#", ":")


def path_segment(name: str) -> str:
    """A model name as one URL path segment, percent-encoded; 400 for a name that could leave
    its segment (a wildcard route puts the client's text here)."""
    if not name or not name.isprintable() or any(u in name for u in _UNSAFE_IN_SEGMENT):
        raise InvalidRequest(
            f"The model name `{clip(name)}` cannot be sent to this provider: a name that goes"
            " into a URL path must not contain /, \\, .., ?, # or :.",
            param="model",
            code="invalid_value",
        )
    return quote(name, safe="")
