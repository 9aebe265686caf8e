"""An upstream MCP server over Streamable HTTP, written with the SDK's FastMCP: tools `add` and
`shout`, a tool that fails (`broken`), a resource, a resource template and a prompt. Run as
`python -m tests.support.mcp_http_server PORT`; it serves at http://127.0.0.1:PORT/mcp."""

from __future__ import annotations

import sys

from mcp.server.fastmcp import FastMCP

server = FastMCP("calc", host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000)


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper() + "!"


@server.tool()
def broken() -> str:
    """Always fails."""
    raise ValueError("the calculator is broken")


@server.resource("notes://today", mime_type="text/plain")
def today() -> str:
    """Today's note."""
    return "buy milk"


@server.resource("notes://{day}")
def note(day: str) -> str:
    """The note of a given day."""
    return f"note of {day}"


@server.prompt()
def review(code: str) -> str:
    """Ask for a code review."""
    return f"Please review this code:\n{code}"


if __name__ == "__main__":
    server.run(transport="streamable-http")
