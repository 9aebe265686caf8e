"""/admin/teams: create, list, read, change and delete teams (SPEC 10), and the check that a team
named by a key or a user quota exists. Every change reaches this instance's team cache at once."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..access import governance_fields as fields
from ..errors import Conflict, InvalidRequest, NotFound, clip
from ..store.base import Team
from .keys import SERVICES
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
    return json_response(team_object(saved), status=201)


async def list_teams(request: web.Request) -> web.Response:
    teams = await request.app[SERVICES].store.list_teams()
    return json_response({"object": "list", "data": [team_object(t) for t in teams]})


async def get_team(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    return json_response(team_object(await _active_team(s, request.match_info["team"])))


async def patch_team(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    team = await _active_team(s, request.match_info["team"])
    payload = await json_object(request)
    reject_unknown(payload, TEAM_SETTINGS)
    changed = _settings(payload, team)
    fields.check_changed_budget(changed.max_budget_usd, changed.budget_period, payload, "team")
    saved = await s.store.put_team(changed)
    _announce_team(s, saved)
    return json_response(team_object(saved))


async def delete_team(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    team_id = request.match_info["team"]
    if not await s.store.delete_team(team_id):
        raise NotFound(f"No team found with id `{clip(team_id)}`.", param="team")
    deleted = await s.store.get_team(team_id)
    if deleted is not None:
        _announce_team(s, deleted)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/teams", create_team)
    app.router.add_get("/admin/teams", list_teams)
    app.router.add_get("/admin/teams/{team}", get_team)
    app.router.add_patch("/admin/teams/{team}", patch_team)
    app.router.add_delete("/admin/teams/{team}", delete_team)
