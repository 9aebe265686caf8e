"""/admin: API keys, per-user quota overrides, usage reports and the routing health view.
Guarded by `Authorization: Bearer <auth.admin_key>`; an empty admin_key disables the whole API."""

from __future__ import annotations

import hmac
from datetime import UTC, date, datetime

from aiohttp import web

from ..auth import hash_key, new_key
from ..errors import InvalidApiKey, InvalidRequest, NotFound, clip
from ..store import ApiKey, QuotaOverride
from .keys import SERVICES
from .respond import json_object, json_response, optional_str, reject_unknown, unix

USAGE_FLUSH_S = 2.0
RPM_MAX = 2**31 - 1  # ai_user_quota.rpm is an INTEGER column
TPD_MAX = 10**12


def _require_admin(request: web.Request) -> None:
    admin_key = request.app[SERVICES].config.auth.admin_key
    if not admin_key:
        raise NotFound("The admin API is disabled (auth.admin_key is empty).")
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {admin_key}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidApiKey("Incorrect admin key provided.")


@web.middleware
async def admin_guard(request: web.Request, handler) -> web.StreamResponse:
    """Every /admin route needs the admin key."""
    if request.path.startswith("/admin/"):
        _require_admin(request)
    return await handler(request)


def key_object(k: ApiKey) -> dict:
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
    }


def _tier(request: web.Request, payload: dict) -> str | None:
    tier = optional_str(payload, "tier", 64)
    if tier is not None and tier not in request.app[SERVICES].config.quota.tiers:
        raise InvalidRequest(f"Unknown tier `{tier}`.", param="tier", code="invalid_value")
    return tier


async def create_key(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    payload = await json_object(request)
    reject_unknown(payload, ("user", "tier", "name"))
    user = optional_str(payload, "user", 128)
    if not user:
        raise InvalidRequest("`user` is required.", param="user", code="missing_required_parameter")
    key = new_key()
    row = ApiKey(
        id="",
        key_hash=hash_key(key),
        key_prefix=key[:12],
        uid=user,
        name=optional_str(payload, "name", 128) or "",
        tier=_tier(request, payload),
        status="active",
        created_at=datetime.now(UTC),
    )
    saved = await s.store.create_key(row)
    return json_response({**key_object(saved), "key": key}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    rows = await s.store.list_keys(request.query.get("user") or None)
    return json_response({"object": "list", "data": [key_object(k) for k in rows]})


async def revoke_key(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    key = request.match_info["key"]
    count = await s.store.revoke_key(key)
    if not count:
        raise NotFound(f"No active key matches `{clip(key)}`.", param="key")
    await s.key_cache.refresh()
    return json_response({"object": "api_key.revoked", "revoked": count})


def _optional_limit(payload: dict, name: str, high: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON counts 60.0 as an integer
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"`{name}` must be an integer.", param=name, code="invalid_type")
    if not 0 <= value <= high:
        raise InvalidRequest(
            f"`{name}` must be between 0 and {high}.", param=name, code="invalid_value"
        )
    return value


async def put_user_quota(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    uid = request.match_info["uid"]
    payload = await json_object(request)
    reject_unknown(payload, ("tier", "rpm", "tpd"))
    override = QuotaOverride(
        uid=uid,
        tier=_tier(request, payload),
        rpm=_optional_limit(payload, "rpm", RPM_MAX),
        tpd=_optional_limit(payload, "tpd", TPD_MAX),
    )
    await s.store.set_user_quota(override)
    s.quotas.apply(override)
    limits = s.quotas.limits_for(uid, None)
    return json_response(
        {"object": "user_quota", "user": uid, "tier": override.tier, "rpm": override.rpm,
         "tpd": override.tpd, "effective": {"rpm": limits.rpm, "tpd": limits.tpd}}
    )  # fmt: skip


def parse_day(raw: str | None) -> date:
    if not raw:
        return datetime.now(UTC).date()
    try:
        if len(raw) != 10 or raw[4] != "-" or raw[7] != "-":  # 3.11 also takes 20240131
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(
            "`day` must be a date (YYYY-MM-DD).", param="day", code="invalid_value"
        ) from None


def usage_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            "user": r["uid"],
            "model": r["model"],
            "requests": r["requests"],
            "prompt_tokens": r["prompt_tokens"],
            "completion_tokens": r["completion_tokens"],
            "cost_usd": f"{r['cost_usd']:f}",  # fixed point: "0.000000000", never "0E-9"
        }
        for r in rows
    ]


async def get_usage(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    day = parse_day(request.query.get("day"))
    await s.writer.flush(USAGE_FLUSH_S)
    rows = await s.store.usage(request.query.get("user") or None, day)
    return json_response({"object": "list", "day": day.isoformat(), "data": usage_rows(rows)})


async def get_routes(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    now = s.clock()
    return json_response(
        {"object": "list", "data": s.router.routes(now), "health": s.router.snapshot(now)}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/keys", create_key)
    app.router.add_get("/admin/keys", list_keys)
    app.router.add_delete("/admin/keys/{key}", revoke_key)
    app.router.add_put("/admin/users/{uid}/quota", put_user_quota)
    app.router.add_get("/admin/usage", get_usage)
    app.router.add_get("/admin/routes", get_routes)
