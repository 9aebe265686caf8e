"""GET /v1/ai/usage: the caller's usage today and what remains of their quota.
Quota figures come from the limiter (what admission uses); per-model totals from the request log."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import web

from ..ratelimit_headers import duration
from .admin import usage_rows
from .keys import PRINCIPAL, SERVICES
from .respond import json_response


async def get_usage(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    principal = request[PRINCIPAL]
    limits = s.quotas.limits_for(principal.user, principal.tier)
    state = await s.limiter.peek(principal.user, limits, time.time())
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
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ai/usage", get_usage)
