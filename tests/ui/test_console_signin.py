"""The console signed in through a real identity provider (oidc-provider) in Chromium: each
person signs in on the provider's login form and lands in the console of their role, which shows
only the views that role may read and only the changes it may make; a change made there is in
the audit log under their name; signing out ends the session on the server. Screenshots of the
signed-in console go to /tmp/signin-<role>.png."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.clients import bearer, call
from tests.support.gateway import ADMIN_KEY, RunningGateway, base_config, free_port, start_gateway
from tests.support.oidc_provider import (
    OidcProviderUnavailable,
    console_client,
    oidc_config,
    oidc_provider,
)
from tests.ui.conftest import is_local

pytestmark = pytest.mark.asyncio(loop_scope="module")
pytest.importorskip("playwright.async_api", reason="Playwright is not installed")

SHOTS = Path("/tmp")
NAV = {
    "admin": ["Overview", "Usage", "Keys", "Teams & budgets", "Users", "Routes", "MCP",
              "Request log", "Audit log"],
    "team_admin": ["Keys", "Team & budget", "Usage", "Request log", "Audit log"],
    "viewer": ["Overview", "Usage", "Keys", "Teams & budgets", "Users", "Routes", "MCP",
               "Request log", "Audit log"],
    "user": ["My usage", "My keys", "Sessions", "My requests"],
}  # fmt: skip


@dataclass
class Site:
    gateway: RunningGateway
    keys: dict[str, dict[str, Any]]

    @property
    def url(self) -> str:
        return self.gateway.url


async def _admin(url: str, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as http:
        status, _, payload = await call(http, method, f"{url}/{path}", ADMIN_KEY, body)
    assert status < 400, (path, status, payload)
    return payload


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    port = free_port()
    try:
        provider = oidc_provider([console_client(f"http://127.0.0.1:{port}/ui/callback")])
        running = await provider.__aenter__()
    except OidcProviderUnavailable as error:
        pytest.skip(str(error))
    try:
        mapping = base_config("http://127.0.0.1:9/v1", tmp_path_factory.mktemp("signin"))
        mapping["auth"]["oidc"] = oidc_config(running.issuer)
        gateway = await start_gateway(mapping, port=port)
        try:
            url = gateway.url
            for team in ("core", "other"):
                body = {"id": team, "max_budget_usd": "5", "budget_period": "monthly"}
                await _admin(url, "POST", "admin/teams", body)
            keys = {
                team: await _admin(url, "POST", "admin/keys",
                                   {"user": user, "team": team, "name": f"{user}-laptop"})
                for team, user in (("core", "alice"), ("other", "bob"))
            }  # fmt: skip
            async with aiohttp.ClientSession() as http:
                for key in keys.values():
                    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
                    async with http.post(f"{url}/v1/chat/completions", json=body,
                                         headers=bearer(key["key"])) as resp:  # fmt: skip
                        assert resp.status == 200
            assert await gateway.services.writer.flush(5.0)
            yield Site(gateway, keys)
        finally:
            await gateway.close()
    finally:
        await provider.__aexit__(None, None, None)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser, site: Site) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" and
            is_local(page.url) and "/ui" in page.url else None)  # fmt: skip
    yield page
    await context.close()
    assert errors == [], errors
    assert [m for m in console if "Content Security Policy" in m] == []


async def sign_in(page: Any, site: Site, login: str) -> str:
    """Through the console's button and the provider's login form; returns the role shown."""
    await page.goto(f"{site.url}/ui")
    await page.click("[data-testid=sso]")
    await page.wait_for_selector("input[name=login]")  # the provider's form, on its origin
    assert not page.url.startswith(site.url)
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any password")
    await page.click("button[type=submit]")
    await page.wait_for_selector("main .view[data-ready]")
    assert page.url.startswith(f"{site.url}/ui")
    role: str = await page.get_attribute("[data-testid=who]", "data-role")
    return role


async def nav(page: Any) -> list[str]:
    return [t.strip() for t in await page.locator("header nav a").all_text_contents()]


async def open_view(page: Any, site: Site, view: str) -> None:
    await page.goto(f"{site.url}/ui#/{view}")
    await page.wait_for_selector(f'main[data-view="{view}"] .view[data-ready="true"]')


async def test_an_admin_signs_in_and_a_change_lands_in_the_audit_log(page, site):
    assert await sign_in(page, site, "ada") == "admin"
    assert await nav(page) == NAV["admin"]
    assert (await page.text_content("[data-testid=who]")).strip() == "admin: ada"
    cookie = next(c for c in await page.context.cookies() if c["name"] == "gw_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not await page.evaluate("document.cookie.includes('gw_console')")
    await open_view(page, site, "keys")
    await page.fill("[data-testid=create-key] input[name=user]", "carol")
    await page.fill("[data-testid=create-key] input[name=team]", "core")
    await page.click("[data-testid=create-key] button[type=submit]")
    await page.wait_for_selector("[data-testid=new-key]")
    await open_view(page, site, "audit")
    rows = page.locator("[data-testid=audit-table] tbody tr")
    assert await rows.count() >= 1
    first = [t.strip() for t in await rows.nth(0).locator("td").all_text_contents()]
    assert first[1:4] == ["ada", "admin", "key.create"]
    await page.screenshot(path=str(SHOTS / "signin-admin.png"), full_page=True)


async def test_a_team_admin_sees_and_changes_only_their_team(page, site):
    assert await sign_in(page, site, "tom") == "team_admin"
    assert await nav(page) == NAV["team_admin"]
    assert (await page.text_content("[data-testid=who]")).strip() == "team admin: tom (core)"
    await open_view(page, site, "keys")
    users = await page.locator('[data-testid=keys-table] td[data-col="user"]').all_text_contents()
    assert set(users) <= {"alice", "carol"} and "alice" in users  # team core's keys only
    assert await page.locator("[data-testid=create-key]").count() == 1  # they manage keys
    team = page.locator("[data-testid=create-key] input[name=team]")
    assert await team.input_value() == "core" and await team.get_attribute("readonly") == ""
    await page.fill("[data-testid=create-key] input[name=user]", "dan")
    await page.click("[data-testid=create-key] button[type=submit]")
    await page.wait_for_selector("[data-testid=new-key]")
    users = await page.locator('[data-testid=keys-table] td[data-col="user"]').all_text_contents()
    assert "dan" in users
    await open_view(page, site, "teams")
    teams = await page.locator('[data-testid=teams-table] td[data-col="team"]').all_text_contents()
    assert teams == ["core"]
    assert await page.locator("[data-testid=create-team]").count() == 0
    await page.fill("[data-testid=team-budget] input[name=team]", "core")
    await page.fill("[data-testid=team-budget] input[name=max_budget_usd]", "12.5")
    await page.select_option("[data-testid=team-budget] select[name=budget_period]", "weekly")
    await page.click("[data-testid=team-budget] button[type=submit]")
    await page.get_by_text("Budget of core saved.").wait_for()
    budget = page.locator('[data-testid=teams-table] td[data-col="budget"]')
    await budget.filter(has_text="$12.50 / weekly").wait_for()  # the table reloads after saving
    assert (await budget.all_text_contents())[0].strip() == "$12.50 / weekly"
    await page.fill("[data-testid=team-budget] input[name=team]", "other")
    await page.click("[data-testid=team-budget] button[type=submit]")
    await page.get_by_text("A team admin sees only team `core`.").wait_for()
    await page.screenshot(path=str(SHOTS / "signin-team-admin.png"), full_page=True)
    await open_view(page, site, "audit")
    first = [t.strip() for t in await page.locator(
        "[data-testid=audit-table] tbody tr").nth(0).locator("td").all_text_contents()]  # fmt: skip
    assert first[1:6] == ["tom", "team_admin", "team.update", "core", "core"]
    assert "max_budget_usd: 5 → 12.5" in first[6]
    await open_view(page, site, "keys")
    await page.screenshot(path=str(SHOTS / "signin-team-admin-keys.png"), full_page=True)


async def test_a_viewer_reads_everything_and_is_offered_no_change(page, site):
    assert await sign_in(page, site, "val") == "viewer"
    assert await nav(page) == NAV["viewer"]
    await open_view(page, site, "keys")
    assert await page.locator("[data-testid=create-key]").count() == 0
    assert await page.get_by_role("button", name="Revoke").count() == 0
    users = await page.locator('[data-testid=keys-table] td[data-col="user"]').all_text_contents()
    assert {"alice", "bob"} <= set(users)
    await open_view(page, site, "teams")
    assert await page.locator("[data-testid=create-team]").count() == 0
    assert await page.locator("[data-testid=team-budget]").count() == 0
    assert await page.get_by_role("button", name="Delete").count() == 0
    await open_view(page, site, "users")
    assert await page.locator("[data-testid=quota-form]").count() == 0
    await page.screenshot(path=str(SHOTS / "signin-viewer.png"), full_page=True)


async def test_a_user_gets_their_own_console_and_signing_out_ends_the_session(page, site):
    assert await sign_in(page, site, "uma") == "user"
    assert await nav(page) == NAV["user"]
    assert "uma" in await page.text_content("main")
    await page.locator("header button", has_text="Sign out").click()
    await page.wait_for_selector("form[data-testid=signin]")
    assert [c for c in await page.context.cookies() if c["name"] == "gw_console"] == []
    answer = await page.request.get(f"{site.url}/ui/session")
    assert answer.status == 401
    await page.reload()
    await page.wait_for_selector("form[data-testid=signin]")  # not signed in again
