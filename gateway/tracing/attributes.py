"""Span attributes of the OpenTelemetry GenAI semantic conventions, from the gateway's own data.
Pure: dicts in, dicts out; no OpenTelemetry import, no key or header ever read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from ..accounting.recorder import Outcome
    from ..adapters.base import Call

Attributes = dict[str, str | int | float | bool | list[str]]

# gen_ai.operation.name per endpoint (the Responses API and the Messages API are chats).
OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}

# gen_ai.provider.name per provider type (the conventions' well-known values where one exists).
PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
    "echo": "gateway.echo",
}

_ID = re.compile(rb'"id"\s*:\s*"([^"\\]{1,200})"')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_REASON = re.compile(rb'_reason"\s*:\s*"([a-z_]{1,40})"')  # a literal first: a fast scan


def operation(endpoint: str) -> str:
    return OPERATIONS.get(endpoint, endpoint)


def provider_name(provider_type: str) -> str:
    return PROVIDERS.get(provider_type, provider_type)


def span_name(endpoint: str, model: str) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}`, e.g. `chat gpt-4o`."""
    op = operation(endpoint)
    return f"{op} {model}" if model else op


@lru_cache(maxsize=256)
def server_address(base_url: str) -> tuple[str, int | None]:
    """Host and port of a provider's base URL ("" for a provider with none, like echo)."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port


def request_attributes(call: Call) -> Attributes:
    """gen_ai.request.* of the client's body: max tokens and temperature when it set them."""
    payload = call.payload or {}
    attrs: Attributes = {}
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            attrs["gen_ai.request.max_tokens"] = value
            break
    temperature = payload.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        attrs["gen_ai.request.temperature"] = float(temperature)
    return attrs


def attempt_attributes(
    provider_type: str, provider: str, base_url: str, model: str, endpoint: str, number: int
) -> Attributes:
    """A client span's attributes: where the attempt went and which try it is (0: the first)."""
    host, port = server_address(base_url)
    attrs: Attributes = {
        "gen_ai.operation.name": operation(endpoint),
        "gen_ai.provider.name": provider_name(provider_type),
        "gen_ai.request.model": model,
        "gateway.provider": provider,
        "gateway.retry": number - 1,
    }
    if host:
        attrs["server.address"] = host
    if port is not None:
        attrs["server.port"] = port
    return attrs


def response_attributes(body: bytes) -> Attributes:
    """gen_ai.response.id / .model / .finish_reasons read from an answer's bytes (a whole body
    or a stream's first chunk) without decoding it: its first id and model, every finish."""
    attrs: Attributes = {}
    if found := _ID.search(body):
        attrs["gen_ai.response.id"] = found.group(1).decode(errors="replace")
    if found := _MODEL.search(body):
        attrs["gen_ai.response.model"] = found.group(1).decode(errors="replace")
    if reasons := finish_reasons(body):
        attrs["gen_ai.response.finish_reasons"] = reasons
    return attrs


def finish_reasons(body: bytes) -> list[str]:
    """Every finish_reason / stop_reason in an answer's bytes, in order (null ones left out)."""
    return [
        m.group(1).decode()
        for m in _REASON.finditer(body)
        if body.endswith(b'"finish', 0, m.start()) or body.endswith(b'"stop', 0, m.start())
    ]


def outcome_attributes(o: Outcome, cost_usd: Decimal) -> Attributes:
    """The server span's attributes once the request has ended (SPEC 15's list, no more: each
    attribute costs CPU to set and to encode)."""
    attrs: Attributes = {
        "gen_ai.operation.name": operation(o.endpoint),
        "gateway.request_id": o.request_id,
        "gateway.user": o.principal.user,
        "gateway.attempts": o.attempts,
    }
    if o.model:
        attrs["gen_ai.request.model"] = o.model
    if o.target is not None:
        attrs["gen_ai.provider.name"] = provider_name(o.target.provider.type)
    if o.usage is not None:
        attrs["gen_ai.usage.input_tokens"] = o.usage.prompt_tokens
        attrs["gen_ai.usage.output_tokens"] = o.usage.completion_tokens
        attrs["gateway.cached_tokens"] = o.usage.cached_tokens
        attrs["gateway.cost_usd"] = float(cost_usd)
    if o.status != "ok":
        code = (o.error or "").partition(":")[0]
        attrs["error.type"] = code or o.status
    return attrs


def input_messages(call: Call) -> str | None:
    """gen_ai.input.messages (capture_content only): the body's messages or input, as JSON."""
    payload: Mapping[str, Any] = call.payload or {}
    for name in ("messages", "input", "prompt"):
        if name in payload:
            return orjson.dumps(payload[name]).decode()
    return None


def output_messages(answer: str) -> str:
    """gen_ai.output.messages (capture_content only): the answer text as one assistant message."""
    message = {"role": "assistant", "parts": [{"type": "text", "content": answer}]}
    return orjson.dumps([message]).decode()
