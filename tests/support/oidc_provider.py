"""A real OpenID provider for the console sign-in tests: the `oidc-provider` npm package,
installed once with npm into a cache folder and run by node/oidc_provider.mjs on 127.0.0.1 with
the clients and people a test gives it; and `sign_in`, which walks its login form over HTTP (the
browser tests use Chromium instead)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import orjson

from tests.support.npm import npm_install_once

PINNED = "9.13.3"
VERSION_ENV = "AI_GATEWAY_OIDC_PROVIDER_VERSION"
CACHE_ENV = "AI_GATEWAY_OIDC_PROVIDER_CACHE"
SCRIPT = Path(__file__).parent / "node" / "oidc_provider.mjs"
CLIENT_ID = "gateway-console"
CLIENT_SECRET = "console-secret-for-tests"
OTHER_CLIENT_ID = "another-app"
# People in different groups: an admin, team leads (tom of team `core` by the team claim, lee
# with no team claim), a viewer and a plain user.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "ada": {"preferred_username": "ada", "name": "Ada Admin", "groups": ["gw-admins", "staff"]},
    "tom": {"preferred_username": "tom", "name": "Tom Lead", "groups": ["team-leads"],
            "team": "core"},
    "val": {"preferred_username": "val", "name": "Val Viewer", "groups": ["auditors"]},
    "lee": {"preferred_username": "lee", "name": "Lee Lead", "groups": ["team-leads"]},  # no team
    "uma": {"preferred_username": "uma", "name": "Uma User", "groups": ["staff"]},
}  # fmt: skip
ROLES = {"admin": ["gw-admins"], "team_admin": ["team-leads"], "viewer": ["auditors"]}


class OidcProviderUnavailable(Exception):
    """oidc-provider cannot be installed or run here (no node/npm, no registry...)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "ai-gateway-tests" / "oidc-provider"
    return Path(os.environ.get(CACHE_ENV) or default)


@functools.cache
def install_oidc_provider(version: str | None = None) -> Path:
    """The folder holding node_modules with oidc-provider@version."""
    version = version or os.environ.get(VERSION_ENV) or PINNED
    return npm_install_once(
        cache_dir() / version, [f"oidc-provider@{version}"], OidcProviderUnavailable
    )


@dataclass
class RunningProvider:
    issuer: str
    process: asyncio.subprocess.Process


def console_client(redirect_uri: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
    """A confidential web client (client_secret_basic) with one redirect URI."""
    return {
        "client_id": client_id,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }


@contextlib.asynccontextmanager
async def oidc_provider(clients: list[dict[str, Any]]) -> AsyncIterator[RunningProvider]:
    """oidc-provider on a free port with `clients` and ACCOUNTS, stopped on exit."""
    prefix = install_oidc_provider()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OIDC_PREFIX": str(prefix),
        "CLIENTS": orjson.dumps(clients).decode(),
        "ACCOUNTS": orjson.dumps(ACCOUNTS).decode(),
        "DEBUG": "",
    }
    process = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if not line.startswith(b"listening "):
            err = await process.stderr.read() if process.stderr else b""
            raise RuntimeError(f"oidc-provider did not start: {line!r} {err.decode()[-2000:]}")
        yield RunningProvider(line.split()[1].decode(), process)
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(ProcessLookupError):
                await process.wait()


def oidc_config(issuer: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
    """The gateway's auth.oidc for this provider."""
    return {
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": CLIENT_SECRET,
        "scopes": ["openid", "profile", "groups"],
        "role_claim": "groups",
        "roles": ROLES,
        "team_claim": "team",
        "session_ttl_s": 300,  # what the tests leave in the shared Redis goes soon
    }


_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.I)


async def walk(http: aiohttp.ClientSession, url: str, stop: str, login: str) -> str:
    """Follow `url` through the provider's login form as `login` until a redirect to a URL
    starting with `stop`, which is returned (not followed)."""
    for _ in range(12):
        async with http.get(url, allow_redirects=False) as resp:
            body = await resp.text()
            if resp.status in (302, 303):
                assert "Location" in resp.headers, (url, resp.status, body[:300])
                url = urljoin(str(resp.url), resp.headers["Location"])
                if url.startswith(stop):
                    return url
                continue
            found = _FORM.search(body)
            assert resp.status == 200 and found, (resp.status, body[:500])
            action = urljoin(str(resp.url), unescape(found.group(1)))
        form = {"prompt": "login", "login": login, "password": "any"}
        async with http.post(action, data=form, allow_redirects=False) as resp:
            assert resp.status in (302, 303), (resp.status, await resp.text())
            url = urljoin(str(resp.url), resp.headers["Location"])
            if url.startswith(stop):
                return url
    raise AssertionError(f"the sign-in never came back to {stop}")


def new_http() -> aiohttp.ClientSession:
    """A client that keeps cookies of 127.0.0.1 (aiohttp's default jar ignores IP hosts)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(http: aiohttp.ClientSession, gateway_url: str, login: str) -> dict[str, Any]:
    """Sign `login` in to the console (the session cookie lands in `http`'s jar); returns
    GET /ui/session."""
    callback = await walk(http, f"{gateway_url}/ui/login", f"{gateway_url}/ui/callback", login)
    async with http.get(callback, allow_redirects=False) as resp:
        assert resp.status == 303, (resp.status, await resp.text())
    async with http.get(f"{gateway_url}/ui/session") as resp:
        assert resp.status == 200, await resp.text()
        session: dict[str, Any] = await resp.json()
    return session
