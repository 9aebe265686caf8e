"""GET /v1/ai/usage: the caller's usage today, what remains of their quota, and their budgets.
Quota and budget figures come from the limiter (what admission uses); per-model totals from the
request log."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..governance import scope_for, team_of
from ..limits import BudgetUse
from ..ratelimit_headers import duration
from .admin import usage_rows
from .keys import PRINCIPAL, SERVICES
from .respond import json_response


async def get_usage(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    principal = request[PRINCIPAL]
    limits = s.quotas.limits_for(principal.user, principal.tier)
    now = time.time()
    state = await s.limiter.peek(principal.user, limits, now)
    override = s.quotas.override_for(principal.user)
    scope = scope_for(principal, limits, override, s.teams.get(team_of(principal, override)))
    budgets = (await s.limiter.peek_all((), scope.budgets, now)).budgets if scope.budgets else ()
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
            "budgets": [_budget(use) for use in budgets],
        }
    )


_SCOPES = {"u": "user", "k": "key", "t": "team"}


def _budget(use: BudgetUse) -> dict[str, Any]:
    """One budget as the caller sees it; amounts as exact decimal strings."""
    kind, _, owner = use.budget.id.partition(":")
    return {
        "scope": _SCOPES.get(kind, kind),
        "id": owner,
        "max_budget_usd": f"{use.budget.max_usd:f}",
        "period": use.budget.period,
        "spent_usd": f"{use.spend_usd:f}",
        "reserved_usd": f"{use.reserved_usd:f}",
        "remaining_usd": f"{use.remaining_usd:f}",
    }


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ai/usage", get_usage)
