"""Console sign-in with OpenID Connect (SPEC 19) against a real provider (oidc-provider from npm):
people signed in through its login form get the role their groups grant; the admin API holds
each role to its rights and a team admin to their team; changes with the cookie need the CSRF
token; sign-out, expiry and bad tokens end or refuse a session; every change is audited."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.support.clients import bearer, call
from tests.support.databases import fresh_postgres_url
from tests.support.gateway import (
    ADMIN_KEY,
    USER_KEY,
    RunningGateway,
    base_config,
    free_port,
    start_gateway,
)
from tests.support.oidc_provider import (
    OidcProviderUnavailable,
    console_client,
    new_http,
    oidc_config,
    oidc_provider,
    sign_in,
    walk,
)


@dataclass
class Person:
    """A browser signed in as one person: its cookie jar and the session's CSRF token."""

    http: aiohttp.ClientSession
    session: dict[str, Any]
    url: str

    async def call(
        self, method: str, path: str, body: Any = None, csrf: bool = True
    ) -> tuple[int, dict[str, Any]]:
        headers = {"X-CSRF-Token": self.session["csrf_token"]} if csrf else {}
        async with self.http.request(
            method, f"{self.url}/{path}", json=body, headers=headers
        ) as resp:
            payload = await resp.json() if resp.content_type == "application/json" else {}
            return resp.status, payload


