"""Who calls /admin and /v1/ai with a console cookie (SPEC 19): the admin key, or a person
signed in through auth.oidc, checked against the role table (access.roles) in one place.

Rules:
- A Bearer header always wins: the admin key on /admin (as before), a key on /v1.
- A cookie counts only on /admin and /v1/ai (never on the model routes), and a call that
  changes anything (any method but GET, HEAD, OPTIONS) must carry the session's CSRF token in
  X-CSRF-Token: a page on another site can make the browser send the cookie, never the token.
- The admin API stays disabled (404) while there is neither an admin key nor auth.oidc.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from ..access.auth import Principal
from ..access.console_sessions import ConsoleSession
from ..access.roles import ADMIN_KEY, READS, Actor, may_call
from ..errors import InvalidApiKey, NotFound, PermissionDenied
from .keys import SERVICES

COOKIE = "gw_console"
CSRF_HEADER = "X-CSRF-Token"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cookie_secure(request: web.Request) -> bool:
    """`Secure` unless the console is served over plain http on a loopback address."""
    return not (request.scheme == "http" and is_loopback(request.url.host))


async def find_session(request: web.Request) -> tuple[str, ConsoleSession] | None:
    """The cookie's token and its live session, or None."""
    sessions = request.app[SERVICES].console_sessions
    token = request.cookies.get(COOKIE)
    if sessions is None or not token or len(token) > 256:
        return None
    session = await sessions.find(token)
    return None if session is None else (token, session)


def check_csrf(request: web.Request, session: ConsoleSession) -> None:
    """403 unless a state-changing call carries the session's CSRF token."""
    if request.method in READS:
        return
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(given.encode(errors="surrogateescape"), session.csrf_token.encode()):
        raise PermissionDenied(
            f"A change made with the console's cookie must carry its {CSRF_HEADER} header "
            "(from GET /ui/session).",
            code="csrf_token_invalid",
        )


def _route(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


async def admin_actor(request: web.Request) -> Actor:
    """The caller of an /admin route, allowed by their role, or 401 / 403 / 404."""
    config = request.app[SERVICES].config
    admin_key = config.auth.admin_key
    if not admin_key and config.auth.oidc is None:
        raise NotFound("The admin API is disabled (auth.admin_key is empty).")
    given = request.headers.get("Authorization")
    if given is not None or config.auth.oidc is None:
        expected = f"Bearer {admin_key}"
        # surrogateescape: a header's bad bytes (decoded as lone surrogates) compare, never raise
        if not admin_key or not hmac.compare_digest(
            (given or "").encode(errors="surrogateescape"), expected.encode()
        ):
            raise InvalidApiKey("Incorrect admin key provided.")
        return ADMIN_KEY
    found = await find_session(request)
    if found is None:
        raise InvalidApiKey(
            "Send the admin key, or sign in to the console (GET /ui/login).",
            code="invalid_session",
        )
    session = found[1]
    check_csrf(request, session)
    actor = Actor(session.user, session.role, session.team, via="session")
    route = _route(request)
    if route is not None and not may_call(actor.role, request.method, route):
        raise PermissionDenied(f"The role `{actor.role}` may not call {request.method} {route}.")
    if actor.role == "team_admin" and not actor.team:
        raise PermissionDenied("This team admin belongs to no team.", code="no_team")
    return actor


async def console_principal(request: web.Request) -> Principal | None:
    """A /v1/ai call made with the console's cookie (no Authorization header) as the signed-in
    person's own Principal, or None when there is no such cookie."""
    if "Authorization" in request.headers or not request.path.startswith("/v1/ai/"):
        return None
    found = await find_session(request)
    if found is None:
        return None
    session = found[1]
    check_csrf(request, session)
    return Principal(session.user, "console")
