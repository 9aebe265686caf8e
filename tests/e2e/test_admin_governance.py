"""The governance admin API over HTTP (SPEC 10): key scopes, teams, user budgets, spend; every bad
value a 400 naming its field that changes nothing; and `gateway keys create` with scope options."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.store import RequestLogRow
from gateway.store.backends import SqliteStore
from gateway.store.base import Team
from tests.e2e.test_keys import gateway_cli
from tests.support.clients import bearer, call
from tests.support.gateway import ADMIN_KEY, RunningGateway

CORE = {
    "id": "core", "name": "Core", "max_budget_usd": 100, "budget_period": "monthly",
    "models": ["echo"], "rpm": 60, "tpd": 1000,
}  # fmt: skip


async def admin(
    gateway: RunningGateway, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        status, _, payload = await call(http, method, f"{gateway.url}{path}", ADMIN_KEY, body)
    return status, payload


def rows(gateway: RunningGateway, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(gateway.config.database.url.removeprefix("sqlite:///")) as db:
        return [tuple(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY 1")]


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


# -- keys ---------------------------------------------------------------------------------------


async def test_keys_carry_scopes_set_at_creation_and_by_patch(gateway):
    assert (await admin(gateway, "POST", "/admin/teams", CORE))[0] == 201
    status, made = await admin(
        gateway, "POST", "/admin/keys",
        {"user": "dave", "name": "ci", "models": ["echo", "fake/*", "echo"],
         "expires_at": "2030-01-01T00:00:00+02:00", "rpm": 10, "tpd": 5000,
         "max_budget_usd": "12.50", "budget_period": "weekly", "team": "core",
         "metadata": {"env": "ci", "owner": {"name": "dave"}}},
    )  # fmt: skip
    assert status == 201, made
    assert made["key"].startswith("sk-gw-")
    assert (made["models"], made["expires_at"]) == (["echo", "fake/*"], unix("2029-12-31T22:00Z"))
    assert (made["rpm"], made["tpd"], made["max_budget_usd"], made["budget_period"]) == (
        10, 5000, "12.5", "weekly"
    )  # fmt: skip
    assert (made["team"], made["metadata"]) == ("core", {"env": "ci", "owner": {"name": "dave"}})

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.url}/admin/keys?user=dave", headers=bearer(ADMIN_KEY)) as resp,
    ):
        raw = await resp.text()
    assert made["key"] not in raw, "the key is shown once, at creation"
    listed = (await admin(gateway, "GET", "/admin/keys?user=dave"))[1]["data"]
    assert listed == [{k: v for k, v in made.items() if k != "key"}]

    # PATCH sets what it names, null clears, the rest stays.
    status, patched = await admin(
        gateway, "PATCH", f"/admin/keys/{made['id']}",
        {"models": None, "rpm": 20, "metadata": None, "expires_at": 1893456000, "name": "ci-2"},
    )  # fmt: skip
    assert status == 200, patched
    assert (patched["models"], patched["rpm"], patched["metadata"]) == (None, 20, None)
    assert (patched["expires_at"], patched["name"]) == (1893456000, "ci-2")
    assert (patched["tpd"], patched["max_budget_usd"], patched["team"]) == (5000, "12.5", "core")
    status, patched = await admin(
        gateway, "PATCH", f"/admin/keys/{made['id']}",
        {"max_budget_usd": 0.1, "budget_period": "daily", "team": None},
    )  # fmt: skip
    assert (patched["max_budget_usd"], patched["budget_period"], patched["team"]) == (
        "0.1", "daily", None
    )  # fmt: skip
    assert (await admin(gateway, "GET", "/admin/keys?user=dave"))[1]["data"] == [patched]
    (stored,) = await gateway.services.store.list_keys("dave")
    assert stored.max_budget_usd == Decimal("0.1") and stored.models is None

    for missing in ("999999", made["key_prefix"], "nope"):
        status, error = await admin(gateway, "PATCH", f"/admin/keys/{missing}", {"rpm": 1})
        assert (status, error["error"]["param"]) == (404, "key"), missing


# -- teams --------------------------------------------------------------------------------------


async def test_teams_are_created_read_changed_and_deleted(gateway):
    status, core = await admin(gateway, "POST", "/admin/teams", CORE)
    assert status == 201, core
    assert (core["id"], core["object"], core["name"], core["max_budget_usd"]) == (
        "core", "team", "Core", "100"
    )  # fmt: skip
    assert (core["budget_period"], core["models"], core["rpm"], core["tpd"]) == (
        "monthly", ["echo"], 60, 1000
    )  # fmt: skip
    status, error = await admin(gateway, "POST", "/admin/teams", {"id": "core"})
    assert (status, error["error"]["code"], error["error"]["param"]) == (409, "team_exists", "id")
    assert (await admin(gateway, "POST", "/admin/teams", {"id": "ops"}))[0] == 201
    listed = (await admin(gateway, "GET", "/admin/teams"))[1]
    assert [t["id"] for t in listed["data"]] == ["core", "ops"] and listed["object"] == "list"
    assert (await admin(gateway, "GET", "/admin/teams/core")) == (200, core)

    status, changed = await admin(
        gateway, "PATCH", "/admin/teams/core",
        {"name": "Core 2", "max_budget_usd": None, "budget_period": None, "rpm": None},
    )  # fmt: skip
    assert status == 200, changed
    assert (changed["name"], changed["max_budget_usd"], changed["rpm"]) == ("Core 2", None, None)
    assert (changed["models"], changed["tpd"], changed["created_at"]) == (
        ["echo"], 1000, core["created_at"]
    )  # fmt: skip
    assert (await admin(gateway, "GET", "/admin/teams/core")) == (200, changed)
    assert (await admin(gateway, "PATCH", "/admin/teams/nope", {"rpm": 1}))[0] == 404

    assert (await admin(gateway, "DELETE", "/admin/teams/core"))[0] == 204
    status, error = await admin(gateway, "GET", "/admin/teams/core")
    assert (status, error["error"]["param"]) == (404, "team")
    assert (await admin(gateway, "DELETE", "/admin/teams/core"))[0] == 404
    assert [t["id"] for t in (await admin(gateway, "GET", "/admin/teams"))[1]["data"]] == ["ops"]
    # A deleted team can no longer be joined ...
    status, error = await admin(gateway, "POST", "/admin/keys", {"user": "u", "team": "core"})
    assert (status, error["error"]["param"]) == (400, "team")
    status, error = await admin(gateway, "PUT", "/admin/users/u/quota", {"team": "core"})
    assert (status, error["error"]["param"]) == (400, "team")
    # ... until it is created again.
    assert (await admin(gateway, "POST", "/admin/teams", {"id": "core"}))[0] == 201
    assert (await admin(gateway, "POST", "/admin/keys", {"user": "u", "team": "core"}))[0] == 201


async def test_user_quota_takes_a_team_and_a_budget(gateway):
    await admin(gateway, "POST", "/admin/teams", CORE)
    status, quota = await admin(
        gateway, "PUT", "/admin/users/erin/quota",
        {"team": "core", "max_budget_usd": "5", "budget_period": "daily", "rpm": 3},
    )  # fmt: skip
    assert status == 200, quota
    assert (quota["team"], quota["max_budget_usd"], quota["budget_period"]) == (
        "core", "5", "daily"
    )  # fmt: skip
    assert quota["effective"] == {"rpm": 3, "tpd": 1000}
    stored = rows(gateway, "ai_user_quota")
    # team, budget, period, then max_parallel_requests (added after them)
    assert [(r[1], r[-4:]) for r in stored] == [("erin", ("core", "5.000000000", "daily", None))]
    # PUT replaces the whole override.
    status, quota = await admin(gateway, "PUT", "/admin/users/erin/quota", {"tier": "pro"})
    assert (quota["team"], quota["max_budget_usd"], quota["budget_period"]) == (None, None, None)


# -- spend --------------------------------------------------------------------------------------


def spent(request_id: str, at: datetime, cost: str, **over: Any) -> RequestLogRow:
    row = RequestLogRow(
        request_id=request_id, uid="dave", key_id="1", model="echo", provider="echo",
        upstream_model="echo", stream=False, status="ok", status_code=200, prompt_tokens=10,
        completion_tokens=2, usage_estimated=False, cost_usd=Decimal(cost), latency_ms=5,
        ttft_ms=None, session_id=None, attempts=1, error=None, created_at=at,
    )  # fmt: skip
    for name, value in over.items():
        setattr(row, name, value)
    return row


async def test_spend_groups_the_request_log(gateway):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await gateway.services.store.write_batch(
        [
            spent("a", today, "1.000000001", team="core", tags='["web","beta"]'),
            spent("b", today + timedelta(minutes=1), "0.5", uid="erin", key_id="2",
                  model="fake-model", tags='["web"]'),
            spent("c", today - timedelta(days=29), "2", uid="erin", key_id="2"),
            spent("d", today - timedelta(days=30), "7"),  # outside the default 30 days
        ]
    )  # fmt: skip
    day = today.date()

    def groups(payload: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(r["group"], r["requests"], r["cost_usd"]) for r in payload["data"]]

    status, report = await admin(gateway, "GET", "/admin/spend")
    assert status == 200, report
    assert (report["object"], report["group_by"]) == ("list", "user")
    assert (report["from"], report["to"]) == (
        (day - timedelta(days=29)).isoformat(), day.isoformat()
    )  # fmt: skip
    assert groups(report) == [("erin", 2, "2.500000000"), ("dave", 1, "1.000000001")]
    assert report["data"][0] | {"group": None} == {
        "group": None, "requests": 2, "prompt_tokens": 20, "completion_tokens": 4,
        "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
        "cost_usd": "2.500000000", "cache_savings_usd": "0.000000000",
        "cache_hits": 0, "cache_saved_tokens": 0, "cache_saved_usd": "0.000000000",
    }  # fmt: skip
    tagged = (await admin(gateway, "GET", "/admin/spend?group_by=tag"))[1]
    assert groups(tagged) == [
        (None, 1, "2.000000000"), ("web", 2, "1.500000001"), ("beta", 1, "1.000000001")
    ]  # fmt: skip
    by_day = (await admin(gateway, "GET", "/admin/spend?group_by=day"))[1]
    assert groups(by_day) == [
        ((day - timedelta(days=29)).isoformat(), 1, "2.000000000"),
        (day.isoformat(), 2, "1.500000001"),
    ]
    teams = (await admin(gateway, "GET", "/admin/spend?group_by=team&user=dave"))[1]
    assert groups(teams) == [("core", 1, "1.000000001")]
    models = (await admin(gateway, "GET", "/admin/spend?group_by=model&user=erin"))[1]
    assert groups(models) == [("echo", 1, "2.000000000"), ("fake-model", 1, "0.500000000")]
    keys = (await admin(gateway, "GET", f"/admin/spend?group_by=key&to={day}&from={day}"))[1]
    assert groups(keys) == [("1", 1, "1.000000001"), ("2", 1, "0.500000000")]
    old = (day - timedelta(days=30)).isoformat()
    wide = (await admin(gateway, "GET", f"/admin/spend?from={old}"))[1]
    assert groups(wide) == [("dave", 2, "8.000000001"), ("erin", 2, "2.500000000")]
    reversed_range = (await admin(gateway, "GET", f"/admin/spend?from={day}&to={old}"))[1]
    assert reversed_range["data"] == []


# -- bad input: a 400 naming the field, and nothing changed --------------------------------------

K = "/admin/keys"
BAD = [
    ("POST", K, {"user": "u", "models": []}, "invalid_value", "models"),
    ("POST", K, {"user": "u", "models": "echo"}, "invalid_type", "models"),
    ("POST", K, {"user": "u", "models": ["echo", ""]}, "invalid_value", "models"),
    ("POST", K, {"user": "u", "models": [1]}, "invalid_type", "models"),
    ("POST", K, {"user": "u", "models": ["gpt-*"]}, "invalid_value", "models"),
    ("POST", K, {"user": "u", "expires_at": "2030-01-01"}, "invalid_value", "expires_at"),
    ("POST", K, {"user": "u", "expires_at": "2030-01-01T00:00:00"}, "invalid_value", "expires_at"),
    ("POST", K, {"user": "u", "expires_at": True}, "invalid_type", "expires_at"),
    ("POST", K, {"user": "u", "expires_at": -1}, "invalid_value", "expires_at"),
    ("POST", K, {"user": "u", "rpm": -1}, "invalid_value", "rpm"),
    ("POST", K, {"user": "u", "tpd": "5"}, "invalid_type", "tpd"),
    ("POST", K, {"user": "u", "max_budget_usd": -1, "budget_period": "daily"}, "invalid_value",
     "max_budget_usd"),
    ("POST", K, {"user": "u", "max_budget_usd": "1e3", "budget_period": "daily"},
     "invalid_value", "max_budget_usd"),
    ("POST", K, {"user": "u", "max_budget_usd": "0.0000000001", "budget_period": "daily"},
     "invalid_value", "max_budget_usd"),
    ("POST", K, {"user": "u", "max_budget_usd": [5], "budget_period": "daily"}, "invalid_type",
     "max_budget_usd"),
    ("POST", K, {"user": "u", "max_budget_usd": 5}, "missing_required_parameter",
     "budget_period"),
    ("POST", K, {"user": "u", "max_budget_usd": 5, "budget_period": "yearly"}, "invalid_value",
     "budget_period"),
    ("POST", K, {"user": "u", "budget_period": 1}, "invalid_type", "budget_period"),
    ("POST", K, {"user": "u", "team": "nope"}, "invalid_value", "team"),
    ("POST", K, {"user": "u", "team": "bad id!"}, "invalid_value", "team"),
    ("POST", K, {"user": "u", "metadata": [1]}, "invalid_type", "metadata"),
    ("POST", K, {"user": "u", "metadata": {"x": "y" * 5000}}, "invalid_value", "metadata"),
    ("PATCH", "/admin/keys/{id}", {"rpm": -5}, "invalid_value", "rpm"),
    ("PATCH", "/admin/keys/{id}", {"max_budget_usd": 5, "budget_period": None},
     "missing_required_parameter", "budget_period"),
    ("PATCH", "/admin/keys/{id}", {"team": "nope"}, "invalid_value", "team"),
    ("PATCH", "/admin/keys/{id}", {"user": "x"}, "unknown_parameter", "user"),
    ("PATCH", "/admin/keys/{id}", {"tier": "pro"}, "unknown_parameter", "tier"),
    ("PATCH", "/admin/keys/{id}", {"models": ["ok", ""]}, "invalid_value", "models"),
    ("PATCH", "/admin/keys/{id}", {"name": 5}, "invalid_type", "name"),
    ("POST", "/admin/teams", {}, "missing_required_parameter", "id"),
    ("POST", "/admin/teams", {"id": ""}, "invalid_value", "id"),
    ("POST", "/admin/teams", {"id": "a b"}, "invalid_value", "id"),
    ("POST", "/admin/teams", {"id": 5}, "invalid_type", "id"),
    ("POST", "/admin/teams", {"id": "t2", "max_budget_usd": 5}, "missing_required_parameter",
     "budget_period"),
    ("POST", "/admin/teams", {"id": "t2", "rpm": 1.5}, "invalid_type", "rpm"),
    ("POST", "/admin/teams", {"id": "t2", "owner": "x"}, "unknown_parameter", "owner"),
    ("PATCH", "/admin/teams/core", {"id": "other"}, "unknown_parameter", "id"),
    ("PATCH", "/admin/users/carol/quota", {"max_budget_usd": 5, "budget_period": None},
     "missing_required_parameter", "budget_period"),
    ("PATCH", "/admin/teams/core", {"models": []}, "invalid_value", "models"),
    ("PATCH", "/admin/teams/core", {"tpd": 10**13}, "invalid_value", "tpd"),
    ("PUT", "/admin/users/carol/quota", {"team": "nope"}, "invalid_value", "team"),
    ("PUT", "/admin/users/carol/quota", {"max_budget_usd": 5}, "missing_required_parameter",
     "budget_period"),
    ("PUT", "/admin/users/carol/quota", {"max_budget_usd": 5, "budget_period": "hourly"},
     "invalid_value", "budget_period"),
    ("GET", "/admin/spend?group_by=uid", None, "invalid_value", "group_by"),
    ("GET", "/admin/spend?from=2026-13-01", None, "invalid_value", "from"),
    ("GET", "/admin/spend?to=yesterday", None, "invalid_value", "to"),
]  # fmt: skip


async def test_patch_changes_only_the_fields_it_sends(gateway):
    assert (await admin(gateway, "POST", "/admin/teams", CORE))[0] == 201
    status, made = await admin(
        gateway, "POST", "/admin/keys",
        {"user": "dave", "max_budget_usd": "12.50", "budget_period": "weekly", "rpm": 9},
    )  # fmt: skip
    assert status == 201, made
    status, key = await admin(gateway, "PATCH", f"/admin/keys/{made['id']}", {"max_budget_usd": 1})
    assert status == 200, key
    assert (key["max_budget_usd"], key["budget_period"], key["rpm"]) == ("1", "weekly", 9)
    status, team = await admin(gateway, "PATCH", "/admin/teams/core", {"max_budget_usd": 5})
    assert status == 200, team
    assert (team["max_budget_usd"], team["budget_period"], team["rpm"]) == ("5", "monthly", 60)
    status, quota = await admin(
        gateway, "PUT", "/admin/users/erin/quota",
        {"max_budget_usd": "3", "budget_period": "daily", "rpm": 4},
    )  # fmt: skip
    assert status == 200, quota
    status, quota = await admin(gateway, "PATCH", "/admin/users/erin/quota", {"rpm": 7})
    assert status == 200, quota
    assert (quota["max_budget_usd"], quota["budget_period"], quota["rpm"]) == ("3", "daily", 7)
    status, quota = await admin(gateway, "PATCH", "/admin/users/erin/quota", {"max_budget_usd": 2})
    assert (status, quota["max_budget_usd"], quota["budget_period"]) == (200, "2", "daily")
    # a budget where no period is stored conflicts with the stored settings
    status, error = await admin(gateway, "PATCH", "/admin/users/fay/quota", {"max_budget_usd": 2})
    assert (status, error["error"]["code"]) == (409, "budget_period_required")
    bare = (await admin(gateway, "POST", "/admin/keys", {"user": "dave"}))[1]
    status, error = await admin(
        gateway, "PATCH", f"/admin/keys/{bare['id']}", {"max_budget_usd": 1}
    )
    assert (status, error["error"]["param"]) == (409, "budget_period")
    # PUT still replaces the whole override
    status, quota = await admin(gateway, "PUT", "/admin/users/erin/quota", {"rpm": 1})
    assert (quota["max_budget_usd"], quota["budget_period"], quota["rpm"]) == (None, None, 1)


@pytest.mark.parametrize(("method", "path", "body", "code", "param"), BAD)
async def test_bad_governance_input_is_a_400_naming_the_field(
    gateway, method, path, body, code, param
):
    assert (await admin(gateway, "POST", "/admin/teams", CORE))[0] == 201
    made = (await admin(gateway, "POST", "/admin/keys", {"user": "dave"}))[1]
    before = {t: rows(gateway, t) for t in ("ai_api_key", "ai_team", "ai_user_quota")}
    status, error = await admin(gateway, method, path.replace("{id}", made["id"]), body)
    assert status == 400, error
    assert (error["error"]["code"], error["error"]["param"]) == (code, param), error
    assert {t: rows(gateway, t) for t in before} == before


# -- CLI ----------------------------------------------------------------------------------------


async def test_cli_creates_keys_with_scopes_and_lists_them(gateway_config, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(gateway_config))
    store = SqliteStore(str(tmp_path / "gateway.db"))
    await store.migrate()
    await store.put_team(Team("core", "Core"))
    created = gateway_cli(
        path, "keys", "create", "--user", "carol", "--models", "echo, fake/*", "--expires",
        "2026-12-31", "--rpm", "60", "--tpd", "1000", "--budget", "25.5", "--period", "monthly",
        "--team", "core", "--mcp-tools", "calc__add, files__*",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    listed = gateway_cli(path, "keys", "list", "--user", "carol")
    assert listed.returncode == 0, listed.stderr
    columns = listed.stdout.strip().split("\t")
    assert columns[2] == "carol" and key not in listed.stdout
    assert columns[7:] == [
        "echo,fake/*", "2026-12-31T00:00:00+00:00", "60", "1000", "25.5/monthly", "core",
        "calc__add,files__*",
    ]  # fmt: skip
    (stored,) = await store.list_keys("carol")
    assert (stored.models, stored.expires_at, stored.max_budget_usd) == (
        ("echo", "fake/*"), datetime(2026, 12, 31, tzinfo=UTC), Decimal("25.5")
    )  # fmt: skip
    assert stored.mcp_tools == ("calc__add", "files__*")

    plain = gateway_cli(path, "keys", "create", "--user", "dan")
    assert plain.returncode == 0, plain.stderr
    assert gateway_cli(path, "keys", "list", "--user", "dan").stdout.strip().split("\t")[7:] == [
        "*", "-", "-", "-", "-", "-", "*"
    ]  # fmt: skip

    for bad, named in [
        (["--budget", "abc", "--period", "daily"], "--budget"),
        (["--budget", "5"], "--period"),
        (["--team", "nope"], "--team"),
        (["--models", "echo,,x"], "--models"),
        (["--expires", "tomorrow"], "--expires"),
        (["--rpm", "-1"], "--rpm"),
        (["--mcp-tools", "calc__*x"], "--mcp-tools"),
    ]:
        refused = gateway_cli(path, "keys", "create", "--user", "eve", *bad)
        assert refused.returncode == 2, (bad, refused.stderr)
        assert named in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert await store.list_keys("eve") == []
    await store.close()
