"""An upstream MCP server over stdio, written with the SDK's FastMCP: tools `whoami` (its own
pid), `reverse` and `nap` (blocks the whole server, as a synchronous tool does). Writes its pid
to $MCP_PID_FILE on start, so a test can kill it."""

from __future__ import annotations

import os
import time

from mcp.server.fastmcp import FastMCP

server = FastMCP("files")


@server.tool()
def whoami() -> int:
    """The process id of this server."""
    return os.getpid()


@server.tool()
def reverse(text: str) -> str:
    """The text, reversed."""
    return text[::-1]


@server.tool()
def nap(seconds: float) -> str:
    """Sleep, blocking: the server answers nothing else meanwhile."""
    time.sleep(seconds)
    return "rested"


if __name__ == "__main__":
    pid_file = os.environ.get("MCP_PID_FILE")
    if pid_file:
        with open(pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(pid_file + ".tmp", pid_file)
    server.run(transport="stdio")
