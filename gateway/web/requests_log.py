"""The request log as the console reads it: a paged search for admins (/admin/requests), one
request's details, failures per day (/admin/errors), and a user's own search (/v1/ai/requests).

Rules:
- Newest first, keyset-paged: `before=<id>` gives the rows older than that request.
- `from` / `to` take a UTC date (YYYY-MM-DD; `to` then includes that whole day), an RFC 3339
  date-time (`to` exclusive) or Unix seconds.
- A user sees only their own rows, and not their key's metadata (the admin's annotation).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from aiohttp import web

from ..errors import InvalidRequest, NotFound, clip
from ..store.base import RequestLogRow
from ..store.request_query import REQUEST_STATUSES, RequestQuery
from .keys import ACTOR, PRINCIPAL, SERVICES
from .respond import json_response, query_choice, query_int, unix

DAY = timedelta(days=1)
READ_FLUSH_S = 2.0  # how long a read waits for queued log rows, so it sees the latest requests
LIMIT_DEFAULT, LIMIT_MAX = 50, 200
FILTER_MAX = 256
ERRORS_DEFAULT_DAYS = 30
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2})?)(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_UNIX = re.compile(r"\d{1,11}")
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def _bad_time(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"`{name}` must be a date (2026-01-31), a date-time (2026-01-31T12:00:00Z) or Unix "
        "seconds.",
        param=name,
        code="invalid_value",
    )


def parse_moment(raw: str, name: str, *, end: bool) -> datetime:
    """A `from` / `to` value as an aware UTC datetime; a date as `to` means the next midnight.
    Moments past either end of the calendar are clamped to it."""
    try:
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            if end:
                return LATEST if day == date.max else datetime.combine(day, time(0), UTC) + DAY
            return datetime.combine(day, time(0), UTC)
        if found := _MOMENT.fullmatch(raw):
            clock, _, fraction, zone = found.groups()
            text = f"{clock}{(fraction or '')[:7]}{zone}".upper().replace("Z", "+00:00")
            moment = datetime.fromisoformat(text.replace(" ", "T"))
            try:
                return moment.astimezone(UTC)
            except OverflowError:
                return LATEST if moment.year == date.max.year else EARLIEST
        if _UNIX.fullmatch(raw):
            return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise _bad_time(name)


def _text_filter(request: web.Request, name: str) -> str | None:
    value = request.query.get(name) or None
    if value is not None and len(value) > FILTER_MAX:
        raise InvalidRequest(
            f"`{name}` must be at most {FILTER_MAX} characters.", param=name, code="invalid_value"
        )
    return value


def _range(request: web.Request) -> tuple[datetime | None, datetime | None]:
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    start = parse_moment(raw_from, "from", end=False) if raw_from else None
    end = parse_moment(raw_to, "to", end=True) if raw_to else None
    return start, end  # `from` at or after `to` is an empty range: an empty page, not an error


def search_query(request: web.Request, uid: str | None, team: str | None = None) -> RequestQuery:
    """The filters of a search request; `uid` (a user's own search) replaces the `user` one,
    `team` (a team admin's) holds it to one team."""
    start, end = _range(request)
    return RequestQuery(
        team=team,
        uid=uid if uid is not None else _text_filter(request, "user"),
        model=_text_filter(request, "model"),
        status=query_choice(request, "status", REQUEST_STATUSES),
        endpoint=_text_filter(request, "endpoint"),
        start=start,
        end=end,
    )


def _json_text(raw: str | None) -> Any:
    """A JSON column's value, or None when absent or unreadable."""
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def request_object(r: RequestLogRow, *, admin: bool) -> dict[str, Any]:
    """A request-log row as the API shows it (the key's metadata to admins only)."""
    out: dict[str, Any] = {
        "id": r.request_id,
        "object": "ai.request",
        "created_at": unix(r.created_at),
        "user": r.uid,
        "key_id": r.key_id,
        "team": r.team,
        "endpoint": r.endpoint,
        "model": r.model,
        "provider": r.provider,
        "upstream_model": r.upstream_model,
        "stream": r.stream,
        "status": r.status,
        "status_code": r.status_code,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "cached_tokens": r.cached_tokens,
        "cache_write_tokens": r.cache_write_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "usage_estimated": r.usage_estimated,
        "cost_usd": f"{r.cost_usd:f}",
        "cache_savings_usd": f"{r.cache_savings_usd:f}",
        "cache_hit": r.cache_hit,
        "cache_saved_tokens": r.cache_saved_tokens,
        "cache_saved_usd": f"{r.cache_saved_usd:f}",
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "attempts": r.attempts,
        "session_id": r.session_id,
        "error": r.error,
        "tags": _json_text(r.tags) or [],
    }
    if admin:
        out["metadata"] = _json_text(r.key_metadata)
    return out


async def _search(request: web.Request, uid: str | None, admin: bool) -> web.Response:
    s = request.app[SERVICES]
    query = search_query(request, uid, request[ACTOR].team_scope if admin else None)
    limit = query_int(request, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX)
    before = _text_filter(request, "before")
    await s.writer.flush(READ_FLUSH_S)
    rows, has_more = await s.store.search_requests(query, limit, before)
    return json_response(
        {
            "object": "list",
            "data": [request_object(r, admin=admin) for r in rows],
            "has_more": has_more,
        }
    )


async def admin_search(request: web.Request) -> web.Response:
    return await _search(request, None, admin=True)


async def own_search(request: web.Request) -> web.Response:
    return await _search(request, request[PRINCIPAL].user, admin=False)


async def admin_get(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    request_id = request.match_info["request_id"]
    await s.writer.flush(READ_FLUSH_S)
    row = await s.store.get_request(request_id)
    scope = request[ACTOR].team_scope
    if row is None or (scope is not None and row.team != scope):
        raise NotFound(f"No request with id `{clip(request_id)}`.", param="request_id")
    return json_response(request_object(row, admin=True))


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        if _DATE.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise InvalidRequest(f"`{name}` must be a date (YYYY-MM-DD).", param=name, code="invalid_value")


async def admin_errors(request: web.Request) -> web.Response:
    """Failed requests per UTC day and status over [from, to] (dates, both included; `from`
    after `to` is an empty range)."""
    s = request.app[SERVICES]
    last = _day(request.query.get("to"), "to") or datetime.now(UTC).date()
    first = _day(request.query.get("from"), "from")
    if first is None:
        try:
            first = last - timedelta(days=ERRORS_DEFAULT_DAYS - 1)
        except OverflowError:
            first = date.min
    start = datetime.combine(first, time(0), UTC)
    end = datetime.max.replace(tzinfo=UTC)
    if last < date.max:
        end = datetime.combine(last + timedelta(days=1), time(0), UTC)
    await s.writer.flush(READ_FLUSH_S)
    rows = await s.store.request_failures(start, end)
    return json_response(
        {"object": "list", "from": first.isoformat(), "to": last.isoformat(), "data": rows}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/requests", admin_search)
    app.router.add_get("/admin/requests/{request_id}", admin_get)
    app.router.add_get("/admin/errors", admin_errors)
    app.router.add_get("/v1/ai/requests", own_search)
