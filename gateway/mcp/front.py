"""The gateway's own MCP server at /mcp (the SDK's low-level Server behind its Streamable HTTP
session manager): merged lists, each call forwarded to the server that owns the name, tool
calls checked against the caller's `mcp_tools`, admitted against its rpm and recorded."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mcp import types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import McpError
from starlette.types import Receive, Scope, Send

from ..version import version
from .asgi import Bridge
from .calls import Caller, Ledger, ToolCall
from .hub import Hub
from .names import may_call
from .upstream import Upstream

log = logging.getLogger("gateway.mcp")

SCOPE_KEY = "gateway.mcp"  # the ASGI scope's entry holding (Caller, Ledger) of the request
RATE_LIMITED = -32029  # a JSON-RPC server error: the caller's rpm is spent
UPSTREAM_FAILED = -32003  # a JSON-RPC server error: the owning server is down or failed
RESOURCE_NOT_FOUND = -32002  # as MCP's specification names it


class _Server(Server[Any, Any]):
    """Announces list-changed notifications for tools, resources and prompts."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        everything = NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(
            notification_options or everything, experimental_capabilities
        )


class _QuietTeardown(logging.Filter):
    """Drops the SDK's error line for a notification stream closed by the session's end (a
    client's DELETE): anyio.ClosedResourceError, logged with a traceback, though nothing failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (
            record.getMessage() == "Error in standalone SSE writer"
            and type(error).__name__ == "ClosedResourceError"
        )


def _quiet_sdk_logs() -> None:
    """The SDK logs every request at INFO; the gateway logs its own line per tool call."""
    logging.getLogger("mcp").setLevel(logging.WARNING)
    transport = logging.getLogger("mcp.server.streamable_http")
    if not any(isinstance(f, _QuietTeardown) for f in transport.filters):
        transport.addFilter(_QuietTeardown())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _no_stream(send: Send) -> None:
    """405: the answer MCP's transport gives when the server offers no GET stream."""
    body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"No stream here."}}'
    headers = [(b"content-type", b"application/json"), (b"allow", b"POST, DELETE")]
    await send({"type": "http.response.start", "status": 405, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(code: int, message: str) -> McpError:
    return McpError(types.ErrorData(code=code, message=message))


class Front:
    """The MCP server clients talk to; `serve` holds its session manager's lifetime (and the
    upstream connections') in one task, until `stop`."""

    def __init__(self, hub: Hub):
        _quiet_sdk_logs()
        self.hub = hub
        server = self.server = _Server("ai-gateway", version=version())
        handlers = server.request_handlers
        handlers[types.ListToolsRequest] = self._list_tools
        handlers[types.CallToolRequest] = self._call_tool
        handlers[types.ListResourcesRequest] = self._list_resources
        handlers[types.ListResourceTemplatesRequest] = self._list_templates
        handlers[types.ReadResourceRequest] = self._read_resource
        handlers[types.ListPromptsRequest] = self._list_prompts
        handlers[types.GetPromptRequest] = self._get_prompt
        # Stateful sessions: the session is where list-changed notifications go. A session this
        # process does not hold (opened in another worker or instance, or before a restart) is
        # served without state: nothing of a session is needed to answer a request.
        self.manager = StreamableHTTPSessionManager(server)
        self.stateless = StreamableHTTPSessionManager(server, stateless=True)
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.streams: set[Bridge] = set()  # open GET streams (notifications), ended at shutdown

    async def serve(self) -> None:
        """Run the session manager and the upstream connections until `stop` is called."""
        async with self.manager.run(), self.stateless.run():
            self.hub.start()
            self.ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.hub.close()

    def stop(self) -> None:
        self._stop.set()

    def end_streams(self) -> None:
        """End every open GET stream (a client's wait for notifications), so that a draining
        gateway does not wait for them; calls in flight finish."""
        for bridge in list(self.streams):
            bridge.hang_up()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = _header(scope, b"mcp-session-id")
        if session_id is None or session_id in self.manager._server_instances:
            await self.manager.handle_request(scope, receive, send)
        elif scope["method"] == "GET":  # no notification stream for a session held elsewhere
            await _no_stream(send)
        else:
            await self.stateless.handle_request(scope, receive, send)

    @staticmethod
    def scope_entries(caller: Caller, ledger: Ledger) -> dict[str, Any]:
        """What the ASGI scope carries for the handlers: the caller, and its user and key as
        the principal the SDK ties a session to (another user's key cannot use it)."""
        p = caller.principal
        token = AccessToken(token="", client_id=p.key_id, subject=p.user, scopes=[])
        return {SCOPE_KEY: (caller, ledger), "user": AuthenticatedUser(token)}

    def _caller(self) -> tuple[Caller, Ledger]:
        """The caller of the request being served (set by the web layer in the ASGI scope);
        its client session is remembered for list-changed notifications."""
        ctx = self.server.request_context
        self.hub.remember(ctx.session)
        request = ctx.request
        entry = request.scope.get(SCOPE_KEY) if request is not None else None
        if entry is None:
            raise _error(types.INTERNAL_ERROR, "No caller for this request.")
        caller, ledger = entry
        return caller, ledger

    async def _list_tools(self, req: types.ListToolsRequest) -> types.ServerResult:
        caller, _ = self._caller()
        key_tools, team_tools = caller.principal.mcp_tools, caller.team_tools
        tools = [
            tool.model_copy(update={"name": name})
            for name, _, tool in self.hub.tools()
            if may_call(name, key_tools, team_tools)
        ]
        return types.ServerResult(types.ListToolsResult(tools=tools))

    async def _call_tool(self, req: types.CallToolRequest) -> types.ServerResult:
        caller, ledger = self._caller()
        name = req.params.name
        call = ToolCall(caller, name, arguments=req.params.arguments)
        try:
            return types.ServerResult(await self._forward_call(req, call, ledger))
        finally:
            ledger.record(call)

    async def _forward_call(
        self, req: types.CallToolRequest, call: ToolCall, ledger: Ledger
    ) -> types.CallToolResult:
        caller, name = call.caller, call.tool
        found = self.hub.find_tool(name)
        if found is not None:
            call.server, call.upstream_tool = found[0].name, found[1].name
        if found is None or not may_call(name, caller.principal.mcp_tools, caller.team_tools):
            call.fail("rejected", 404, "unknown or not allowed tool")
            raise _error(types.INVALID_PARAMS, f"Unknown tool: {name}")
        upstream, tool = found
        refused_at = await ledger.admit(caller)
        if refused_at is not None:
            call.fail("rate_limited", 429, f"rate limit reached: {refused_at} requests per minute")
            raise _error(RATE_LIMITED, f"Rate limit reached: {refused_at} requests per minute.")
        params = req.params.model_copy(update={"name": tool.name})
        forwarded = types.ClientRequest(types.CallToolRequest(params=params))
        result: types.CallToolResult = await self._ask(
            upstream, forwarded, types.CallToolResult, call
        )
        if result.isError:
            call.fail("tool_error", 200, "the tool reported an error")
        return result

    async def _ask(
        self,
        upstream: Upstream,
        request: types.ClientRequest,
        kind: type[Any],
        call: ToolCall | None = None,
    ) -> Any:
        """One request to `upstream`: its error passed on as it came, a failure of the server
        or its connection as an MCP error naming the server."""
        try:
            return await upstream.request(request, kind)
        except McpError as exc:
            if call is not None:
                call.fail("upstream_error", 502, exc.error.message[:300])
            if exc.error.code == types.CONNECTION_CLOSED:
                upstream.suspect()
                raise _error(UPSTREAM_FAILED, f"MCP server `{upstream.name}` failed.") from None
            raise
        except Exception as exc:
            log.warning(
                "mcp request failed",
                extra={"fields": {"server": upstream.name, "error": repr(exc)[:300]}},
            )
            upstream.suspect()
            if call is not None:
                call.fail("upstream_error", 502, str(exc)[:300] or type(exc).__name__)
            raise _error(UPSTREAM_FAILED, f"MCP server `{upstream.name}` failed.") from None

    async def _list_resources(self, req: types.ListResourcesRequest) -> types.ServerResult:
        self._caller()
        return types.ServerResult(types.ListResourcesResult(resources=self.hub.resources()))

    async def _list_templates(self, req: types.ListResourceTemplatesRequest) -> types.ServerResult:
        self._caller()
        templates = self.hub.templates()
        return types.ServerResult(types.ListResourceTemplatesResult(resourceTemplates=templates))

    async def _read_resource(self, req: types.ReadResourceRequest) -> types.ServerResult:
        self._caller()
        uri = str(req.params.uri)
        # a new request (the one received holds its own jsonrpc and id)
        forwarded = types.ClientRequest(types.ReadResourceRequest(params=req.params))
        error: McpError | None = None
        for upstream in self.hub.resource_owners(uri):
            try:
                result = await self._ask(upstream, forwarded, types.ReadResourceResult)
                return types.ServerResult(result)
            except McpError as exc:
                error = exc
        raise error or _error(RESOURCE_NOT_FOUND, f"Resource not found: {uri}")

    async def _list_prompts(self, req: types.ListPromptsRequest) -> types.ServerResult:
        self._caller()
        return types.ServerResult(types.ListPromptsResult(prompts=self.hub.prompts()))

    async def _get_prompt(self, req: types.GetPromptRequest) -> types.ServerResult:
        self._caller()
        found = self.hub.find_prompt(req.params.name)
        if found is None:
            raise _error(types.INVALID_PARAMS, f"Unknown prompt: {req.params.name}")
        upstream, prompt = found
        params = req.params.model_copy(update={"name": prompt.name})
        forwarded = types.ClientRequest(types.GetPromptRequest(params=params))
        return types.ServerResult(await self._ask(upstream, forwarded, types.GetPromptResult))
