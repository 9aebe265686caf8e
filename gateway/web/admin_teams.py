"""/admin/teams: create, list, read, change and delete teams (SPEC 10), and the check that a team
named by a key or a user quota exists. Every change reaches this instance's team cache at once,
and the audit log. A team admin (SPEC 19) sees their own team and may change its budget."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..access import governance_fields as fields
from ..access.roles import TEAM_ADMIN_TEAM_FIELDS
from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied, clip
from ..store.base import Team
from .audit import record
from .keys import ACTOR, SERVICES
from .respond import json_object, json_response, optional_str, reject_unknown, unix

if TYPE_CHECKING:
    from .services import Services

TEAM_SETTINGS = (
    "name",
    "max_budget_usd",
    "budget_period",
    "models",
    "rpm",
    "tpd",
    "max_parallel_requests",
    "mcp_tools",
)
NAME_MAX = 128


def team_object(team: Team) -> dict[str, Any]:
    """A team as the admin API shows it."""
    return {
        "id": team.id,
        "object": "team",
        "name": team.name,
        "max_budget_usd": fields.money_text(team.max_budget_usd),
        "budget_period": team.budget_period,
        "models": list(team.models) if team.models is not None else None,
        "rpm": team.rpm,
        "tpd": team.tpd,
        "max_parallel_requests": team.max_parallel_requests,
        "mcp_tools": list(team.mcp_tools) if team.mcp_tools is not None else None,
        "created_at": unix(team.created_at) if team.created_at else None,
        "updated_at": unix(team.updated_at) if team.updated_at else None,
    }


async def require_team(s: Services, team_id: str | None, param: str = "team") -> None:
    """A 400 naming `param` unless `team_id` is None or an active team."""
    if team_id is None:
        return
    team = await s.store.get_team(team_id)
    if team is None or team.status != "active":
        raise InvalidRequest(
            f"No team `{clip(team_id)}`: create it with POST /admin/teams first.",
            param=param,
            code="invalid_value",
        )


def _announce_team(s: Services, team: Team) -> None:
    """Take a team change (a deletion too: status `deleted`) into this instance's team cache at
    once; the other instances see it at their next poll."""
    s.teams.apply(team)


def _settings(payload: dict[str, Any], team: Team) -> Team:
    """`team` with the settings `payload` holds (null clears one), each checked (the budget and
    its period together by the caller)."""
    changes: dict[str, Any] = {}
    if "name" in payload:
        changes["name"] = optional_str(payload, "name", NAME_MAX) or ""
    if "max_budget_usd" in payload:
        changes["max_budget_usd"] = fields.budget(payload["max_budget_usd"])
    if "budget_period" in payload:
        changes["budget_period"] = fields.period(payload["budget_period"])
    if "models" in payload:
        changes["models"] = fields.models(payload["models"])
    if "rpm" in payload:
        changes["rpm"] = fields.limit(payload["rpm"], "rpm", fields.RPM_MAX)
    if "tpd" in payload:
        changes["tpd"] = fields.limit(payload["tpd"], "tpd", fields.TPD_MAX)
    if "max_parallel_requests" in payload:
        changes["max_parallel_requests"] = fields.parallel(payload["max_parallel_requests"])
    if "mcp_tools" in payload:
        changes["mcp_tools"] = fields.mcp_tools(payload["mcp_tools"])
    return replace(team, **changes)


def _own_team(request: web.Request, team_id: str) -> None:
    scope = request[ACTOR].team_scope
    if scope is not None and team_id != scope:
        raise PermissionDenied(f"A team admin sees only team `{scope}`.", code="other_team")


async def _active_team(s: Services, team_id: str) -> Team:
    team = await s.store.get_team(team_id)
    if team is None or team.status != "active":
        raise NotFound(f"No team found with id `{clip(team_id)}`.", param="team")
    return team


async def create_team(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    payload = await json_object(request)
    reject_unknown(payload, ("id", *TEAM_SETTINGS))
    team_id = fields.team_id(payload.get("id"), "id")
    if team_id is None:
        raise InvalidRequest("`id` is required.", param="id", code="missing_required_parameter")
    team = _settings(payload, Team(id=team_id, name=""))
    fields.check_budget(team.max_budget_usd, team.budget_period)
    existing = await s.store.get_team(team_id)
    if existing is not None and existing.status == "active":
        raise Conflict(
            f"A team with id `{team_id}` already exists: PATCH /admin/teams/{team_id} changes it.",
            param="id",
            code="team_exists",
        )
    saved = await s.store.put_team(team)
    _announce_team(s, saved)
    before = team_object(existing) if existing is not None else None
    await record(request, "team.create", saved.id, saved.id, before, team_object(saved))
    return json_response(team_object(saved), status=201)


async def list_teams(request: web.Request) -> web.Response:
    teams = await request.app[SERVICES].store.list_teams()
    scope = request[ACTOR].team_scope
    if scope is not None:
        teams = [t for t in teams if t.id == scope]
    return json_response({"object": "list", "data": [team_object(t) for t in teams]})


async def get_team(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    _own_team(request, request.match_info["team"])
    return json_response(team_object(await _active_team(s, request.match_info["team"])))


async def patch_team(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    _own_team(request, request.match_info["team"])
    team = await _active_team(s, request.match_info["team"])
    payload = await json_object(request)
    reject_unknown(payload, TEAM_SETTINGS)
    if request[ACTOR].team_scope is not None and not payload.keys() <= TEAM_ADMIN_TEAM_FIELDS:
        raise PermissionDenied(
            "A team admin may change only their team's budget (max_budget_usd, budget_period).",
            code="team_settings",
        )
    changed = _settings(payload, team)
    fields.check_changed_budget(changed.max_budget_usd, changed.budget_period, payload, "team")
    saved = await s.store.put_team(changed)
    _announce_team(s, saved)
    after = team_object(saved)
    await record(request, "team.update", saved.id, saved.id, team_object(team), after)
    return json_response(after)


async def delete_team(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    team_id = request.match_info["team"]
    before = await s.store.get_team(team_id)
    if not await s.store.delete_team(team_id):
        raise NotFound(f"No team found with id `{clip(team_id)}`.", param="team")
    deleted = await s.store.get_team(team_id)
    if deleted is not None:
        _announce_team(s, deleted)
    gone = team_object(before) if before is not None else None
    await record(request, "team.delete", team_id, team_id, gone, None)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/teams", create_team)
    app.router.add_get("/admin/teams", list_teams)
    app.router.add_get("/admin/teams/{team}", get_team)
    app.router.add_patch("/admin/teams/{team}", patch_team)
    app.router.add_delete("/admin/teams/{team}", delete_team)