@dataclass
class Console:
    gateway: RunningGateway
    issuer: str
    people: list[Person] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    async def person(self, login: str) -> Person:
        http = new_http()
        session = await sign_in(http, self.url, login)
        person = Person(http, session, self.url)
        self.people.append(person)
        return person

    async def admin(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            status, _, payload = await call(http, method, f"{self.url}/{path}", ADMIN_KEY, body)
        assert status < 400, (method, path, status, payload)
        return payload


BACKENDS = [("sqlite", "memory"), ("postgres", "redis")]  # the store, the session store


@pytest.fixture(params=BACKENDS, ids=["sqlite-memory", "postgres-redis"])
async def console(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Console]:
    """A gateway with auth.oidc on the provider; its store and session store per the param."""
    database, redis = request.param
    port = free_port()
    try:
        provider_cm = oidc_provider([console_client(f"http://127.0.0.1:{port}/ui/callback")])
        provider = await provider_cm.__aenter__()
    except OidcProviderUnavailable as error:
        pytest.skip(str(error))
    try:
        async with fresh_postgres_url() as pg_url:
            mapping = base_config("http://127.0.0.1:9/v1", tmp_path, redis=redis)
            if database == "postgres":
                mapping["database"]["url"] = pg_url
            mapping["auth"]["oidc"] = oidc_config(provider.issuer)
            gateway = await start_gateway(mapping, port=port)
            console = Console(gateway, provider.issuer)
            try:
                yield console
            finally:
                for person in console.people:
                    await person.http.close()
                await gateway.close()
    finally:
        await provider_cm.__aexit__(None, None, None)


async def seed_teams(console: Console) -> dict[str, dict[str, Any]]:
    """Teams core (tom's) and other, a key in each, and a request made with each key."""
    for team in ("core", "other"):
        await console.admin("POST", "admin/teams", {"id": team, "name": team.title()})
    keys = {
        "core": await console.admin("POST", "admin/keys", {"user": "alice", "team": "core"}),
        "other": await console.admin("POST", "admin/keys", {"user": "bob", "team": "other"}),
    }
    async with aiohttp.ClientSession() as http:
        for key in keys.values():
            body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(
                f"{console.url}/v1/chat/completions", json=body, headers=bearer(key["key"])
            ) as resp:
                assert resp.status == 200, await resp.text()
    assert await console.gateway.services.writer.flush(5.0)
    return keys


@pytest.mark.parametrize(
    ("login", "role", "team"),
    [("ada", "admin", None), ("tom", "team_admin", "core"), ("val", "viewer", None),
     ("uma", "user", None)],
)  # fmt: skip
async def test_sign_in_gives_the_role_of_the_groups(console, login, role, team):
    person = await console.person(login)
    assert {k: person.session[k] for k in ("user", "role", "team")} == {
        "user": login, "role": role, "team": team,
    }  # fmt: skip
    assert len(person.session["csrf_token"]) >= 32


async def test_the_session_cookie_is_httponly_strict_and_not_secure_only_on_loopback(console):
    async with new_http() as http:
        callback = await walk(http, f"{console.url}/ui/login", f"{console.url}/ui/callback", "ada")
        async with http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/ui"
            cookie = resp.cookies["gw_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert cookie["path"] == "/"
    # Any host but a loopback one (here: the name a proxy would forward) gets Secure cookies.
    async with aiohttp.ClientSession() as http, http.get(
        f"{console.url}/ui/login", headers={"Host": "console.example.com"},
        allow_redirects=False,
    ) as resp:  # fmt: skip
        assert resp.status == 302
        assert resp.cookies["gw_login"]["secure"]


# (method, path, body) -> the status for admin, team_admin, viewer, user.
MATRIX = [
    ("GET", "admin/keys", None, (200, 200, 200, 403)),
    ("POST", "admin/keys", {"user": "carol", "team": "core"}, (201, 201, 403, 403)),
    ("GET", "admin/teams", None, (200, 200, 200, 403)),
    ("POST", "admin/teams", {"id": "t-{role}"}, (201, 403, 403, 403)),
    ("PATCH", "admin/teams/core", {"max_budget_usd": "9", "budget_period": "monthly"},
     (200, 200, 403, 403)),
    ("DELETE", "admin/teams/nope", None, (404, 403, 403, 403)),
    ("PUT", "admin/users/carol/quota", {"tier": "pro"}, (200, 403, 403, 403)),
    ("GET", "admin/usage", None, (200, 403, 200, 403)),
    ("GET", "admin/spend", None, (200, 200, 200, 403)),
    ("GET", "admin/requests", None, (200, 200, 200, 403)),
    ("GET", "admin/errors", None, (200, 403, 200, 403)),
    ("GET", "admin/routes", None, (200, 200, 200, 403)),
    ("GET", "admin/audit", None, (200, 200, 200, 403)),
]  # fmt: skip


async def test_role_matrix_over_the_admin_routes(console):
    await seed_teams(console)
    people = {
        role: await console.person(login)
        for role, login in [("admin", "ada"), ("team_admin", "tom"), ("viewer", "val"),
                            ("user", "uma")]
    }  # fmt: skip
    got, want = {}, {}
    for method, path, body, statuses in MATRIX:
        for (role, person), expected in zip(people.items(), statuses, strict=True):
            sent = {k: v.format(role=role) if isinstance(v, str) else v
                    for k, v in (body or {}).items()} if body else None  # fmt: skip
            status, payload = await person.call(method, path, sent)
            got[(method, path, role)] = status
            want[(method, path, role)] = expected
            if status == 403:
                assert payload["error"]["type"] == "permission_error", payload
    assert got == want


async def test_a_team_admin_touches_only_their_own_team(console):
    keys = await seed_teams(console)
    tom = await console.person("tom")
    status, listed = await tom.call("GET", "admin/keys")
    assert status == 200 and [k["id"] for k in listed["data"]] == [keys["core"]["id"]]
    other = keys["other"]["id"]
    assert (await tom.call("PATCH", f"admin/keys/{other}", {"name": "mine now"}))[0] == 403
    assert (await tom.call("DELETE", f"admin/keys/{other}"))[0] == 403
    assert (await tom.call("DELETE", f"admin/keys/{keys['other']['key_prefix']}"))[0] == 403
    assert (await tom.call("POST", "admin/keys", {"user": "x", "team": "other"}))[0] == 403
    assert (await tom.call("PATCH", f"admin/keys/{keys['core']['id']}", {"team": "other"}))[
        0
    ] == 403
    # ...and none of it changed anything
    all_keys = await console.admin("GET", "admin/keys")
    assert {k["id"]: (k["team"], k["status"], k["name"]) for k in all_keys["data"]} == {
        keys["core"]["id"]: ("core", "active", ""),
        other: ("other", "active", ""),
    }
    status, made = await tom.call("POST", "admin/keys", {"user": "dan"})
    assert status == 201 and made["team"] == "core"  # a team admin's keys are their team's
    assert (await tom.call("DELETE", f"admin/keys/{made['id']}"))[0] == 200
    status, teams = await tom.call("GET", "admin/teams")
    assert [t["id"] for t in teams["data"]] == ["core"]
    assert (await tom.call("GET", "admin/teams/other"))[0] == 403
    assert (await tom.call("PATCH", "admin/teams/other", {"max_budget_usd": "1"}))[0] == 403
    assert (await tom.call("PATCH", "admin/teams/core", {"rpm": 5}))[0] == 403
    status, by_team = await tom.call("GET", "admin/spend?group_by=team")
    assert status == 200 and [r["group"] for r in by_team["data"]] == ["core"]
    status, logs = await tom.call("GET", "admin/requests")
    assert status == 200 and {r["team"] for r in logs["data"]} == {"core"}
    everything = await console.admin("GET", "admin/requests")
    bobs = next(r["id"] for r in everything["data"] if r["team"] == "other")
    assert (await tom.call("GET", f"admin/requests/{bobs}"))[0] == 404


async def test_a_change_with_the_cookie_needs_the_csrf_token(console):
    ada = await console.person("ada")
    status, error = await ada.call("POST", "admin/teams", {"id": "sneaky"}, csrf=False)
    assert status == 403 and error["error"]["code"] == "csrf_token_invalid"
    async with ada.http.post(
        f"{console.url}/admin/teams", json={"id": "sneaky"}, headers={"X-CSRF-Token": "guess"}
    ) as resp:
        assert resp.status == 403
    assert (await console.admin("GET", "admin/teams"))["data"] == []  # nothing was created
    assert (await ada.call("POST", "/ui/logout".lstrip("/"), csrf=False))[0] == 403
    assert (await ada.call("GET", "admin/teams", csrf=False))[0] == 200  # reads need none
    assert (await ada.call("POST", "admin/teams", {"id": "fine"}))[0] == 201


async def test_sign_out_ends_the_session_on_the_server(console):
    ada = await console.person("ada")
    token = next(c.value for c in ada.http.cookie_jar if c.key == "gw_console")
    assert (await ada.call("POST", "ui/logout"))[0] == 204
    async with aiohttp.ClientSession(cookies={"gw_console": token}) as replay:
        async with replay.get(f"{console.url}/ui/session") as resp:
            assert resp.status == 401
        async with replay.get(f"{console.url}/admin/keys") as resp:
            assert resp.status == 401


async def test_an_expired_session_is_refused(console):
    ada = await console.person("ada")
    assert (await ada.call("GET", "admin/keys"))[0] == 200
    sessions = console.gateway.services.console_sessions
    sessions.clock = lambda: time.time() + sessions.ttl_s + 1
    assert (await ada.call("GET", "ui/session"))[0] == 401
    assert (await ada.call("GET", "admin/keys"))[0] == 401


async def test_without_a_cookie_there_is_no_session(console):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{console.url}/ui/session") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "invalid_session"
        async with http.get(f"{console.url}/admin/keys") as resp:
            assert resp.status == 401


async def test_a_tampered_id_token_signs_nobody_in(console):
    oidc = console.gateway.services.oidc
    real_exchange = oidc.exchange

    async def tampered(*args: Any) -> dict[str, Any]:
        tokens = await real_exchange(*args)
        head, body, sig = tokens["id_token"].split(".")
        flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
        return {**tokens, "id_token": f"{head}.{flipped}.{sig}"}

    oidc.exchange = tampered
    async with new_http() as http:
        callback = await walk(http, f"{console.url}/ui/login", f"{console.url}/ui/callback", "ada")
        async with http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "signin_failed"
            assert "gw_console" not in resp.cookies
        async with http.get(f"{console.url}/ui/session") as resp:
            assert resp.status == 401


async def test_a_callback_is_used_once_and_only_by_the_browser_that_started_it(console):
    async with new_http() as http:
        callback = await walk(http, f"{console.url}/ui/login", f"{console.url}/ui/callback", "ada")
        async with (
            aiohttp.ClientSession() as stranger,  # another browser, without gw_login
            stranger.get(callback, allow_redirects=False) as resp,
        ):
            assert resp.status == 401
        async with http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 303
        async with http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 401  # replayed


async def test_keys_keep_working_and_the_cookie_opens_only_the_own_routes(console):
    async with aiohttp.ClientSession() as http:
        status, _, _ = await call(http, "GET", f"{console.url}/admin/keys", ADMIN_KEY)
        assert status == 200
        status, _, usage = await call(http, "GET", f"{console.url}/v1/ai/usage", USER_KEY)
        assert status == 200 and usage["user"] == "alice"
        status, _, _ = await call(http, "GET", f"{console.url}/admin/keys", USER_KEY)
        assert status == 401
    uma = await console.person("uma")
    status, usage = await uma.call("GET", "v1/ai/usage")
    assert status == 200 and usage["user"] == "uma"
    assert (await uma.call("GET", "v1/ai/keys"))[0] == 200
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    assert (await uma.call("POST", "v1/chat/completions", body))[0] == 401  # models: keys only
    assert (await uma.call("POST", "v1/ai/sessions", {"title": "mine"}, csrf=False))[0] == 403
    assert (await uma.call("POST", "v1/ai/sessions", {"title": "mine"}))[0] == 201


AUDITED = [
    "key.create", "key.update", "key.revoke", "team.create", "team.update", "team.delete",
    "quota.set", "quota.update",
]  # fmt: skip


async def test_every_change_is_in_the_audit_log(console):
    ada = await console.person("ada")
    # through the console, as ada
    assert (await ada.call("POST", "admin/teams", {"id": "core", "name": "Core"}))[0] == 201
    status, key = await ada.call("POST", "admin/keys", {"user": "alice", "team": "core"})
    assert status == 201
    assert (await ada.call("PATCH", f"admin/keys/{key['id']}", {"name": "laptop"}))[0] == 200
    assert (await ada.call("DELETE", f"admin/keys/{key['id']}"))[0] == 200
    assert (await ada.call("PATCH", "admin/teams/core", {"name": "Core team"}))[0] == 200
    # with the admin key
    await console.admin("PUT", "admin/users/alice/quota", {"tier": "pro", "team": "core"})
    await console.admin("PATCH", "admin/users/alice/quota", {"rpm": 7})
    await console.admin("POST", "admin/teams", {"id": "gone"})
    async with (
        aiohttp.ClientSession() as http,
        http.delete(f"{console.url}/admin/teams/gone", headers=bearer(ADMIN_KEY)) as r,
    ):
        assert r.status == 204
    # a refused change is not a change
    tom = await console.person("tom")
    assert (await tom.call("POST", "admin/teams", {"id": "nope"}))[0] == 403

    entries = (await console.admin("GET", "admin/audit"))["data"]
    assert sorted({e["action"] for e in entries}) == sorted(AUDITED)
    assert len(entries) == 9
    by_action = {(e["action"], e["target"]): e for e in entries}
    created = by_action[("key.create", key["id"])]
    assert (created["actor"], created["role"], created["team"]) == ("ada", "admin", "core")
    assert created["before"] is None and created["after"]["user"] == "alice"
    assert "key" not in created["after"]  # never the key itself
    updated = by_action[("key.update", key["id"])]
    assert (updated["before"]["name"], updated["after"]["name"]) == ("", "laptop")
    revoked = by_action[("key.revoke", key["id"])]
    assert (revoked["before"]["status"], revoked["after"]["status"]) == ("active", "revoked")
    quota = by_action[("quota.update", "alice")]
    assert (quota["actor"], quota["role"]) == ("admin-key", "admin")
    assert (quota["before"]["rpm"], quota["after"]["rpm"], quota["after"]["tier"]) == (
        None, 7, "pro",
    )  # fmt: skip
    assert by_action[("team.delete", "gone")]["after"] is None
    assert [e["created_at"] for e in entries] == sorted(
        (e["created_at"] for e in entries), reverse=True
    )
    mine = (await console.admin("GET", "admin/audit?actor=ada"))["data"]
    assert len(mine) == 5 and {e["actor"] for e in mine} == {"ada"}
    assert (await console.admin("GET", "admin/audit?from=2999-01-01"))["data"] == []
    assert len((await console.admin("GET", "admin/audit?to=2999-01-01"))["data"]) == 9
    # a team admin reads their own team's entries; a viewer reads all, changes nothing
    status, teams = await tom.call("GET", "admin/audit")
    assert status == 200 and teams["data"] and {e["team"] for e in teams["data"]} == {"core"}
    val = await console.person("val")
    status, everything = await val.call("GET", "admin/audit")
    assert status == 200 and len(everything["data"]) == 9
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{console.url}/admin/audit?from=yesterday", headers=bearer(ADMIN_KEY)) as r,
    ):
        assert r.status == 400 and (await r.json())["error"]["param"] == "from"


async def test_without_a_team_claim_a_team_admin_s_team_is_their_user_quota_s(console):
    lee = await console.person("lee")
    assert (lee.session["role"], lee.session["team"]) == ("team_admin", None)
    status, error = await lee.call("GET", "admin/keys")
    assert status == 403 and error["error"]["code"] == "no_team"
    await seed_teams(console)
    await console.admin("PUT", "admin/users/lee/quota", {"team": "other"})
    lee = await console.person("lee")  # the team is read at sign-in
    assert lee.session["team"] == "other"
    status, listed = await lee.call("GET", "admin/keys")
    assert status == 200 and {k["team"] for k in listed["data"]} == {"other"}
