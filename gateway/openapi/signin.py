"""Console sign-in and the audit log in the OpenAPI document (SPEC 19): /ui/login, /ui/callback,
/ui/session, /ui/logout, /ui/signin and GET /admin/audit. Pure data."""

from __future__ import annotations

from ..errors import InvalidApiKey, InvalidRequest, NotFound, PermissionDenied, ProviderError
from .common import ADMIN, ADMIN_DISABLED, ADMIN_UNAUTHORIZED, DB_503, PUBLIC
from .shapes import (
    INT,
    STR,
    UNIX,
    Schema,
    const,
    error,
    header_refs,
    list_of,
    nullable,
    ok,
    op,
    param,
    record,
    ref,
)

OFF = error(NotFound, "Console sign-in is not configured (`auth.oidc`).")
NUL = error(InvalidRequest, "NUL in the URL.", ["invalid_value"])
NOT_SIGNED_IN = error(InvalidApiKey, "No console session (no cookie, ended or expired).",
                      ["invalid_session"])  # fmt: skip
ROLES = ["admin", "team_admin", "viewer", "user"]


def _redirect(description: str) -> Schema:
    return {"description": description, "headers": header_refs()}


def _time(name: str, description: str) -> Schema:
    out = param(name, "query", STR, description)
    out["schema"] = {
        "type": "string",
        "anyOf": [{"format": "date"}, {"format": "date-time"}, {"pattern": r"^\d{1,11}$"}],
    }
    return out


def signin_paths() -> dict[str, Schema]:
    return {
        "/ui/login": {
            "get": op(
                "consoleLogin", "Console sign-in",
                "Start signing in: a redirect to the OpenID provider (code flow with PKCE)",
                {"302": _redirect("To the provider's authorization endpoint."),
                 "400": NUL, "404": OFF,
                 "502": error(ProviderError, "The provider's discovery document is unreachable.")},
                PUBLIC,
            ),
        },
        "/ui/callback": {
            "get": op(
                "consoleCallback", "Console sign-in",
                "The provider's redirect back (the redirect URI to register): signs in",
                {"303": _redirect("Signed in: to /ui, with the session cookie."),
                 "400": NUL, "404": OFF,
                 "401": error(InvalidApiKey, "The sign-in is refused (provider error, unknown or "
                              "reused state, another browser, an ID token that does not verify).",
                              ["signin_failed"])},
                PUBLIC,
                parameters=[param("code", "query", STR, "The authorization code."),
                            param("state", "query", STR, "The state sent at /ui/login.")],
            ),
        },
        "/ui/session": {
            "get": op(
                "consoleSession", "Console sign-in", "Who the console cookie signs in",
                {"200": ok("The signed-in person.", ref("ConsoleSession")), "400": NUL,
                 "401": NOT_SIGNED_IN},
                PUBLIC,
            ),
        },
        "/ui/logout": {
            "post": op(
                "consoleLogout", "Console sign-in", "Sign out: ends the session on the server",
                {"204": _redirect("Signed out; the cookie is cleared."), "400": NUL,
                 "401": NOT_SIGNED_IN,
                 "403": error(PermissionDenied, "No or a wrong `X-CSRF-Token`.",
                              ["csrf_token_invalid"])},
                PUBLIC,
            ),
        },
        "/ui/signin": {
            "get": op(
                "consoleSignin", "Console sign-in", "Whether the console offers provider sign-in",
                {"200": ok("`oidc`: true when auth.oidc is configured.",
                           record({"oidc": {"type": "boolean"}})), "400": NUL},
                PUBLIC,
            ),
        },
        "/admin/audit": {
            "get": op(
                "listAudit", "Admin",
                "The audit log: every change through the admin API or console, newest first",
                {"200": ok("The entries (a team admin's: their team's).", ref("AuditList")),
                 "400": error(InvalidRequest, "A bad time or limit.",
                              ["invalid_type", "invalid_value"]),
                 "401": ADMIN_UNAUTHORIZED,
                 "404": error(NotFound, f"{ADMIN_DISABLED} no console sign-in either."),
                 "503": DB_503},
                ADMIN,
                parameters=[
                    _time("from", "Entries at or after (a date, a date-time or Unix seconds)."),
                    _time("to", "Entries before (a date: that whole day included)."),
                    param("actor", "query", STR, "Only this actor's (`admin-key`, or a user)."),
                    param("limit", "query", {**INT, "minimum": 1, "maximum": 1000},
                          "At most this many (default 100)."),
                ],
            ),
        },
    }  # fmt: skip


ROLE_403 = error(
    PermissionDenied,
    "A console session whose role may not do this (or a team admin naming another team), or a "
    "change without the session's X-CSRF-Token.",
    ["permission_denied", "other_team", "no_team", "team_settings", "csrf_token_invalid"],
)


def with_console_sessions(paths: dict[str, Schema]) -> dict[str, Schema]:
    """Every /admin operation also takes a console session (and may answer 403 for its role)."""
    for path, item in paths.items():
        if not path.startswith("/admin/"):
            continue
        for operation in item.values():
            operation["security"] = [*operation["security"], {"ConsoleSession": []}]
            operation["responses"] = {**operation["responses"], "403": ROLE_403}
    return paths


def signin_schemas() -> dict[str, Schema]:
    json_object = {"type": ["object", "null"]}
    return {
        "ConsoleSession": record(
            {
                "object": const("console.session"),
                "user": STR,
                "role": {"type": "string", "enum": ROLES},
                "team": nullable(STR),
                "csrf_token": {**STR, "description": "Send it as X-CSRF-Token on changes."},
                "expires_at": UNIX,
            }
        ),
        "AuditEntry": record(
            {
                "id": INT,
                "object": const("audit_entry"),
                "created_at": UNIX,
                "actor": STR,
                "role": {"type": "string", "enum": ROLES},
                "action": {**STR, "examples": ["key.create", "team.update", "quota.set"]},
                "target": STR,
                "team": nullable(STR),
                "before": json_object,
                "after": json_object,
            }
        ),
        "AuditList": list_of("AuditEntry"),
    }
