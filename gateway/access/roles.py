"""Who may do what on /admin (SPEC 19): the Actor behind an admin request, the role a person's
ID token grants, and the one table of what each role may call.

Rules:
- `admin` may call everything; `viewer` every read (GET); `team_admin` only TEAM_ROUTES, and the
  handlers narrow those to their own team; `user` nothing under /admin.
- A role comes from the configured claim (a string or a list of strings); the first role of
  ROLES whose values the claim holds wins; no match is `user`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ROLES, OidcConfig

READS = frozenset({"GET", "HEAD", "OPTIONS"})
# (method, route) pairs a team admin may call; the handlers scope each one to their team.
TEAM_ROUTES = frozenset(
    {
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys"),
        ("PATCH", "/admin/keys/{key}"),
        ("DELETE", "/admin/keys/{key}"),
        ("GET", "/admin/teams"),
        ("GET", "/admin/teams/{team}"),
        ("PATCH", "/admin/teams/{team}"),
        ("GET", "/admin/spend"),
        ("GET", "/admin/requests"),
        ("GET", "/admin/requests/{request_id}"),
        ("GET", "/admin/routes"),
        ("GET", "/admin/audit"),
    }
)
# What a team admin may change of their own team: its budget, not its limits or models.
TEAM_ADMIN_TEAM_FIELDS = frozenset({"max_budget_usd", "budget_period"})
ADMIN_KEY_ACTOR = "admin-key"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who calls the admin API: the admin key, or a person signed in to the console."""

    user: str
    role: str  # one of ROLES
    team: str | None = None  # a team admin's team
    via: str = "admin_key"  # admin_key | session

    @property
    def team_scope(self) -> str | None:
        """The team the caller is held to (a team admin's), else None (every team)."""
        return self.team if self.role == "team_admin" else None


ADMIN_KEY = Actor(ADMIN_KEY_ACTOR, "admin")


def may_call(role: str, method: str, route: str) -> bool:
    """Whether `role` may call `method route` (route: the pattern, e.g. /admin/keys/{key})."""
    if role == "admin":
        return True
    if role == "viewer":
        return method in READS
    if role == "team_admin":
        return (method if method != "HEAD" else "GET", route) in TEAM_ROUTES
    return False


def _values(claim: Any) -> set[str]:
    if isinstance(claim, str):
        return {claim}
    if isinstance(claim, list | tuple):
        return {v for v in claim if isinstance(v, str)}
    return set()


def role_of(claims: Mapping[str, Any], oidc: OidcConfig) -> str:
    """The role a person's ID token claims grant."""
    held = _values(claims.get(oidc.role_claim))
    for role in ROLES:
        if held & set(oidc.roles.get(role, ())):
            return role
    return "user"


def user_of(claims: Mapping[str, Any]) -> str:
    """The person's user id: preferred_username when present, else sub."""
    name = claims.get("preferred_username")
    if isinstance(name, str) and name:
        return name
    return str(claims["sub"])


def team_claim_of(claims: Mapping[str, Any], oidc: OidcConfig) -> str | None:
    """The team the configured team claim names (its first value when a list), or None."""
    if not oidc.team_claim:
        return None
    value = claims.get(oidc.team_claim)
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) and value else None
