"""GET /v1/ai/keys: the caller's own API keys, their status, prefixes and scopes (never a key,
never the admin's metadata), and which of them made this request."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..store import ApiKey
from .keys import PRINCIPAL, SERVICES
from .respond import json_response, unix


def _money(amount: Decimal | None) -> str | None:
    if amount is None:
        return None
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def own_key_object(k: ApiKey, current_id: str, now: datetime) -> dict[str, Any]:
    """A key as its owner sees it."""
    return {
        "id": k.id,
        "object": "api_key",
        "key_prefix": k.key_prefix,
        "name": k.name,
        "tier": k.tier,
        "status": k.status,
        "expired": k.expires_at is not None and k.expires_at <= now,
        "current": k.id == current_id,
        "created_at": unix(k.created_at),
        "last_used_at": unix(k.last_used_at) if k.last_used_at else None,
        "expires_at": unix(k.expires_at) if k.expires_at else None,
        "models": list(k.models) if k.models is not None else None,
        "rpm": k.rpm,
        "tpd": k.tpd,
        "max_budget_usd": _money(k.max_budget_usd),
        "budget_period": k.budget_period,
        "team": k.team,
        "max_parallel_requests": k.max_parallel_requests,
    }


async def list_own_keys(request: web.Request) -> web.Response:
    """The caller's keys, oldest first; `current_key_id` is the key of this request (a key from
    the config file is not in the list)."""
    s = request.app[SERVICES]
    principal = request[PRINCIPAL]
    now = datetime.now(UTC)
    rows = await s.store.list_keys(principal.user)
    return json_response(
        {
            "object": "list",
            "user": principal.user,
            "current_key_id": principal.key_id,
            "data": [own_key_object(k, principal.key_id, now) for k in rows],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ai/keys", list_own_keys)
