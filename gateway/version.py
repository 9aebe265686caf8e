"""The gateway's own version as installed (pyproject.toml's `version`): in the OpenAPI document, the
MCP server's handshake and the trace exporter's instrumentation scope."""

from __future__ import annotations

from functools import cache
from importlib import metadata


@cache
def version() -> str:
    """The installed `ai-gateway` version; "0.0.0" when run from a tree that was never installed."""
    try:
        return metadata.version("ai-gateway")
    except metadata.PackageNotFoundError:
        return "0.0.0"
