"""/admin: the guard, per-user quota overrides (with budget and team), usage and spend reports,
and the routing health view; keys and teams live in admin_keys.py and admin_teams.py.
Guarded by `Authorization: Bearer <auth.admin_key>`; an empty admin_key disables the whole API."""

from __future__ import annotations

import hmac
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from ..access import governance_fields as fields
from ..access.governance_fields import RPM_MAX, TPD_MAX
from ..errors import InvalidApiKey, InvalidRequest, NotFound
from ..store import QuotaOverride
from ..store.base import SPEND_GROUPS
from . import admin_keys, admin_teams
from .keys import MCP_FRONT, SERVICES
from .respond import json_object, json_response, query_choice, reject_unknown

__all__ = ["RPM_MAX", "TPD_MAX", "USAGE_FLUSH_S", "add_routes", "require_admin", "usage_rows"]

USAGE_FLUSH_S = 2.0
SPEND_DEFAULT_DAYS = 30


def require_admin(request: web.Request) -> None:
    """Refuse a request without the admin key (404 while the admin API is disabled)."""
    admin_key = request.app[SERVICES].config.auth.admin_key
    if not admin_key:
        raise NotFound("The admin API is disabled (auth.admin_key is empty).")
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {admin_key}"
    # surrogateescape: a header's bad bytes (decoded as lone surrogates) compare, never raise
    if not hmac.compare_digest(given.encode(errors="surrogateescape"), expected.encode()):
        raise InvalidApiKey("Incorrect admin key provided.")


QUOTA_FIELDS = (
    "tier",
    "rpm",
    "tpd",
    "team",
    "max_budget_usd",
    "budget_period",
    "max_parallel_requests",
)


async def put_user_quota(request: web.Request) -> web.Response:
    """PUT sets the whole override: a field left out is cleared."""
    return await _set_user_quota(request, keep=False)


async def patch_user_quota(request: web.Request) -> web.Response:
    """PATCH changes only the fields it sends; the others keep their values."""
    return await _set_user_quota(request, keep=True)


async def _set_user_quota(request: web.Request, keep: bool) -> web.Response:
    s = request.app[SERVICES]
    uid = request.match_info["uid"]
    payload = await json_object(request)
    reject_unknown(payload, QUOTA_FIELDS)
    old = (s.quotas.override_for(uid) if keep else None) or QuotaOverride(uid, None, None, None)

    def sent(name: str) -> bool:
        return name in payload or not keep

    budget = fields.budget(payload.get("max_budget_usd"))
    parallel = fields.parallel(payload.get("max_parallel_requests"))
    override = QuotaOverride(
        uid=uid,
        tier=admin_keys.tier_of(request, payload) if sent("tier") else old.tier,
        rpm=fields.limit(payload.get("rpm"), "rpm", RPM_MAX) if sent("rpm") else old.rpm,
        tpd=fields.limit(payload.get("tpd"), "tpd", TPD_MAX) if sent("tpd") else old.tpd,
        team=fields.team_id(payload.get("team")) if sent("team") else old.team,
        max_budget_usd=budget if sent("max_budget_usd") else old.max_budget_usd,
        budget_period=(
            fields.period(payload.get("budget_period"))
            if sent("budget_period")
            else old.budget_period
        ),
        max_parallel_requests=(
            parallel if sent("max_parallel_requests") else old.max_parallel_requests
        ),
    )
    if keep:
        fields.check_changed_budget(
            override.max_budget_usd, override.budget_period, payload, "user's quota"
        )
    fields.check_budget(override.max_budget_usd, override.budget_period)
    await admin_teams.require_team(s, override.team)
    await s.store.set_user_quota(override)
    s.quotas.apply(override)
    limits = s.quotas.limits_for(uid, None)
    return json_response(
        {"object": "user_quota", "user": uid, "tier": override.tier, "rpm": override.rpm,
         "tpd": override.tpd, "team": override.team,
         "max_budget_usd": fields.money_text(override.max_budget_usd),
         "budget_period": override.budget_period,
         "max_parallel_requests": override.max_parallel_requests,
         "effective": {"rpm": limits.rpm, "tpd": limits.tpd}}
    )  # fmt: skip


