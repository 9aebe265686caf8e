"""/admin: per-user quota overrides (with budget and team), usage and spend reports,
and the routing health view; keys and teams live in admin_keys.py and admin_teams.py.
Guarded by the admin key or a console session with a role (web/console_auth.py, SPEC 19)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from ..access import governance_fields as fields
from ..access.governance_fields import RPM_MAX, TPD_MAX
from ..errors import InvalidRequest
from ..store import QuotaOverride
from ..store.base import SPEND_GROUPS
from ..store.common import MONEY_SUMS
from . import admin_keys, admin_teams, audit
from .keys import ACTOR, MCP_FRONT, SERVICES
from .respond import json_object, json_response, query_choice, reject_unknown

__all__ = ["RPM_MAX", "TPD_MAX", "USAGE_FLUSH_S", "add_routes", "usage_rows"]

USAGE_FLUSH_S = 2.0
SPEND_DEFAULT_DAYS = 30


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
    stored = s.quotas.override_for(uid)
    old = (stored if keep else None) or QuotaOverride(uid, None, None, None)

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
    after = _quota_object(override)
    before = _quota_object(stored) if stored is not None else None
    action = "quota.update" if keep else "quota.set"
    await audit.record(request, action, uid, override.team, before, after)
    return json_response({**after, "effective": {"rpm": limits.rpm, "tpd": limits.tpd}})


def _quota_object(q: QuotaOverride) -> dict[str, Any]:
    return {
        "object": "user_quota",
        "user": q.uid,
        "tier": q.tier,
        "rpm": q.rpm,
        "tpd": q.tpd,
        "team": q.team,
        "max_budget_usd": fields.money_text(q.max_budget_usd),
        "budget_period": q.budget_period,
        "max_parallel_requests": q.max_parallel_requests,
    }


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
            "cache_hits": r["cache_hits"],
            "cache_saved_tokens": r["cache_saved_tokens"],
            "cache_saved_usd": f"{r['cache_saved_usd']:f}",
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
            group_by,
            start,
            _midnight_after(last),
            request.query.get("user") or None,
            request[ACTOR].team_scope,
        )
    data = [{**r, **{c: f"{r[c]:f}" for c in MONEY_SUMS}} for r in rows]
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
    audit.add_routes(app)
    app.router.add_put("/admin/users/{uid}/quota", put_user_quota)
    app.router.add_patch("/admin/users/{uid}/quota", patch_user_quota)
    app.router.add_get("/admin/usage", get_usage)
    app.router.add_get("/admin/spend", get_spend)
    app.router.add_get("/admin/routes", get_routes)
    app.router.add_get("/admin/mcp", get_mcp)
