"""SPEC 19's pure parts: auth.oidc in the config (checked, defaults), the role a person's claims
grant, the role table of the admin routes, the console session store's expiry; and that authlib
is loaded only when auth.oidc is configured."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.access.console_sessions import ConsoleSessions, MemoryBlobs, PendingLogin
from gateway.access.roles import may_call, role_of, team_claim_of, user_of
from gateway.config import ConfigError, OidcConfig, parse

OIDC = {"issuer": "https://id.example.com", "client_id": "console"}


def _config(oidc: dict) -> OidcConfig:
    config = parse({"auth": {"oidc": oidc}}, "test", {})
    assert config.auth.oidc is not None
    return config.auth.oidc


def test_oidc_config_defaults_and_roles():
    o = _config({**OIDC, "roles": {"admin": ["ops"], "viewer": ["audit"]}, "team_claim": "team"})
    assert (o.scopes, o.role_claim, o.client_secret) == (("openid", "profile", "email"),
                                                         "groups", "")  # fmt: skip
    assert dict(o.roles) == {"admin": ("ops",), "viewer": ("audit",)}
    assert parse({}, "test", {}).auth.oidc is None


@pytest.mark.parametrize(
    ("oidc", "where"),
    [
        ({"client_id": "x"}, "auth.oidc.issuer"),
        ({**OIDC, "issuer": "id.example.com"}, "auth.oidc.issuer"),
        ({**OIDC, "client_id": ""}, "auth.oidc.client_id"),
        ({**OIDC, "scopes": ["profile"]}, "auth.oidc.scopes"),
        ({**OIDC, "roles": {"owner": ["x"]}}, "auth.oidc.roles"),
        ({**OIDC, "colour": "blue"}, "auth.oidc"),
    ],
)
def test_bad_oidc_config_names_its_key(oidc, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse({"auth": {"oidc": oidc}}, "test", {})


def test_the_first_role_in_order_wins_and_nobody_is_more_than_a_user():
    o = _config({**OIDC, "roles": {"admin": ["ops"], "team_admin": ["leads"],
                                   "viewer": ["audit"]}})  # fmt: skip
    assert role_of({"groups": ["audit", "ops"]}, o) == "admin"
    assert role_of({"groups": ["leads", "audit"]}, o) == "team_admin"
    assert role_of({"groups": "audit"}, o) == "viewer"
    assert role_of({"groups": ["staff"]}, o) == "user"
    assert role_of({"groups": [{"ops": 1}]}, o) == "user"
    assert role_of({}, o) == "user"


def test_user_and_team_from_claims():
    o = _config({**OIDC, "team_claim": "team"})
    assert user_of({"sub": "0a1b", "preferred_username": "ada"}) == "ada"
    assert user_of({"sub": "0a1b"}) == "0a1b"
    assert team_claim_of({"team": ["core", "x"]}, o) == "core"
    assert team_claim_of({"team": ""}, o) is None
    assert team_claim_of({"team": "core"}, _config(OIDC)) is None  # no team_claim configured


def test_role_table():
    assert may_call("admin", "DELETE", "/admin/teams/{team}")
    assert may_call("viewer", "GET", "/admin/usage")
    assert not may_call("viewer", "POST", "/admin/keys")
    assert may_call("team_admin", "POST", "/admin/keys")
    assert may_call("team_admin", "HEAD", "/admin/keys")
    assert not may_call("team_admin", "PUT", "/admin/users/{uid}/quota")
    assert not may_call("team_admin", "GET", "/admin/usage")
    assert not may_call("user", "GET", "/admin/keys")


async def test_sessions_expire_and_a_pending_sign_in_is_taken_once():
    now = [1000.0]
    sessions = ConsoleSessions(MemoryBlobs(lambda: now[0]), ttl_s=60, clock=lambda: now[0])
    token, session = await sessions.create("ada", "admin", None)
    assert await sessions.find(token) == session
    assert await sessions.find(token + "x") is None
    now[0] += 61
    assert await sessions.find(token) is None
    pending = PendingLogin("nonce", "verifier", "http://127.0.0.1/ui/callback")
    await sessions.begin_login("state", pending)
    assert await sessions.finish_login("state") == pending
    assert await sessions.finish_login("state") is None
    token, _ = await sessions.create("ada", "admin", None)
    await sessions.end(token)
    assert await sessions.find(token) is None


LAZY = """
import asyncio, sys, tempfile
from aiohttp import web
from gateway.config import parse
from gateway.web.app import create_app

async def main(oidc):
    tmp = tempfile.mkdtemp()
    mapping = {"database": {"url": f"sqlite:///{tmp}/g.db"}, "auth": {"admin_key": "k"}}
    if oidc:
        mapping["auth"]["oidc"] = {"issuer": "https://id.example.com", "client_id": "c"}
    runner = web.AppRunner(create_app(parse(mapping, "t", {})))
    await runner.setup()
    loaded = "authlib" in sys.modules
    await runner.cleanup()
    print(loaded)

asyncio.run(main(sys.argv[1] == "on"))
"""


@pytest.mark.parametrize(("oidc", "loaded"), [("off", "False"), ("on", "True")])
def test_authlib_loads_only_when_auth_oidc_is_configured(oidc, loaded):
    done = subprocess.run(
        [sys.executable, "-c", LAZY, oidc], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == loaded


def test_check_config_shows_auth_oidc_without_the_secret():
    from gateway.serve.cli import routing_table

    roles = {"admin": ["ops"], "team_admin": ["leads"]}
    oidc = {**OIDC, "client_secret": "s3cr3t-value", "team_claim": "team", "roles": roles}
    mapping = {"auth": {"oidc": oidc}}
    lines = routing_table(parse(mapping, "test", {}))
    shown = [line for line in lines if line.startswith("console sign-in:")]
    assert shown == [
        "console sign-in: issuer https://id.example.com, client_id console, client_secret set,"
        " scopes openid profile email, role_claim groups, roles admin=ops; team_admin=leads,"
        " team_claim team, session 28800s"
    ]
    assert not any("s3cr3t" in line for line in lines)
    assert not any("console sign-in" in line for line in routing_table(parse({}, "test", {})))


def test_a_reload_keeps_the_running_auth_oidc():
    from gateway.web.reload import prepare

    current = parse({"auth": {"oidc": OIDC}}, "test", {})
    changed = parse({"auth": {"oidc": {**OIDC, "client_id": "other"}, "admin_key": "k2"}}, "t", {})
    running, ignored = prepare(current, changed)
    assert running.auth.oidc == current.auth.oidc and running.auth.admin_key == "k2"
    assert ignored == ["auth.oidc"]