def parse_day(raw: str | None, param: str = "day") -> date | None:
    """A YYYY-MM-DD query value, or None when absent or empty."""
    if not raw:
        return None
    try:
        if len(raw) != 10 or raw[4] != "-" or raw[7] != "-":  # 3.11 also takes 20240131
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(
            f"`{param}` must be a date (YYYY-MM-DD).", param=param, code="invalid_value"
        ) from None


def usage_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "user": r["uid"],
            "model": r["model"],
            "requests": r["requests"],
            "prompt_tokens": r["prompt_tokens"],
            "completion_tokens": r["completion_tokens"],
            "cached_tokens": r["cached_tokens"],
            "cache_write_tokens": r["cache_write_tokens"],
            "reasoning_tokens": r["reasoning_tokens"],
            "cost_usd": f"{r['cost_usd']:f}",  # fixed point: "0.000000000", never "0E-9"
            "cache_savings_usd": f"{r['cache_savings_usd']:f}",
        }
        for r in rows
    ]


async def get_usage(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    day = parse_day(request.query.get("day")) or datetime.now(UTC).date()
    await s.writer.flush(USAGE_FLUSH_S)
    rows = await s.store.usage(request.query.get("user") or None, day)
    return json_response({"object": "list", "day": day.isoformat(), "data": usage_rows(rows)})


def _days_before(day: date, days: int) -> date:
    """`days` days before `day`, or the first day there is."""
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min


def _midnight_after(day: date) -> datetime:
    """00:00 UTC of the day after `day` (the end of the 9999-12-31 range is its last moment)."""
    try:
        return datetime.combine(day + timedelta(days=1), time(0), UTC)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


async def get_spend(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    group_by = query_choice(request, "group_by", SPEND_GROUPS) or "user"
    last = parse_day(request.query.get("to"), "to") or datetime.now(UTC).date()
    first = parse_day(request.query.get("from"), "from")
    if first is None:
        first = _days_before(last, SPEND_DEFAULT_DAYS - 1)
    rows: list[dict[str, Any]] = []
    if first <= last:  # else an empty range
        start = datetime.combine(first, time(0), UTC)
        await s.writer.flush(USAGE_FLUSH_S)
        rows = await s.store.spend(
            group_by, start, _midnight_after(last), request.query.get("user") or None
        )
    data = [
        {**r, "cost_usd": f"{r['cost_usd']:f}", "cache_savings_usd": f"{r['cache_savings_usd']:f}"}
        for r in rows
    ]
    return json_response(
        {"object": "list", "group_by": group_by, "from": first.isoformat(),
         "to": last.isoformat(), "data": data}
    )  # fmt: skip


async def get_routes(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    now = s.clock()
    return json_response(
        {"object": "list", "data": s.router.routes(now), "health": s.router.snapshot(now)}
    )


async def get_mcp(request: web.Request) -> web.Response:
    """The upstream MCP servers (SPEC 17): state (`up`, `down`, `starting`), last error and
    tools; an empty list when none is configured."""
    front = request.app.get(MCP_FRONT)
    servers = front.hub.snapshot() if front is not None else []
    return json_response({"object": "list", "data": servers})


def add_routes(app: web.Application) -> None:
    admin_keys.add_routes(app)
    admin_teams.add_routes(app)
    app.router.add_put("/admin/users/{uid}/quota", put_user_quota)
    app.router.add_patch("/admin/users/{uid}/quota", patch_user_quota)
    app.router.add_get("/admin/usage", get_usage)
    app.router.add_get("/admin/spend", get_spend)
    app.router.add_get("/admin/routes", get_routes)
    app.router.add_get("/admin/mcp", get_mcp)
