"""One upstream MCP server, kept connected: a Streamable HTTP endpoint or a stdio process that
the gateway starts. Reconnected (HTTP) or restarted (stdio) with backoff whenever it fails; its
tools, resources and prompts are known only while it is up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client, types
from mcp.client.stdio import get_default_environment
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.session import RequestResponder

from ..config import McpServerConfig

log = logging.getLogger("gateway.mcp")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 30.0  # up this long: the next failure starts the backoff over
CONNECT_TIMEOUT_S = 10.0  # to start (or reach) the server and initialize the session
PING_EVERY_S = 2.0
PING_TIMEOUT_S = 5.0
# A server busy with calls (a stdio server running a blocking tool answers nothing else) may
# leave pings unanswered this long before it counts as down; idle, one unanswered ping is enough.
BUSY_GRACE_S = 120.0
LIST_TIMEOUT_S = 10.0

Streams = tuple[Any, Any]
ResultT = TypeVar("ResultT", bound=types.Result)


class Upstream:
    """An upstream server's connection, state (`starting`, `up`, `down`) and lists."""

    def __init__(self, config: McpServerConfig, on_change: Callable[[Upstream], None]):
        self.config = config
        self.name = config.name
        self.on_change = on_change
        self.state = "starting"
        self.error: str | None = None
        self.restarts = 0
        self.since = time.time()
        self.tools: list[types.Tool] = []
        self.resources: list[types.Resource] = []
        self.templates: list[types.ResourceTemplate] = []
        self.prompts: list[types.Prompt] = []
        self.session: ClientSession | None = None
        self._nudge = asyncio.Event()  # something may be wrong, or a list changed: look now
        self._refresh_due = False
        self._connecting: anyio.CancelScope | None = None
        self.in_flight = 0  # requests sent and not yet answered
        self._lost = asyncio.Event()  # set when the current connection ends

    async def run(self) -> None:
        """Connect, serve until the connection fails, wait, and again; until cancelled."""
        delay = BACKOFF_MIN_S
        while True:
            began = time.monotonic()
            try:
                await self._serve_once()
                error = "the connection ended"
            except Exception as exc:  # any failure of the server or its transport
                error = _describe(exc)
            self._set_down(error)
            if time.monotonic() - began > HEALTHY_AFTER_S:
                delay = BACKOFF_MIN_S
            log.warning(
                "mcp server down", extra={"fields": {"server": self.name, "error": error,
                                                     "retry_in_s": delay}}
            )  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
            self.restarts += 1
            self.state, self.since = "starting", time.time()
            self.on_change(self)

    async def _serve_once(self) -> None:
        async with (
            self._transport() as (read, write),
            ClientSession(read, write, message_handler=self._on_message) as session,
        ):
            with anyio.CancelScope() as connecting:
                self._connecting = connecting
                with anyio.fail_after(CONNECT_TIMEOUT_S):
                    init = await session.initialize()
                    await self._refresh(session, init.capabilities)
            self._connecting = None
            if connecting.cancelled_caught:
                raise ConnectionError("the server failed while connecting")
            self.session, self._lost = session, asyncio.Event()
            self.state, self.error, self.since = "up", None, time.time()
            log.info("mcp server up", extra={"fields": {"server": self.name,
                                                        "tools": len(self.tools)}})  # fmt: skip
            self.on_change(self)
            await self._watch(session, init.capabilities)

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[Streams]:
        c = self.config
        if c.url:
            client = create_mcp_http_client(headers=dict(c.headers))
            async with client, streamable_http_client(c.url, http_client=client) as streams:
                yield streams[0], streams[1]
        else:
            env = {**get_default_environment(), **c.env}
            params = StdioServerParameters(command=c.command, args=list(c.args), env=env)
            async with stdio_client(params) as streams:
                yield streams

    async def _refresh(self, session: ClientSession, caps: types.ServerCapabilities) -> None:
        """Read every page of the server's lists (those its capabilities announce)."""
        with anyio.fail_after(LIST_TIMEOUT_S):
            self.tools = await _all(session, "tools", types.ListToolsRequest) if caps.tools else []
            if caps.resources:
                self.resources = await _all(session, "resources", types.ListResourcesRequest)
                self.templates = await _all(
                    session, "resourceTemplates", types.ListResourceTemplatesRequest
                )
            else:
                self.resources, self.templates = [], []
            self.prompts = (
                await _all(session, "prompts", types.ListPromptsRequest) if caps.prompts else []
            )

    async def _watch(self, session: ClientSession, caps: types.ServerCapabilities) -> None:
        """Ping the server every few seconds (at once when nudged), re-read its lists when it
        says they changed; returns (raises) when it stops answering: an idle server at its
        first unanswered ping, a busy one after BUSY_GRACE_S of them, a broken connection at
        once."""
        busy_since: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), PING_EVERY_S)
            self._nudge.clear()
            if self._refresh_due:
                self._refresh_due = False
                await self._refresh(session, caps)
                self.on_change(self)
            try:
                with anyio.fail_after(PING_TIMEOUT_S):
                    await session.send_ping()
                busy_since = None
            except TimeoutError:
                now = time.monotonic()
                busy_since = busy_since if busy_since is not None else now
                if self.in_flight == 0 or now - busy_since > BUSY_GRACE_S:
                    raise

    async def _on_message(
        self,
        message: RequestResponder[types.ServerRequest, types.ClientResult]
        | types.ServerNotification
        | Exception,
    ) -> None:
        """A list-changed notification schedules a re-read; a transport error a health check
        (or, while connecting, ends the attempt at once)."""
        if isinstance(message, Exception):
            if self._connecting is not None:
                self._connecting.cancel()
            self._nudge.set()
            return
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root,
            types.ToolListChangedNotification
            | types.ResourceListChangedNotification
            | types.PromptListChangedNotification,
        ):
            self._refresh_due = True
            self._nudge.set()

    def _set_down(self, error: str) -> None:
        self.session = None
        self._lost.set()  # requests still waiting on the old connection fail now
        self.tools, self.resources, self.templates, self.prompts = [], [], [], []
        self.state, self.error, self.since = "down", error, time.time()
        self.on_change(self)

    def suspect(self) -> None:
        """A request to this server failed oddly: check its health now."""
        self._nudge.set()

    async def request(self, request: types.ClientRequest, result: type[ResultT]) -> ResultT:
        """Send one request as it came (params and _meta untouched) and return its result;
        McpError for the server's own error, ConnectionError while the server is not up."""
        session = self.session
        if session is None or self.state != "up":
            raise ConnectionError(f"MCP server `{self.name}` is {self.state}")
        lost = self._lost
        self.in_flight += 1
        answer = asyncio.ensure_future(session.send_request(request, result))
        gone = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait((answer, gone), return_when=asyncio.FIRST_COMPLETED)
            if answer.done():
                return answer.result()
            # The SDK leaves requests of a closed session waiting: end them here.
            raise ConnectionError(f"MCP server `{self.name}` went down")
        finally:
            self.in_flight -= 1
            for task in (answer, gone):
                task.cancel()


async def _all(session: ClientSession, field: str, kind: type[Any]) -> list[Any]:
    """Every item of a paginated list request."""
    items: list[Any] = []
    cursor: str | None = None
    result_type: type[Any] = {
        "tools": types.ListToolsResult,
        "resources": types.ListResourcesResult,
        "resourceTemplates": types.ListResourceTemplatesResult,
        "prompts": types.ListPromptsResult,
    }[field]
    for _ in range(1000):  # a server that pages forever is cut off
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        request = types.ClientRequest(kind(params=params))
        page: Any = await session.send_request(request, result_type)
        items.extend(getattr(page, field))
        cursor = page.nextCursor
        if not cursor:
            break
    return items


def _describe(exc: BaseException) -> str:
    """A one-line reason, the first leaf of an exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text[:300]
