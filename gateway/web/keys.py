"""Typed keys for what the app and each request carry (aiohttp AppKey / request keys).
Imports nothing from the web modules, so every handler can use them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..access.auth import Principal
from ..access.roles import Actor
from ..tracing import RequestTrace, Tracer

if TYPE_CHECKING:
    from ..mcp.front import Front
    from .services import Services

SERVICES: web.AppKey[Services] = web.AppKey("services")
# The MCP gateway (SPEC 17); present only when mcp_servers is configured.
MCP_FRONT: web.AppKey[Front] = web.AppKey("mcp_front")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
ACTOR: web.RequestKey[Actor] = web.RequestKey("actor", Actor)  # who calls /admin (SPEC 19)
TRACER: web.AppKey[Tracer] = web.AppKey("tracer", Tracer)
TRACE: web.RequestKey[RequestTrace] = web.RequestKey("trace", RequestTrace)
# Server-Timing: when the request arrived (perf_counter) and how long upstream kept it waiting.
STARTED: web.RequestKey[float] = web.RequestKey("started", float)
UPSTREAM_S: web.RequestKey[float] = web.RequestKey("upstream_s", float)
