"""/mcp: the MCP gateway's Streamable HTTP endpoint (SPEC 17). The front door has checked the
key; here the caller's tool list and limits are resolved and the request is served by the SDK's
transport through the ASGI bridge."""

from __future__ import annotations

from aiohttp import web

from ..access.governance import scope_for, team_of
from ..errors import NotFound
from ..mcp.asgi import Bridge
from ..mcp.calls import Caller, Ledger
from .keys import MCP_FRONT, PRINCIPAL, REQUEST_ID, SERVICES


async def mcp_endpoint(request: web.Request) -> web.StreamResponse:
    front = request.app.get(MCP_FRONT)
    if front is None:
        raise NotFound("This gateway has no MCP servers (mcp_servers is empty).")
    s = request.app[SERVICES]
    principal = request[PRINCIPAL]
    override = s.quotas.override_for(principal.user)
    team = s.teams.get(team_of(principal, override))
    limits = s.quotas.limits_for(principal.user, principal.tier)
    caller = Caller(
        principal=principal,
        team_tools=team.mcp_tools if team is not None else None,
        scope=scope_for(principal, limits, override, team),
        request_id=request[REQUEST_ID],
    )
    ledger = Ledger(s.limiter, s.writer, s.metrics, s.recorder.log_content, s.wall_clock)
    await front.ready.wait()
    bridge = Bridge(request)
    if request.method == "GET":  # the client's stream for notifications: ended at shutdown
        front.streams.add(bridge)
    try:
        return await bridge.run(front.handle, front.scope_entries(caller, ledger))
    finally:
        front.streams.discard(bridge)


async def end_streams(app: web.Application) -> None:
    """On shutdown, before the gateway waits for requests in flight: end the GET streams."""
    front = app.get(MCP_FRONT)
    if front is not None:
        front.end_streams()


def add_routes(app: web.Application) -> None:
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, "/mcp", mcp_endpoint)
    app.on_shutdown.append(end_streams)
