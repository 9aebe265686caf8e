"""Public MCP names: `<server>__<tool>` (and prompts likewise), and the `mcp_tools` allow-lists
of keys and teams (exact names, or names ending in `*` such as `server__*`). Pure."""

from __future__ import annotations

from collections.abc import Iterable

SEPARATOR = "__"


def public_name(server: str, name: str) -> str:
    """The name a client sees for `name` of `server`."""
    return f"{server}{SEPARATOR}{name}"


def split_name(public: str) -> tuple[str, str] | None:
    """(server, upstream name) of a public name, or None when it has no server part. Server
    names hold no `__`, so the first one separates them."""
    server, sep, name = public.partition(SEPARATOR)
    if not sep or not server or not name:
        return None
    return server, name


def tool_allowed(name: str, patterns: Iterable[str] | None) -> bool:
    """`patterns` None allows every tool; else an exact name or a `prefix*` must match."""
    if patterns is None:
        return True
    for pattern in patterns:
        if pattern == name or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return True
    return False


def may_call(name: str, key_tools: Iterable[str] | None, team_tools: Iterable[str] | None) -> bool:
    """Whether both the key's and the team's lists allow the tool."""
    return tool_allowed(name, key_tools) and tool_allowed(name, team_tools)
