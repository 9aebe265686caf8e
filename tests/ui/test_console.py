"""The console in a real browser: what an admin and a user see matches the JSON API, keys are
shown once and revoked for real, the request log opens a row's details, a user sees only their
own things, values from users render as text, and no request leaves the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest

from tests.support.clients import bearer
from tests.support.gateway import ADMIN_KEY, OTHER_KEY, USER_KEY
from tests.ui.conftest import OUTPUT, XSS, Seeded, Tab, needs_governance

pytestmark = pytest.mark.asyncio(loop_scope="module")
expect = pytest.importorskip(
    "playwright.async_api", reason="Playwright is not installed: pip install -e '.[dev]'"
).expect

ADMIN_VIEWS = ["overview", "usage", "keys", "teams", "users", "routes", "mcp", "requests"]
USER_VIEWS = ["me", "my-keys", "sessions", "my-requests"]
GOVERNED_VIEWS = {"overview", "usage", "keys", "teams", "users", "my-keys"}
RANGES = {"today": 0, "7d": 6, "30d": 29}


async def cell(tab: Tab, selector: str) -> str:
    return (await tab.page.text_content(selector) or "").strip()


async def column(tab: Tab, table: str, col: str) -> list[str]:
    cells = tab.page.locator(f'[data-testid="{table}"] tbody td[data-col="{col}"]')
    return [t.strip() for t in await cells.all_text_contents()]


@needs_governance
async def test_overview_numbers_equal_spend_for_the_same_ranges(tab: Tab, console: Seeded) -> None:
    await tab.sign_in(ADMIN_KEY)
    await tab.open("overview")
    assert await tab.ready() == "true"
    today = datetime.now(UTC).date()
    for name, back in RANGES.items():
        first = today - timedelta(days=back)
        spend = await console.api("GET", f"admin/spend?group_by=day&from={first}&to={today}")
        failed = await console.api("GET", f"admin/errors?from={first}&to={today}")
        requests = sum(r["requests"] for r in spend["data"])
        tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in spend["data"])
        cost = sum((Decimal(r["cost_usd"]) for r in spend["data"]), Decimal(0))
        saved = sum((Decimal(r["cache_savings_usd"]) for r in spend["data"]), Decimal(0))
        errors = sum(r["requests"] for r in failed["data"])
        hits = sum(r["cache_hits"] for r in spend["data"])
        hit_saved = sum((Decimal(r["cache_saved_usd"]) for r in spend["data"]), Decimal(0))
        shown = f'[data-testid=totals] td[data-range="{name}"]'
        assert await cell(tab, f'{shown}[data-metric="requests"]') == f"{requests:,}"
        assert await cell(tab, f'{shown}[data-metric="tokens"]') == f"{tokens:,}"
        assert Decimal((await cell(tab, f'{shown}[data-metric="cost"]')).lstrip("$")) == cost
        assert Decimal((await cell(tab, f'{shown}[data-metric="saved"]')).lstrip("$")) == saved
        assert await cell(tab, f'{shown}[data-metric="errors"]') == f"{errors:,}"
        rate = await cell(tab, f'{shown}[data-metric="cache_hit_rate"]')
        assert rate == f"{100 * hits / requests:.1f}%"
        shown_saved = await cell(tab, f'{shown}[data-metric="cache_saved"]')
        assert Decimal(shown_saved.lstrip("$")) == hit_saved
        # the seed, all of it today: 5 chat requests and 1 MCP tool call
        assert requests == 6 and errors == 2 and cost > 0
    assert await tab.page.locator(".uplot canvas").count() >= 4  # the four daily charts
    await tab.shot("admin-overview")


@needs_governance
async def test_a_scoped_key_is_shown_once_then_revoked_and_refused(
    tab: Tab, console: Seeded
) -> None:
    await tab.sign_in(ADMIN_KEY)
    await tab.open("keys")
    form = tab.page.locator("[data-testid=create-key]")
    await form.locator("input[name=user]").fill("carol")
    await form.locator("input[name=name]").fill("ci runner")
    await form.locator("input[name=models]").fill("echo")
    await form.locator("input[name=rpm]").fill("30")
    await form.locator("button[type=submit]").click()
    shown = tab.page.locator("[data-testid=new-key]")
    await shown.wait_for()
    key = (await shown.text_content() or "").strip()
    assert key.startswith("sk-gw-") and len(key) > 40
    await tab.shot("admin-keys-created")

    # The scopes typed in the form are the key's scopes, and the key works.
    listed = await console.api("GET", "admin/keys?user=carol")
    saved = next(k for k in listed["data"] if k["key_prefix"] == key[:12])
    assert (saved["name"], saved["models"], saved["rpm"]) == ("ci runner", ["echo"], 30)
    row = tab.page.locator("[data-testid=keys-table] tr", has_text=key[:12])
    assert "models: echo · rpm 30" in (await row.text_content() or "")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{console.url}/v1/models", headers=bearer(key)) as resp:
            assert resp.status == 200

        # Shown once: the key is in no later page, and nowhere in what the page stored.
        await tab.open("teams")
        await tab.open("keys")
        assert key not in await tab.page.content()
        stored = await tab.page.evaluate("JSON.stringify(sessionStorage)")
        assert key not in stored and key[:12] in await tab.page.content()

        await row.get_by_role("button", name="Revoke").click()
        await row.get_by_role("button", name="Confirm revoke").click()
        await tab.page.get_by_text(f"Revoked {key[:12]}").wait_for()
        await expect(row).to_have_count(0)  # revoked keys are hidden unless asked for
        async with http.get(f"{console.url}/v1/models", headers=bearer(key)) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "invalid_api_key"


@needs_governance
async def test_teams_show_spend_against_budget(tab: Tab, console: Seeded) -> None:
    await tab.sign_in(ADMIN_KEY)
    await tab.open("teams")
    today = datetime.now(UTC).date()
    spend = await console.api(
        "GET", f"admin/spend?group_by=team&from={today.replace(day=1)}&to={today}"
    )
    spent = next(Decimal(r["cost_usd"]) for r in spend["data"] if r["group"] == "core")
    assert spent > 0
    row = tab.page.locator("[data-testid=teams-table] tr", has_text="Core")
    text = lambda col: row.locator(f'td[data-col="{col}"]').text_content()  # noqa: E731
    assert await text("budget") == "$5.00 / monthly"
    assert Decimal((await text("spent") or "").lstrip("$")) == spent
    assert Decimal((await text("left") or "").lstrip("$")) == Decimal(5) - spent
    assert await row.locator("meter").count() == 1

    form = tab.page.locator("[data-testid=create-team]")
    await form.locator("input[name=id]").fill("research")
    await form.locator("input[name=max_budget_usd]").fill("0.25")
    await form.locator("select[name=budget_period]").select_option("daily")
    await form.locator("button[type=submit]").click()
    await tab.page.get_by_text("Team research created.").wait_for()
    new_row = tab.page.locator("[data-testid=teams-table] tr", has_text="research")
    await new_row.wait_for()
    assert await new_row.locator('td[data-col="budget"]').text_content() == "$0.25 / daily"
    assert (await console.api("GET", "admin/teams/research"))["budget_period"] == "daily"
    await tab.shot("admin-teams-budgets")


@needs_governance
async def test_a_quota_override_is_saved_from_the_users_view(tab: Tab, console: Seeded) -> None:
    await tab.sign_in(ADMIN_KEY)
    await tab.open("users")
    assert {"alice", "bob"} <= set(await column(tab, "users-table", "user"))
    await tab.page.locator("[data-testid=users-table] tr", has_text="bob").click()
    form = tab.page.locator("[data-testid=quota-form]")
    assert await form.locator("input[name=uid]").input_value() == "bob"
    await form.locator("input[name=rpm]").fill("900")
    await form.locator("button[type=submit]").click()
    result = tab.page.locator("[data-testid=quota-result] dl")
    await result.wait_for()
    assert await result.locator('dd[data-field="rpm"]').text_content() == "900"
    assert await result.locator('dd[data-field="effective rpm"]').text_content() == "900"


async def test_a_request_log_row_opens_its_details(tab: Tab, console: Seeded) -> None:
    await tab.sign_in(ADMIN_KEY)
    await tab.open("requests")
    filters = tab.page.locator("[data-testid=log-filters]")
    await filters.locator("input[name=user]").fill("alice")
    await filters.locator("select[name=status]").select_option("error")
    await filters.locator("button[type=submit]").click()
    # (A locator, not wait_for_function: the console's CSP refuses the eval that one uses.)
    await expect(tab.page.locator("[data-testid=log-table] tbody tr.clickable")).to_have_count(2)
    assert await column(tab, "log-table", "model") == ["needs-key", XSS]
    await tab.page.locator("[data-testid=log-table] tr", has_text="needs-key").click()
    panel = tab.page.locator("[data-testid=request-details]")
    await panel.wait_for()
    field = lambda name: panel.locator(f'dd[data-field="{name}"]')  # noqa: E731
    expected = await console.api(
        "GET", f"admin/requests/{await field('id').text_content()}", ADMIN_KEY
    )
    assert await field("model").text_content() == "needs-key"
    assert await field("status").text_content() == "rejected"
    assert await field("HTTP status").text_content() == "503"
    assert "provider_not_configured" in (await field("error").text_content() or "")
    assert await field("user").text_content() == expected["user"] == "alice"
    assert await field("attempts").text_content() == str(expected["attempts"])
    assert await field("latency").text_content() == f"{expected['latency_ms']:,} ms"
    assert await field("tags").text_content() == "console, demo"
    await tab.shot("admin-request-details")


async def test_a_user_sees_only_their_own_usage_keys_and_sessions(
    tab: Tab, console: Seeded
) -> None:
    key = console.keys["alice-laptop"]["key"] if console.keys else USER_KEY
    await tab.sign_in(key)
    assert await tab.page.text_content("header .who") == "user: alice"
    nav = await tab.page.locator("header nav a").all_text_contents()
    assert nav == ["My usage", "My keys", "Sessions", "My requests"]  # no admin view

    await tab.open("me")
    assert await tab.page.text_content('[data-testid=my-usage] dd[data-field="user"]') == "alice"
    usage = await console.api("GET", "v1/ai/usage", USER_KEY)
    assert await column(tab, "my-models", "model") == [r["model"] for r in usage["by_model"]]

    if console.keys:
        await tab.open("my-keys")
        prefixes = await column(tab, "my-keys", "prefix")
        assert prefixes == [console.keys["alice-laptop"]["key_prefix"]]
        assert console.keys["bob-phone"]["key_prefix"] not in await tab.page.content()

    await tab.open("sessions")
    titles = await column(tab, "sessions-table", "title")
    assert sorted(titles) == sorted(["Trip to Lisbon", XSS])
    assert "Bob's secret plan" not in await tab.page.content()
    await tab.page.locator("[data-testid=sessions-table] tr", has_text="Trip to Lisbon").click()
    await tab.page.locator("[data-testid=messages] li").nth(3).wait_for()
    contents = await tab.page.locator("[data-testid=messages] pre").all_text_contents()
    assert contents[0] == "What should I see in Lisbon?" and len(contents) == 4
    await tab.shot("user-session")

    await tab.open("my-requests")
    mine = await console.api("GET", "v1/ai/requests", USER_KEY)
    models = await column(tab, "log-table", "model")
    assert models == [r["model"] for r in mine["data"]] and "the secret" not in models
    assert await tab.page.locator('[data-testid=log-table] td[data-col="user"]').count() == 0


async def test_values_from_users_render_as_text(tab: Tab, console: Seeded) -> None:
    await tab.sign_in(ADMIN_KEY)
    await tab.open("requests")
    assert XSS in await column(tab, "log-table", "model")
    await tab.page.locator("[data-testid=log-table] tr", has_text=XSS).click()
    model = tab.page.locator('[data-testid=request-details] dd[data-field="model"]')
    await model.wait_for()
    assert await model.text_content() == XSS
    await tab.page.locator("header button", has_text="Sign out").click()

    await tab.sign_in(USER_KEY)
    await tab.open("sessions")
    await tab.page.locator("[data-testid=sessions-table] tr", has_text=XSS).click()
    title = tab.page.locator("[data-testid=conversation-title]")
    await title.wait_for()
    assert await title.text_content() == XSS
    await tab.open("me")
    assert XSS in await column(tab, "my-models", "model")

    assert tab.dialogs == []  # the onerror handler never ran
    assert await tab.page.evaluate("window.__images") == 0  # no <img> was ever created
    assert await tab.page.locator("img").count() == 0


@pytest.mark.parametrize(
    "role,view",
    [("admin", v) for v in ADMIN_VIEWS] + [("user", v) for v in USER_VIEWS],
)
async def test_every_view_renders_from_the_gateway_alone(
    tab: Tab, console: Seeded, role: str, view: str
) -> None:
    if view in GOVERNED_VIEWS and not console.keys:
        pytest.skip("this view reads /admin/spend, /admin/teams or key scopes (SPEC 10)")
    await tab.sign_in(ADMIN_KEY if role == "admin" else OTHER_KEY)
    await tab.open(view)
    assert await tab.ready() == "true", await tab.page.text_content("main .view")
    if view == "routes":  # refreshed live: wait for a second refresh of the table
        await tab.page.wait_for_selector("[data-testid=routes-updated][data-refreshes='2']")
        assert await column(tab, "routes-table", "model") == ["fake-model", "needs-key", "echo"]
    if view == "mcp":  # the stdio server, its tools and the seeded call
        await tab.page.wait_for_selector("[data-testid=mcp-updated][data-refreshes='2']")
        assert await column(tab, "mcp-servers", "name") == ["files"]
        assert await column(tab, "mcp-servers", "state") == ["up"]
        assert await column(tab, "mcp-tools", "tool") == [
            "files__whoami",
            "files__reverse",
            "files__nap",
        ]
        assert await column(tab, "mcp-calls", "tool") == ["files__reverse"]
        assert await column(tab, "mcp-calls", "status") == ["ok"]
    if role == "user":
        assert "alice" not in await tab.page.text_content("main")  # bob's console
    path = await tab.shot(f"{role}-{view}")
    assert path.is_file() and path.parent == OUTPUT
    assert tab.outside() == [] and tab.csp_violations() == [] and tab.errors == []
    assert any(u.endswith("/ui/uPlot.iife.min.js") for u in tab.requests)


async def test_sign_in_refuses_an_unknown_key(tab: Tab) -> None:
    await tab.page.goto(f"{tab.base}/ui")
    await tab.page.fill("input[name=key]", "sk-not-a-gateway-key")
    await tab.page.click("form[data-testid=signin] button[type=submit]")
    await tab.page.get_by_text("This key was refused.").wait_for()
    assert await tab.page.evaluate("sessionStorage.length") == 0
    assert await tab.page.context.cookies() == []
    assert all("sk-not-a-gateway-key" not in u for u in tab.requests)  # never in a URL


async def test_the_key_lives_in_session_storage_only(tab: Tab) -> None:
    await tab.sign_in(OTHER_KEY)
    stored = await tab.page.evaluate("Object.values(sessionStorage)")
    assert OTHER_KEY in stored
    assert await tab.page.evaluate("localStorage.length") == 0
    assert await tab.page.context.cookies() == []
    assert all(OTHER_KEY not in u for u in tab.requests)
    await tab.page.locator("header button", has_text="Sign out").click()
    await tab.page.wait_for_selector("form[data-testid=signin]")
    assert await tab.page.evaluate("sessionStorage.length") == 0
