"""Browser tests of the console: Debian's Chromium (/usr/bin/chromium) driven headless by
Playwright, against one in-process gateway per module with seeded traffic and sessions.

Every tab records each request the page makes, each dialog, each page error and each console
message; screenshots go to test-output/ui/ (ignored by git)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio

from gateway.store.backends import SqliteStore
from tests.support.clients import bearer, call
from tests.support.gateway import (
    ADMIN_KEY,
    OTHER_KEY,
    USER_KEY,
    RunningGateway,
    base_config,
    start_gateway,
)
from tests.support.mcp_upstreams import mcp_config, mcp_session, servers_up

try:
    from playwright.async_api import Browser, Dialog, Page, async_playwright
except ImportError:  # scripts/test installs it with the dev extras
    async_playwright = None

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "ui"
CHROMIUM = os.environ.get("GATEWAY_CHROMIUM", "/usr/bin/chromium")
XSS = "<img src=x onerror=alert(1)>"
# /admin/spend, /admin/teams and key scopes come with the governance store (SPEC 10).
GOVERNANCE = all(hasattr(SqliteStore, m) for m in ("spend", "active_keys", "list_teams"))
needs_governance = pytest.mark.skipif(
    not GOVERNANCE, reason="needs /admin/spend, /admin/teams and key scopes (SPEC 10)"
)
# Counts every <img> the page ever creates, before any script of the page runs.
WATCH_IMAGES = """
window.__images = 0;
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeName === "IMG" || (n.querySelectorAll && n.querySelectorAll("img").length)) {
      window.__images += 1;
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


@dataclass
class Seeded:
    """The running gateway and what the seed created in it."""

    gateway: RunningGateway
    sessions: dict[str, str] = field(default_factory=dict)  # title -> id
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> created key

    @property
    def url(self) -> str:
        return self.gateway.url

    async def api(self, method: str, path: str, key: str = ADMIN_KEY, body: Any = None) -> Any:
        async with aiohttp.ClientSession() as http:
            status, _, payload = await call(http, method, f"{self.url}/{path}", key, body)
        assert status < 400, (path, status, payload)
        return payload


async def _chat(http: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any]) -> int:
    headers = {**bearer(key), "X-Gateway-Tags": "console,demo"}
    async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def seed(gateway: RunningGateway) -> Seeded:
    """Alice: a two-turn session, a session titled with HTML, one request for a model named
    with HTML (404), one for a model without a provider key (503). Bob: a session of his own.
    With governance, alice is in team `core` (budget $5 a month) and each has a database key
    (alice's scoped to `echo`)."""
    seeded = Seeded(gateway)
    if GOVERNANCE:  # alice's requests count for team `core`
        team = {"id": "core", "name": "Core", "max_budget_usd": "5", "budget_period": "monthly"}
        await seeded.api("POST", "admin/teams", ADMIN_KEY, team)
        await seeded.api("PUT", "admin/users/alice/quota", ADMIN_KEY, {"team": "core"})
    for key, title in [
        (USER_KEY, "Trip to Lisbon"),
        (USER_KEY, XSS),
        (OTHER_KEY, "Bob's secret plan"),
    ]:
        session = await seeded.api("POST", "v1/ai/sessions", key, {"title": title})
        seeded.sessions[title] = session["id"]
    turns = [
        (USER_KEY, "echo", "Trip to Lisbon", "What should I see in Lisbon?", 200),
        (USER_KEY, "echo", "Trip to Lisbon", "And where should I eat?", 200),
        (OTHER_KEY, "echo", "Bob's secret plan", "the secret", 200),
        (USER_KEY, XSS, None, "hi", 404),
        (USER_KEY, "needs-key", None, "hi", 503),
    ]
    async with aiohttp.ClientSession() as http:
        for key, model, title, text, status in turns:
            body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
            if title:
                body["session_id"] = seeded.sessions[title]
            assert await _chat(http, gateway.url, key, body) == status, (model, text)
    if GOVERNANCE:
        for name, user, extra in [
            ("alice-laptop", "alice", {"models": ["echo"]}),
            ("bob-phone", "bob", {}),
        ]:
            body = {"user": user, "name": name, **extra}
            seeded.keys[name] = await seeded.api("POST", "admin/keys", ADMIN_KEY, body)
    assert await gateway.services.writer.flush(5.0)
    return seeded


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    folder = tmp_path_factory.mktemp("console")
    mapping = base_config("http://127.0.0.1:9/v1", folder)
    mapping["models"]["echo"].update(input_price=1.5, output_price=2.0)
    mapping["mcp_servers"] = {"files": mcp_config(None, folder)["files"]}  # stdio
    gateway = await start_gateway(mapping)
    try:
        await servers_up(gateway, ADMIN_KEY, "files")
        async with mcp_session(gateway, USER_KEY) as session:  # one tool call to show
            await session.call_tool("files__reverse", {"text": "lisbon"})
        yield await seed(gateway)
    finally:
        await gateway.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    if async_playwright is None:
        pytest.skip("Playwright is not installed: pip install -e '.[dev]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


def is_local(url: str) -> bool:
    """A request to the gateway on 127.0.0.1 (a blob: URL the page made counts as its origin)."""
    parts = urlsplit(url.removeprefix("blob:"))
    return parts.scheme in ("http", "https") and parts.hostname == "127.0.0.1"


@dataclass
class Tab:
    """One browser tab on the console, and everything it did."""

    page: Page
    base: str
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught page errors
    console: list[str] = field(default_factory=list)  # console errors and warnings

    async def sign_in(self, key: str) -> None:
        await self.page.goto(f"{self.base}/ui")
        await self.page.fill("input[name=key]", key)
        await self.page.click("form[data-testid=signin] button[type=submit]")
        await self.page.wait_for_selector("main .view[data-ready]")

    async def open(self, view: str) -> None:
        """Go to a view and wait until it has rendered (or failed)."""
        await self.page.goto(f"{self.base}/ui#/{view}")
        await self.page.wait_for_selector(f'main[data-view="{view}"] .view[data-ready]')

    async def ready(self) -> str | None:
        return await self.page.get_attribute("main .view", "data-ready")

    async def shot(self, name: str) -> Path:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "Refused to" in m]

    def outside(self) -> list[str]:
        return [u for u in self.requests if not is_local(u)]


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser, console: Seeded) -> AsyncIterator[Tab]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    await context.add_init_script(WATCH_IMAGES)
    page = await context.new_page()
    opened = Tab(page, console.url)
    context.on("request", lambda r: opened.requests.append(r.url))

    async def dismiss(dialog: Dialog) -> None:
        opened.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on(
        "console",
        lambda m: opened.console.append(m.text) if m.type in ("error", "warning") else None,
    )
    try:
        yield opened
    finally:
        await context.close()
    assert opened.outside() == [], "the console reached beyond the gateway"
    assert opened.csp_violations() == [], opened.console
    assert opened.errors == [], opened.errors
