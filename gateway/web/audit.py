"""The audit log from the web side (SPEC 19): `record` writes one change made through the admin
API or the console (who, role, action, target, before/after), and GET /admin/audit lists them,
newest first (a team admin sees their own team's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..store.audit import AUDIT_LIMIT_MAX, AuditEntry, AuditQuery
from .keys import ACTOR, SERVICES
from .requests_log import parse_moment
from .respond import json_response, query_int, unix


async def record(
    request: web.Request,
    action: str,
    target: str,
    team: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Write one change of this request to ai_audit_log (the caller is request[ACTOR])."""
    actor = request[ACTOR]
    entry = AuditEntry(
        created_at=datetime.now(UTC), actor=actor.user, role=actor.role, action=action,
        target=target, team=team, before=before, after=after,
    )  # fmt: skip
    await request.app[SERVICES].store.add_audit(entry)


def audit_object(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "object": "audit_entry",
        "created_at": unix(e.created_at),
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "target": e.target,
        "team": e.team,
        "before": e.before,
        "after": e.after,
    }


async def list_audit(request: web.Request) -> web.Response:
    """GET /admin/audit?from=&to=&actor=&limit= (times as the request log takes them)."""
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    actor = request.query.get("actor") or None
    query = AuditQuery(
        start=parse_moment(raw_from, "from", end=False) if raw_from else None,
        end=parse_moment(raw_to, "to", end=True) if raw_to else None,
        actor=actor[:256] if actor else None,
        team=request[ACTOR].team_scope,
        limit=query_int(request, "limit", 100, 1, AUDIT_LIMIT_MAX),
    )
    rows = await request.app[SERVICES].store.list_audit(query)
    return json_response({"object": "list", "data": [audit_object(e) for e in rows]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/audit", list_audit)
