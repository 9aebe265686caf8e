"""Schemathesis against a live gateway (SQLite + memory limiter, PostgreSQL + Redis), then a look
at what the fuzzing left behind: nothing a later normal request or a fresh user can notice."""

from __future__ import annotations

import collections
import json
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from gateway.openapi import build_document
from tests.api.fuzzing import FuzzReport, run_schemathesis
from tests.support.clients import call
from tests.support.gateway import (
    ADMIN_KEY,
    OTHER_KEY,
    USER_KEY,
    RunningGateway,
    base_config,
    gateway_on,
)

MAX_EXAMPLES = 25  # per operation and phase; about 2000 requests per backend
SEED = int(os.environ.get("GATEWAY_FUZZ_SEED", "20261124"))
FRESH_RPM = 5
HELLO = [{"role": "user", "content": "hello after fuzzing"}]
LEGACY = "gpt-3.5-turbo-instruct"  # the document's example model for /v1/completions
PROXIED = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}


def fuzz_config(tmp_path, database: str, legacy_url: str) -> dict:
    """Echo, and for legacy completions (which only openai/azure serve) the fake OpenAI upstream;
    neither fails upstream. Finite but generous limits for the fuzzer."""
    mapping = base_config("http://127.0.0.1:9/v1", tmp_path, redis=database_redis(database))
    legacy = {**mapping["providers"]["fake"], "base_url": legacy_url}
    mapping["providers"] = {"echo": {"type": "echo"}, "legacy": legacy}
    mapping["models"] = {
        "echo": {"provider": "echo", "model": "echo"},
        "echo/*": {"provider": "echo"},
        LEGACY: {"provider": "legacy", "model": LEGACY},
    }
    mapping["quota"]["tiers"] = {
        "free": {"rpm": FRESH_RPM, "tpd": 1000},
        "pro": {"rpm": 1_000_000, "tpd": 10**12},  # finite, so every rate-limit header shows
    }
    return mapping


def database_redis(database: str) -> str:
    return "redis" if database == "postgres" else "memory"


@pytest.fixture
async def fuzzed(database, tmp_path, upstream) -> AsyncIterator[RunningGateway]:
    async with gateway_on(fuzz_config(tmp_path, database, upstream.base_url), database) as running:
        yield running


async def request_log(gateway: RunningGateway) -> list[tuple[str, str, int, str]]:
    """(uid, status, status_code, endpoint) of every ai_request_log row, read from the database."""
    await gateway.services.writer.flush(5.0)
    url = gateway.config.database.url
    query = "SELECT uid, status, status_code, endpoint FROM ai_request_log"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return [tuple(row) for row in db.execute(query)]
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(query)]
    finally:
        await conn.close()


async def all_sessions(http: aiohttp.ClientSession, gateway: RunningGateway, key: str) -> list:
    sessions, after = [], ""
    while True:
        status, _, page = await call(
            http, "GET", f"{gateway.base_url}/ai/sessions?limit=100&after={after}", key
        )
        assert status == 200, page
        sessions += page["data"]
        if not page["has_more"]:
            return sessions
        after = page["data"][-1]["id"]


async def test_fuzz_every_operation_then_state_is_clean(fuzzed, tmp_path, capsys):
    code, output, report = await run_schemathesis(
        fuzzed.url, tmp_path, max_examples=MAX_EXAMPLES, seed=SEED
    )
    assert code == 0, f"schemathesis found problems (seed {SEED}):\n{output[-12000:]}"
    documented = {
        f"{method.upper()} {path}"
        for path, item in build_document(tiers=fuzzed.config.quota.tiers)["paths"].items()
        for method in item
        if method != "parameters"
    }
    exercised = {label for label, n in report.cases_by_operation.items() if n}
    # schemathesis never calls the schema's own URL; test_openapi.py covers /openapi.json
    assert documented - exercised == {"GET /openapi.json"}, documented - exercised
    assert not any(status >= 500 for status in report.statuses), report.statuses
    with capsys.disabled():
        print(
            f"\n[fuzz {fuzzed.config.database.url.split(':')[0]}] seed {SEED}: "
            f"{len(exercised & documented)}/{len(documented)} operations + stateful, "
            f"{sum(report.cases_by_operation.values())} cases, "
            f"{len(report.exchanges)} requests, statuses {dict(sorted(report.statuses.items()))}"
        )
    await check_state_after(fuzzed, report)


