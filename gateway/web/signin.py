"""Console sign-in through OpenID Connect (SPEC 19): GET /ui/login sends the browser to the
provider, GET /ui/callback signs the person in, GET /ui/session says who is signed in (with the
CSRF token the console sends back on changes), POST /ui/logout ends the session.

Rules:
- The sign-in under way is bound to the browser by a short-lived `SameSite=Lax` cookie holding
  its `state` (Lax: the provider's redirect back is a cross-site navigation, which a Strict
  cookie would not ride along); the session cookie is `HttpOnly; SameSite=Strict` and `Secure`
  unless the console is served over plain http on a loopback address.
- A refused sign-in (provider error, unknown or replayed state, a token that does not verify)
  answers 401 in the API's error shape and sets no session.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..access.console_sessions import PendingLogin, new_token
from ..access.roles import role_of, team_claim_of, user_of
from ..errors import InvalidApiKey, NotFound, ProviderError, clip
from .console_auth import COOKIE, check_csrf, cookie_secure, find_session
from .keys import SERVICES
from .respond import json_response

if TYPE_CHECKING:
    from ..access.oidc import OidcClient
    from .services import Services

LOGIN_COOKIE = "gw_login"
CALLBACK = "/ui/callback"


def _oidc(s: Services) -> OidcClient:
    if s.oidc is None or s.console_sessions is None:
        raise NotFound("Console sign-in is not configured (auth.oidc).")
    client: OidcClient = s.oidc
    return client


def _redirect_uri(request: web.Request, s: Services) -> str:
    configured = s.config.auth.oidc.redirect_uri if s.config.auth.oidc else ""
    return configured or str(request.url.origin().with_path(CALLBACK))


def _refused(message: str) -> InvalidApiKey:
    return InvalidApiKey(f"Sign-in refused: {message}", code="signin_failed")


async def login(request: web.Request) -> web.Response:
    from ..access.oidc import OidcError, new_pkce_verifier

    s = request.app[SERVICES]
    client = _oidc(s)
    assert s.console_sessions is not None
    state, nonce, verifier = new_token(), new_token(), new_pkce_verifier()
    redirect_uri = _redirect_uri(request, s)
    try:
        url = await client.authorization_url(state, nonce, verifier, redirect_uri)
    except OidcError as error:
        raise ProviderError(f"The sign-in provider is unavailable: {error}") from None
    await s.console_sessions.begin_login(state, PendingLogin(nonce, verifier, redirect_uri))
    response = web.Response(status=302, headers={"Location": url})
    response.set_cookie(
        LOGIN_COOKIE, state, max_age=600, path="/ui", httponly=True, samesite="Lax",
        secure=cookie_secure(request),
    )  # fmt: skip
    return response


async def callback(request: web.Request) -> web.Response:
    from ..access.oidc import OidcError

    s = request.app[SERVICES]
    client = _oidc(s)
    sessions = s.console_sessions
    assert sessions is not None
    query = request.query
    if "error" in query:
        raise _refused(f"the provider answered {clip(query['error'], 100)}")
    state, code = query.get("state", ""), query.get("code", "")
    bound = request.cookies.get(LOGIN_COOKIE, "")
    if not state or not code:
        raise _refused("the provider's answer has no state or code.")
    if not bound or not hmac.compare_digest(bound.encode(), state.encode()):
        raise _refused("this browser did not start that sign-in.")
    pending = await sessions.finish_login(state)
    if pending is None:
        raise _refused("the sign-in expired or was already used; start again at /ui/login.")
    try:
        tokens = await client.exchange(code, pending.code_verifier, pending.redirect_uri)
        claims = await client.verify(
            tokens["id_token"], pending.nonce, tokens.get("access_token") or None
        )
    except OidcError as error:
        raise _refused(str(error)) from None
    user = user_of(claims)
    role = role_of(claims, client.config)
    team = team_claim_of(claims, client.config)
    if team is None:
        override = s.quotas.override_for(user)
        team = override.team if override is not None else None
    token, _ = await sessions.create(user, role, team)
    response = web.Response(status=303, headers={"Location": "/ui"})
    response.del_cookie(LOGIN_COOKIE, path="/ui")
    response.set_cookie(
        COOKIE, token, max_age=int(sessions.ttl_s), path="/", httponly=True,
        samesite="Strict", secure=cookie_secure(request),
    )  # fmt: skip
    return response


async def session_info(request: web.Request) -> web.Response:
    found = await find_session(request)
    if found is None:
        raise InvalidApiKey("Not signed in to the console.", code="invalid_session")
    session = found[1]
    body: dict[str, Any] = {
        "object": "console.session",
        "user": session.user,
        "role": session.role,
        "team": session.team,
        "csrf_token": session.csrf_token,
        "expires_at": int(session.expires_at),
    }
    response = json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: web.Request) -> web.Response:
    found = await find_session(request)
    sessions = request.app[SERVICES].console_sessions
    if found is None or sessions is None:
        raise InvalidApiKey("Not signed in to the console.", code="invalid_session")
    token, session = found
    check_csrf(request, session)
    await sessions.end(token)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def signin_config(request: web.Request) -> web.Response:
    """Whether the console offers sign-in with the provider (no secret: public)."""
    return json_response({"oidc": request.app[SERVICES].oidc is not None})


def add_routes(app: web.Application) -> None:
    """Before the console's /ui/{asset}, which would otherwise take these names."""
    app.router.add_get("/ui/login", login)
    app.router.add_get(CALLBACK, callback)
    app.router.add_get("/ui/session", session_info)
    app.router.add_post("/ui/logout", logout)
    app.router.add_get("/ui/signin", signin_config)
