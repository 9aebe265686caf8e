"""GET /v1/ai/usage: the caller's usage today, what remains of their quota, and their budgets.
Quota and budget figures come from the limiter (what admission uses); per-model totals from the
request log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..access.governance import scope_for, team_of
from ..limits import BudgetUse
from .admin import usage_rows
from .keys import PRINCIPAL, SERVICES
from .ratelimit_headers import duration
from .respond import json_response

SCOPES = {"u": "user", "k": "key", "t": "team"}


def budget_object(use: BudgetUse) -> dict[str, Any]:
    """One budget that applies to the caller: its period's settled spend, the reservations of
    requests in flight, and what a new request can still reserve (USD, fixed point)."""
    kind, _, owner = use.budget.id.partition(":")
    return {
        "scope": SCOPES.get(kind, kind),
        "id": owner,
        "max_budget_usd": f"{use.budget.max_usd:f}",
        "budget_period": use.budget.period,
        "spend_usd": f"{use.spend_usd:f}",
        "reserved_usd": f"{use.reserved_usd:f}",
        "remaining_usd": f"{use.remaining_usd:f}",
    }


async def get_usage(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    principal = request[PRINCIPAL]
    limits = s.quotas.limits_for(principal.user, principal.tier)
    now = s.wall_clock()
    state = await s.limiter.peek(principal.user, limits, now)
    override = s.quotas.override_for(principal.user)
    team = s.teams.get(team_of(principal, override))
    budgets = scope_for(principal, limits, override, team).budgets
    uses = (await s.limiter.peek_all((), budgets, now)).budgets if budgets else ()
    day = datetime.now(UTC).date()
    rows = await s.reads.usage(principal.user, day)
    return json_response(
        {
            "object": "ai.usage",
            "user": principal.user,
            "day": day.isoformat(),
            "tier": s.quotas.tier_for(principal.user, principal.tier),
            "requests": {
                "limit": limits.rpm or None,
                "remaining": state.requests_remaining if limits.rpm else None,
                "reset": duration(state.requests_reset_s) if limits.rpm else None,
            },
            "tokens": {
                "limit": limits.tpd or None,
                "used": state.tokens_used,
                "remaining": state.tokens_remaining if limits.tpd else None,
                "reset": duration(state.tokens_reset_s),
            },
            "by_model": [{k: v for k, v in row.items() if k != "user"} for row in usage_rows(rows)],
            "budgets": [budget_object(use) for use in uses],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ai/usage", get_usage)
