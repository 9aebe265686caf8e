"""An upstream MCP server over Streamable HTTP, written with the SDK's FastMCP: tools `add`,
`shout`, `token` (the X-Upstream-Token header it was sent) and `broken` (always fails), a
resource, a resource template and a prompt. `python -m tests.support.mcp_http_server PORT`
serves it at http://127.0.0.1:PORT/mcp."""

from __future__ import annotations

import sys

from mcp.server.fastmcp import Context, FastMCP

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
def token(ctx: Context) -> str:
    """The X-Upstream-Token header the caller sent this server."""
    request = ctx.request_context.request
    return request.headers.get("x-upstream-token", "") if request is not None else ""


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
