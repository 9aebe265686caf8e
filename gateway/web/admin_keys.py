"""/admin/keys: create API keys with their scopes (SPEC 10), list them (never the key itself),
change their scopes and revoke them. Changes reach this instance's key cache at once, and the
audit log. A team admin (SPEC 19) sees and changes only the keys of their own team."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..access import governance_fields as fields
from ..access.auth import hash_key, new_key
from ..errors import InvalidRequest, NotFound, PermissionDenied, clip
from ..store import ApiKey
from ..store.base import key_row_id
from .admin_teams import require_team
from .audit import record
from .keys import ACTOR, SERVICES
from .respond import json_object, json_response, optional_str, reject_unknown, unix

if TYPE_CHECKING:
    from .services import Services

NAME_MAX = 128
# The scope fields a key may carry, each with its check (None always clears the field).
SCOPES: dict[str, Callable[[object], Any]] = {
    "models": fields.models,
    "expires_at": fields.moment,
    "rpm": lambda value: fields.limit(value, "rpm", fields.RPM_MAX),
    "tpd": lambda value: fields.limit(value, "tpd", fields.TPD_MAX),
    "max_budget_usd": fields.budget,
    "budget_period": fields.period,
    "team": fields.team_id,
    "metadata": fields.metadata,
    "max_parallel_requests": fields.parallel,
    "mcp_tools": fields.mcp_tools,
}


def key_object(k: ApiKey) -> dict[str, Any]:
    """A key as the admin API shows it: its prefix and scopes, never the key."""
    return {
        "id": k.id,
        "object": "api_key",
        "key_prefix": k.key_prefix,
        "user": k.uid,
        "name": k.name,
        "tier": k.tier,
        "status": k.status,
        "created_at": unix(k.created_at),
        "last_used_at": unix(k.last_used_at) if k.last_used_at else None,
        "models": list(k.models) if k.models is not None else None,
        "expires_at": unix(k.expires_at) if k.expires_at else None,
        "rpm": k.rpm,
        "tpd": k.tpd,
        "max_budget_usd": fields.money_text(k.max_budget_usd),
        "budget_period": k.budget_period,
        "team": k.team,
        "metadata": k.metadata,
        "max_parallel_requests": k.max_parallel_requests,
        "mcp_tools": list(k.mcp_tools) if k.mcp_tools is not None else None,
    }


def tier_of(request: web.Request, payload: dict[str, Any]) -> str | None:
    """The payload's `tier`, one of the configured quota tiers (or None)."""
    tier = optional_str(payload, "tier", 64)
    if tier is not None and tier not in request.app[SERVICES].config.quota.tiers:
        raise InvalidRequest(f"Unknown tier `{tier}`.", param="tier", code="invalid_value")
    return tier


async def _scopes(s: Services, payload: dict[str, Any]) -> dict[str, Any]:
    """The scope fields `payload` holds, checked (the team must exist)."""
    changes = {name: check(payload[name]) for name, check in SCOPES.items() if name in payload}
    await require_team(s, changes.get("team"))
    return changes


def _own_team(request: web.Request, team: str | None) -> None:
    """403 when a team admin names a team (or no team) other than their own."""
    scope = request[ACTOR].team_scope
    if scope is not None and team != scope:
        raise PermissionDenied(
            f"A team admin manages only the keys of team `{scope}`.", code="other_team"
        )


async def create_key(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    payload = await json_object(request)
    reject_unknown(payload, ("user", "tier", "name", *SCOPES))
    scope = request[ACTOR].team_scope
    if scope is not None:  # a team admin's keys are their team's
        payload.setdefault("team", scope)
        _own_team(request, payload["team"])
    user = optional_str(payload, "user", 128)
    if not user:
        raise InvalidRequest("`user` is required.", param="user", code="missing_required_parameter")
    name = optional_str(payload, "name", NAME_MAX) or ""
    tier = tier_of(request, payload)
    scopes = await _scopes(s, payload)
    fields.check_budget(scopes.get("max_budget_usd"), scopes.get("budget_period"))
    key = new_key()
    row = ApiKey(
        id="",
        key_hash=hash_key(key),
        key_prefix=key[:12],
        uid=user,
        name=name,
        tier=tier,
        status="active",
        created_at=datetime.now(UTC),
        **scopes,
    )
    saved = await s.store.create_key(row)
    s.key_cache.apply(saved)
    await record(request, "key.create", saved.id, saved.team, None, key_object(saved))
    return json_response({**key_object(saved), "key": key}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    rows = await s.store.list_keys(request.query.get("user") or None)
    scope = request[ACTOR].team_scope
    if scope is not None:
        rows = [k for k in rows if k.team == scope]
    return json_response({"object": "list", "data": [key_object(k) for k in rows]})


async def patch_key(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    key_id = request.match_info["key"]
    payload = await json_object(request)
    reject_unknown(payload, ("name", *SCOPES))
    changes = await _scopes(s, payload)
    if "name" in payload:
        changes["name"] = optional_str(payload, "name", NAME_MAX) or ""
    current = await s.store.get_key(key_id)
    if current is None or current.status != "active":  # a revoked key is gone (DELETE)
        raise NotFound(f"No active key found with id `{clip(key_id)}`.", param="key")
    _own_team(request, current.team)
    if "team" in changes:
        _own_team(request, changes["team"])
    if changes.keys() & {"max_budget_usd", "budget_period"}:  # the other one as stored
        fields.check_changed_budget(
            changes.get("max_budget_usd", current.max_budget_usd),
            changes.get("budget_period", current.budget_period),
            changes,
            "key",
        )
    updated = await s.store.update_key(key_id, changes)
    if updated is None:
        raise NotFound(f"No key found with id `{clip(key_id)}`.", param="key")
    s.key_cache.apply(updated)
    after = key_object(updated)
    await record(request, "key.update", updated.id, updated.team, key_object(current), after)
    return json_response(after)


async def revoke_key(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    key = request.match_info["key"]
    # The keys it revokes, for the team check and the audit log: by id, else by prefix.
    by_id = await s.store.get_key(key) if key_row_id(key) is not None else None
    candidates = [by_id] if by_id is not None else await s.store.list_keys(None)
    matched = [k for k in candidates if k.status == "active" and key in (k.id, k.key_prefix)]
    for k in matched:
        _own_team(request, k.team)
    count = await s.store.revoke_key(key) if matched else 0
    if not count:
        raise NotFound(f"No active key matches `{clip(key)}`.", param="key")
    await s.key_cache.refresh()
    for k in matched:
        revoked = await s.store.get_key(k.id)
        after = key_object(revoked) if revoked is not None else None
        await record(request, "key.revoke", k.id, k.team, key_object(k), after)
    return json_response({"object": "api_key.revoked", "revoked": count})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/keys", create_key)
    app.router.add_get("/admin/keys", list_keys)
    app.router.add_patch("/admin/keys/{key}", patch_key)
    app.router.add_delete("/admin/keys/{key}", revoke_key)