async def check_state_after(gateway: RunningGateway, report: FuzzReport) -> None:
    """What the fuzzer did through the API is all that changed, and normal use still works."""
    async with aiohttp.ClientSession() as http:
        await check_sessions(http, gateway, report)
        await check_keys(http, gateway, report)
        await check_request_log(gateway, report)
        await check_normal_use(http, gateway, report)


async def check_sessions(http, gateway: RunningGateway, report: FuzzReport) -> None:
    created = {s["id"] for s in report.json_bodies("POST", "/v1/ai/sessions", 201)}
    deleted = {e.path.rsplit("/", 1)[1] for e in report.matching("DELETE", "/v1/ai/sessions/", 204)}
    assert deleted <= created
    sessions = await all_sessions(http, gateway, USER_KEY)
    assert {s["id"] for s in sessions} == created - deleted
    for session in sessions:  # counts agree with the messages actually stored
        status, _, page = await call(
            http, "GET", f"{gateway.base_url}/ai/sessions/{session['id']}/messages?limit=100",
            USER_KEY,
        )  # fmt: skip
        assert status == 200 and len(page["data"]) == session["message_count"], session
    assert await all_sessions(http, gateway, OTHER_KEY) == []  # the fuzzer only spoke as alice


async def check_keys(http, gateway: RunningGateway, report: FuzzReport) -> None:
    created = {k["id"] for k in report.json_bodies("POST", "/admin/keys", 201)}
    revoked = sum(
        json.loads(e.body)["revoked"] for e in report.matching("DELETE", "/admin/keys/", 200)
    )
    status, _, listed = await call(http, "GET", f"{gateway.url}/admin/keys", ADMIN_KEY)
    assert status == 200
    assert {k["id"] for k in listed["data"]} == created
    assert sum(k["status"] == "revoked" for k in listed["data"]) == revoked


async def check_request_log(gateway: RunningGateway, report: FuzzReport) -> None:
    rows = await request_log(gateway)
    assert not [r for r in rows if r[2] >= 500], "a fuzzed request was logged as a 5xx"
    for uid, status, status_code, _ in rows:
        assert uid == "alice", uid
        expected = "ok" if status_code == 200 else "rejected"  # no upstream here ever fails
        assert status == expected, (status, status_code)
    # one row per authenticated proxied request, with its endpoint; no row for any other request
    sent = collections.Counter(
        PROXIED[e.path]
        for e in report.exchanges
        if e.method == "POST" and e.path in PROXIED and e.status != 401
    )
    assert collections.Counter(row[3] for row in rows) == sent
    served = {endpoint for path, endpoint in PROXIED.items()}
    assert set(sent) == served  # the fuzzer got past auth on every one


async def check_normal_use(http, gateway: RunningGateway, report: FuzzReport) -> None:
    touched = {e.path.split("/")[3] for e in report.matching("PUT", "/admin/users/", 200)}
    body = {"model": "echo", "messages": HELLO}
    for key, user in ((USER_KEY, "alice"), (OTHER_KEY, "bob")):
        status, _, reply = await call(
            http, "POST", f"{gateway.base_url}/chat/completions", key, body
        )
        if user in touched:  # the fuzzer may legitimately have set alice's quota to anything
            assert status in (200, 429), reply
            continue
        assert status == 200, reply
        assert reply["choices"][0]["message"]["content"] == HELLO[0]["content"]
    fresh = f"fresh-{uuid.uuid4().hex[:8]}"
    status, _, key = await call(
        http, "POST", f"{gateway.url}/admin/keys", ADMIN_KEY, {"user": fresh}
    )
    assert status == 201, key
    status, _, usage = await call(http, "GET", f"{gateway.base_url}/ai/usage", key["key"])
    assert status == 200 and usage["tier"] == "free", usage
    assert usage["tokens"]["used"] == 0 and usage["by_model"] == []
    assert usage["requests"]["remaining"] == usage["requests"]["limit"] == FRESH_RPM
    status, headers, reply = await call(
        http, "POST", f"{gateway.base_url}/chat/completions", key["key"], body
    )
    assert status == 200, reply
    assert headers["x-ratelimit-limit-requests"] == str(FRESH_RPM)
    assert headers["x-ratelimit-remaining-requests"] == str(FRESH_RPM - 1)
