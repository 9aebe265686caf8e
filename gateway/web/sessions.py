"""/v1/ai/sessions: server-side conversations and their messages, visible only to their owner.
Another user's session answers exactly like a missing one (404 session_not_found)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from ..errors import InvalidRequest, session_not_found
from ..store import Message, Session, Store
from .keys import PRINCIPAL, SERVICES
from .respond import (
    json_object,
    json_response,
    optional_str,
    query_choice,
    query_int,
    reject_unknown,
    unix,
)

T = TypeVar("T")
STATUSES = ("active", "archived")


def session_object(s: Session) -> dict[str, Any]:
    return {
        "id": s.session_id,
        "object": "ai.session",
        "title": s.title,
        "model": s.model,
        "message_count": s.message_count,
        "total_tokens": s.total_tokens,
        "status": s.status,
        "created_at": unix(s.created_at),
        "updated_at": unix(s.updated_at),
    }


def message_object(m: Message) -> dict[str, Any]:
    return {
        "id": m.message_id,
        "object": "ai.message",
        "session_id": m.session_id,
        "role": m.role,
        "content": m.content,
        "tokens": m.tokens,
        "model": m.model,
        "created_at": unix(m.created_at),
    }


async def create_session(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    payload = await json_object(request)
    reject_unknown(payload, ("title", "model"))
    title = optional_str(payload, "title") or ""
    model = optional_str(payload, "model")
    if model is not None:
        s.router.lookup(model)
    now = datetime.now(UTC)
    session = Session(
        session_id=f"sess_{uuid.uuid4().hex}",
        uid=request[PRINCIPAL].user,
        title=title,
        model=model,
        message_count=0,
        total_tokens=0,
        status="active",
        created_at=now,
        updated_at=now,
    )
    await s.store.create_session(session)
    return json_response(session_object(session), status=201)


async def list_sessions(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    status = query_choice(request, "status", STATUSES)
    limit = query_int(request, "limit", 20, 1, 100)
    after = request.query.get("after") or None
    rows, has_more = await s.store.list_sessions(request[PRINCIPAL].user, status, limit, after)
    return json_response(
        {"object": "list", "data": [session_object(r) for r in rows], "has_more": has_more}
    )


async def _in_session(
    request: web.Request, call: Callable[[Store, str, str], Awaitable[T | None]]
) -> T:
    """Run a store call on the caller's session once its queued writes have landed (read your
    own writes); a missing session and someone else's both answer 404."""
    s = request.app[SERVICES]
    session_id = request.match_info["session_id"]
    uid = request[PRINCIPAL].user
    result = await s.reads.on_session(session_id, lambda store: call(store, uid, session_id))
    if result is None or result is False:
        raise session_not_found(session_id)
    return result


async def get_session(request: web.Request) -> web.Response:
    session = await _in_session(request, lambda store, uid, sid: store.get_session(uid, sid))
    return json_response(session_object(session))


async def update_session(request: web.Request) -> web.Response:
    payload = await json_object(request)
    reject_unknown(payload, ("title", "status"))
    title = optional_str(payload, "title")
    status = optional_str(payload, "status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(
            "`status` must be active or archived.", param="status", code="invalid_value"
        )
    session = await _in_session(
        request, lambda store, uid, sid: store.update_session(uid, sid, title, status)
    )
    return json_response(session_object(session))


async def delete_session(request: web.Request) -> web.Response:
    await _in_session(request, lambda store, uid, sid: store.delete_session(uid, sid))
    return web.Response(status=204)


async def list_messages(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 20, 1, 100)
    before = request.query.get("before") or None
    rows, has_more = await _in_session(
        request, lambda store, uid, sid: store.list_messages(uid, sid, limit, before)
    )
    return json_response(
        {"object": "list", "data": [message_object(m) for m in rows], "has_more": has_more}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/ai/sessions", create_session)
    app.router.add_get("/v1/ai/sessions", list_sessions)
    app.router.add_get("/v1/ai/sessions/{session_id}", get_session)
    app.router.add_patch("/v1/ai/sessions/{session_id}", update_session)
    app.router.add_delete("/v1/ai/sessions/{session_id}", delete_session)
    app.router.add_get("/v1/ai/sessions/{session_id}/messages", list_messages)
