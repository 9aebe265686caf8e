"""The upstream MCP servers as one: their supervised connections, the merged lists clients see
(`<server>__<tool>`, `<server>__<prompt>`), which server owns a name or a resource, and the
list-changed notifications passed on to the clients' sessions when a server's lists change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, cast

import anyio
from mcp import types
from mcp.server.session import ServerSession

from ..config import McpServerConfig
from .names import public_name, split_name
from .upstream import Upstream

log = logging.getLogger("gateway.mcp")

NOTIFY_TIMEOUT_S = 5.0


class Hub:
    """Every configured upstream server, started by `start` and stopped by `close`."""

    def __init__(self, servers: Mapping[str, McpServerConfig]):
        self.upstreams = {name: Upstream(c, self._changed) for name, c in servers.items()}
        self._tasks: list[asyncio.Task[None]] = []
        self._sessions: weakref.WeakSet[ServerSession] = weakref.WeakSet()
        self._notifying: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        for upstream in self.upstreams.values():
            self._tasks.append(asyncio.create_task(upstream.run(), name=f"mcp:{upstream.name}"))

    async def close(self) -> None:
        """Stop every connection (a stdio server's process is ended with it)."""
        for task in [*self._tasks, *self._notifying]:
            task.cancel()
        for task in [*self._tasks, *self._notifying]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def up(self) -> Iterable[Upstream]:
        return (u for u in self.upstreams.values() if u.state == "up")

    def tools(self) -> list[tuple[str, Upstream, types.Tool]]:
        """(public name, server, upstream tool) of every tool of every server that is up."""
        return [(public_name(u.name, t.name), u, t) for u in self.up() for t in u.tools]

    def find_tool(self, public: str) -> tuple[Upstream, types.Tool] | None:
        return cast("tuple[Upstream, types.Tool] | None", _find(self, public, "tools"))

    def find_prompt(self, public: str) -> tuple[Upstream, types.Prompt] | None:
        return cast("tuple[Upstream, types.Prompt] | None", _find(self, public, "prompts"))

    def prompts(self) -> list[types.Prompt]:
        return [
            p.model_copy(update={"name": public_name(u.name, p.name)})
            for u in self.up()
            for p in u.prompts
        ]

    def resources(self) -> list[types.Resource]:
        """Every server's resources, URIs as they are (a client reads them by URI)."""
        return [r for u in self.up() for r in u.resources]

    def templates(self) -> list[types.ResourceTemplate]:
        return [t for u in self.up() for t in u.templates]

    def resource_owners(self, uri: str) -> list[Upstream]:
        """The servers that may hold `uri`: one that lists it, else every one with templates."""
        for u in self.up():
            if any(str(r.uri) == uri for r in u.resources):
                return [u]
        return [u for u in self.up() if u.templates]

    def remember(self, session: ServerSession) -> None:
        """A client session to tell when the lists change."""
        self._sessions.add(session)

    def _changed(self, upstream: Upstream) -> None:
        """A server came up, went down or changed its lists: every client session is told."""
        for session in list(self._sessions):
            task = asyncio.get_running_loop().create_task(_notify(session))
            self._notifying.add(task)
            task.add_done_callback(self._notifying.discard)

    def snapshot(self) -> list[dict[str, Any]]:
        """The servers as GET /admin/mcp shows them."""
        return [
            {
                "name": u.name,
                "transport": u.config.transport,
                "target": u.config.url or " ".join((u.config.command, *u.config.args)),
                "state": u.state,
                "since": int(u.since),
                "error": u.error,
                "restarts": u.restarts,
                "tools": [
                    {
                        "name": public_name(u.name, t.name),
                        "title": t.title,
                        "description": t.description,
                    }
                    for t in u.tools
                ],
                "prompts": len(u.prompts),
                "resources": len(u.resources) + len(u.templates),
            }
            for u in self.upstreams.values()
        ]


def _find(hub: Hub, public: str, kind: str) -> Any:
    parts = split_name(public)
    if parts is None:
        return None
    upstream = hub.upstreams.get(parts[0])
    if upstream is None or upstream.state != "up":
        return None
    for item in getattr(upstream, kind):
        if item.name == parts[1]:
            return upstream, item
    return None


async def _notify(session: ServerSession) -> None:
    """tools, resources and prompts list_changed to one client session; a session that is gone
    or slow is skipped."""
    try:
        with anyio.fail_after(NOTIFY_TIMEOUT_S):
            await session.send_tool_list_changed()
            await session.send_resource_list_changed()
            await session.send_prompt_list_changed()
    except Exception as exc:
        log.debug("list_changed not delivered: %s", exc)
