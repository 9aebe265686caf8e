"""The JSON routes the console reads, on a live gateway (SQLite and PostgreSQL): the admin's
request-log search with every filter and keyset paging, one request's details, failures per day,
a user's own requests and keys; and the /ui page's files and Content-Security-Policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import aiohttp
import pytest

from gateway.store.backends import SqliteStore
from tests.support.clients import bearer, call
from tests.support.gateway import ADMIN_KEY, OTHER_KEY, USER_KEY, base_config, gateway_on

XSS = "<img src=x onerror=alert(1)>"
needs_governance = pytest.mark.skipif(
    not hasattr(SqliteStore, "active_keys"),
    reason="key scopes need the governance store (SPEC 10), which lands with its own branch",
)


def echo_config(tmp_path) -> dict:
    mapping = base_config("http://127.0.0.1:9/v1", tmp_path)
    mapping["models"]["echo"].update(input_price=1.5, output_price=2.0)
    return mapping


async def chat(http, gateway, key, model, request_id, tags=None) -> int:
    headers = {**bearer(key), "X-Request-Id": request_id}
    if tags:
        headers["X-Gateway-Tags"] = tags
    body = {"model": model, "messages": [{"role": "user", "content": f"hello {request_id}"}]}
    async with http.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers) as r:
        await r.read()
        return r.status


async def traffic(http, gateway) -> list[str]:
    """Six requests, oldest first: four answered, two refused (unknown model, no provider key)."""
    plan = [
        (USER_KEY, "echo", "req-a1", "ui,demo", 200),
        (OTHER_KEY, "echo", "req-b1", None, 200),
        (USER_KEY, "echo", "req-a2", None, 200),
        (USER_KEY, XSS, "req-a3", None, 404),
        (USER_KEY, "needs-key", "req-a4", None, 503),
        (USER_KEY, "echo", "req-a5", None, 200),
    ]
    for key, model, rid, tags, status in plan:
        assert await chat(http, gateway, key, model, rid, tags) == status, rid
    return [rid for _, _, rid, _, _ in reversed(plan)]


async def ids(http, url: str, key: str = ADMIN_KEY) -> list[str]:
    status, _, page = await call(http, "GET", url, key)
    assert status == 200, page
    return [r["id"] for r in page["data"]]


async def test_request_log_search_filters_pages_and_details(tmp_path, database) -> None:
    async with (
        gateway_on(echo_config(tmp_path), database) as gateway,
        aiohttp.ClientSession() as http,
    ):
        newest_first = await traffic(http, gateway)
        today = datetime.now(UTC).date()
        admin = f"{gateway.url}/admin/requests"
        status, _, page = await call(http, "GET", admin, ADMIN_KEY)
        assert status == 200 and page["object"] == "list" and page["has_more"] is False
        assert [r["id"] for r in page["data"]] == newest_first

        # Keyset pages: each page continues where the last ended, and the last says so.
        walked, before = [], ""
        while True:
            status, _, page = await call(http, "GET", f"{admin}?limit=4&before={before}", ADMIN_KEY)
            walked += [r["id"] for r in page["data"]]
            if not page["has_more"]:
                break
            before = page["data"][-1]["id"]
        assert walked == newest_first
        assert await ids(http, f"{admin}?before=no-such-request") == []
        assert await ids(http, f"{admin}?from={today}&to={today - timedelta(days=1)}") == []

        alice = [i for i in newest_first if i.startswith("req-a")]
        expected = {
            "user=bob": ["req-b1"],
            "user=alice": alice,
            "model=echo": ["req-a5", "req-a2", "req-b1", "req-a1"],
            "status=error": ["req-a4", "req-a3"],
            "status=rejected": ["req-a4", "req-a3"],
            "status=ok": ["req-a5", "req-a2", "req-b1", "req-a1"],
            "status=client_closed": [],
            "endpoint=chat": newest_first,
            "endpoint=embeddings": [],
            "user=alice&model=echo&status=ok": ["req-a5", "req-a2", "req-a1"],
            f"from={today}&to={today}": newest_first,
            f"to={today - timedelta(days=1)}": [],
            f"from={(datetime.now(UTC) + timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}": [],
            f"from={int(datetime.now(UTC).timestamp()) - 3600}": newest_first,
        }
        for query, want in expected.items():
            assert await ids(http, f"{admin}?{query}") == want, query

        # One row with every column; the list and the details agree.
        status, _, page = await call(http, "GET", f"{admin}?user=alice&model=echo", ADMIN_KEY)
        first = page["data"][-1]
        assert first["id"] == "req-a1" and first["tags"] == ["ui", "demo"]
        assert first["provider"] == "echo" and first["status"] == "ok"
        assert first["total_tokens"] == first["prompt_tokens"] + first["completion_tokens"] > 0
        assert first["cost_usd"] != "0.000000000" and "metadata" in first
        status, _, one = await call(http, "GET", f"{admin}/req-a1", ADMIN_KEY)
        assert status == 200 and one == first
        status, _, refused = await call(http, "GET", f"{admin}/req-a4", ADMIN_KEY)
        assert refused["status_code"] == 503 and "provider_not_configured" in refused["error"]
        status, _, missing = await call(http, "GET", f"{admin}/nope", ADMIN_KEY)
        assert status == 404 and missing["error"]["param"] == "request_id"

        status, _, errors = await call(
            http, "GET", f"{gateway.url}/admin/errors?from={today}&to={today}", ADMIN_KEY
        )
        assert status == 200 and errors["from"] == errors["to"] == str(today)
        assert errors["data"] == [{"day": str(today), "status": "rejected", "requests": 2}]
        inverted = f"{gateway.url}/admin/errors?from={today}&to={today - timedelta(days=1)}"
        status, _, errors = await call(http, "GET", inverted, ADMIN_KEY)
        assert status == 200 and errors["data"] == []


async def test_a_user_searches_only_their_own_requests(tmp_path, database) -> None:
    async with (
        gateway_on(echo_config(tmp_path), database) as gateway,
        aiohttp.ClientSession() as http,
    ):
        await traffic(http, gateway)
        own = f"{gateway.url}/v1/ai/requests"
        assert await ids(http, own, OTHER_KEY) == ["req-b1"]
        assert await ids(http, f"{own}?user=alice", OTHER_KEY) == ["req-b1"]  # no such filter
        assert await ids(http, f"{own}?status=error", USER_KEY) == ["req-a4", "req-a3"]
        status, _, page = await call(http, "GET", own, USER_KEY)
        assert {r["user"] for r in page["data"]} == {"alice"}
        assert all("metadata" not in r for r in page["data"])
        for url, key in [(own, ADMIN_KEY), (f"{gateway.url}/admin/requests", USER_KEY)]:
            status, _, body = await call(http, "GET", url, key)
            assert status == 401 and body["error"]["code"] == "invalid_api_key", url


@pytest.mark.parametrize(
    "query,param",
    [
        ("status=bogus", "status"),
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        (f"model={'m' * 257}", "model"),
    ],
)
async def test_bad_search_parameters_are_400s(gateway, query, param) -> None:
    async with aiohttp.ClientSession() as http:
        status, _, body = await call(
            http, "GET", f"{gateway.url}/admin/requests?{query}", ADMIN_KEY
        )
    assert status == 400 and body["error"]["param"] == param, body
    assert body["error"]["code"] in ("invalid_value", "invalid_type")


async def test_bad_error_report_dates_are_400s(gateway) -> None:
    async with aiohttp.ClientSession() as http:
        for query, param in [("from=2026-1-1", "from"), ("to=2026-02-30", "to")]:
            status, _, body = await call(
                http, "GET", f"{gateway.url}/admin/errors?{query}", ADMIN_KEY
            )
            assert status == 400 and body["error"]["param"] == param, query


@needs_governance
async def test_a_user_lists_their_own_keys_never_the_keys_themselves(tmp_path, database) -> None:
    async with (
        gateway_on(echo_config(tmp_path), database) as gateway,
        aiohttp.ClientSession() as http,
    ):
        created = {}
        for user, name, extra in [
            ("carol", "laptop", {"models": ["echo"], "rpm": 7, "metadata": {"cc": "r&d"}}),
            ("carol", "ci", {}),
            ("dave", "other", {}),
        ]:
            body = {"user": user, "name": name, **extra}
            status, _, key = await call(http, "POST", f"{gateway.url}/admin/keys", ADMIN_KEY, body)
            assert status == 201, key
            created[name] = key
        status, _, _ = await call(
            http, "DELETE", f"{gateway.url}/admin/keys/{created['ci']['id']}", ADMIN_KEY
        )
        assert status == 200
        status, _, mine = await call(
            http, "GET", f"{gateway.url}/v1/ai/keys", created["laptop"]["key"]
        )
        assert status == 200 and mine["user"] == "carol"
        assert mine["current_key_id"] == created["laptop"]["id"]
        by_name = {k["name"]: k for k in mine["data"]}
        assert set(by_name) == {"laptop", "ci"}
        assert by_name["laptop"]["current"] is True and by_name["ci"]["current"] is False
        assert by_name["laptop"]["models"] == ["echo"] and by_name["laptop"]["rpm"] == 7
        assert by_name["ci"]["status"] == "revoked"
        text = str(mine)
        for secret in (created["laptop"]["key"], created["ci"]["key"], "key_hash", "r&d"):
            assert secret not in text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v and tag != "a"]
        if tag == "style" or "style" in found or any(k.startswith("on") for k in found):
            self.inline.append(tag)
        if tag == "script" and not found.get("src"):
            self.inline.append("script")


async def test_console_files_are_local_with_a_strict_csp(gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/ui") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            csp = resp.headers["Content-Security-Policy"]
            page = await resp.text()
        assert "default-src 'self'" in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        parsed = _Page()
        parsed.feed(page)
        assert parsed.inline == [], "no inline script, style or handler"
        assert "ui/app.js" in parsed.refs and "ui/uPlot.iife.min.js" in parsed.refs
        modules = []
        for ref in parsed.refs:
            assert not re.match(r"^(https?:)?//|^data:", ref), ref
            async with http.get(f"{gateway.url}/{ref}") as resp:
                assert resp.status == 200, ref
                assert resp.headers["Content-Security-Policy"] == csp
                if ref.endswith(".js"):
                    modules.append(await resp.text())
        # Every ES module import is a relative file of the console, served as JavaScript.
        seen = set()
        while modules:
            for spec in re.findall(r'\bfrom "([^"]+)";', modules.pop()):
                assert spec.startswith("./"), spec
                if spec not in seen:
                    seen.add(spec)
                    async with http.get(f"{gateway.url}/ui/{spec[2:]}") as resp:
                        assert resp.status == 200 and resp.content_type == "text/javascript"
                        modules.append(await resp.text())
        assert len(seen) >= 10
        for name in ("nope.js", "..%2Fconsole.py", "index.html", "README.md"):
            async with http.get(f"{gateway.url}/ui/{name}") as resp:
                assert resp.status == 404, name
