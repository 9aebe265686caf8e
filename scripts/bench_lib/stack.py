"""The bench's stack around the gateway: a private PostgreSQL database and Redis prefix, the
gateway's config, its database key and USD budgets, and the gateway process (one or N workers).

Budgets: the key gets one with `gateway keys create --budget --period` and the user one through
`PUT /admin/users/{uid}/quota`, both far above what a run can spend, so admission reserves and
settles every request's cost against two budgets in Redis and never refuses. A request answered
without `x-budget-remaining-usd` means budgets are off, and the run stops there.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import yaml
from endpoints import ENDPOINTS
from plan import Scenario, warm_variant
from proc import Children, free_port, process_tree, wait_port

ROOT = Path(__file__).resolve().parents[2]
USER = "bench"
TIER = "bench"
BUDGET_USD = "1000000"  # USD; a run spends a few cents
BUDGET_PERIOD = "total"
# A model for the checks, in every config: chat, non-stream, the nonstream scenarios' shape.
CHECK = Scenario("check", False, 1, 20, 0, 0, 1.0)


# -- services: private database and redis prefix ---------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


async def admin_sql(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def count_rows(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM ai_request_log")
        return count
    finally:
        await conn.close()


def redis_cleanup(url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        return len(keys)
    finally:
        client.close()


# -- the gateway's config, key and budgets ----------------------------------------------------


def gateway_config(
    path: Path,
    db_url: str,
    redis_url: str,
    prefix: str,
    mock_port: int,
    tmp: Path,
    plan: list[Scenario],
    admin_key: str,
) -> None:
    """Production mode: PostgreSQL, Redis, INFO logs; the mock as an `openai` provider and as an
    `anthropic` one, and one model per scenario shape."""
    mock = f"http://127.0.0.1:{mock_port}"
    providers = {"mock": "mock", "anthropic": "mock-anthropic"}
    config = {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_s": 5},
        "database": {"url": db_url, "spill_path": str(tmp / "spill.jsonl")},
        "redis": {"url": redis_url, "prefix": prefix},
        "auth": {"admin_key": admin_key, "keys": []},
        "providers": {
            "mock": {"type": "openai", "base_url": f"{mock}/v1", "api_key": "sk-mock-upstream"},
            "mock-anthropic": {"type": "anthropic", "base_url": mock, "api_key": "sk-ant-mock"},
        },
        "models": {
            s.gateway_model: {
                "provider": providers.get(s.provider, "mock"),
                "model": s.upstream_model,
                "input_price": 0.15,
                "output_price": 0.60,
            }
            for s in [CHECK, *plan, *map(warm_variant, plan)]
        },
        "quota": {
            "default_tier": "free",
            "tiers": {
                "free": {"rpm": 20, "tpd": 100000},
                # Far above what the bench can send, yet both limits are checked and charged.
                TIER: {"rpm": 1_000_000_000, "tpd": 1_000_000_000_000},
            },
        },
        "logging": {"level": "INFO", "content": False},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def create_key(config_path: Path) -> str:
    """A database key for the bench user, with its own budget (`gateway keys create`)."""
    created = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", "-c", str(config_path),
         "--user", USER, "--tier", TIER, "--name", "bench",
         "--budget", BUDGET_USD, "--period", BUDGET_PERIOD],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    if created.returncode != 0:
        raise RuntimeError(f"gateway keys create failed: {created.stderr.strip()}")
    return created.stdout.strip().splitlines()[-1]


def http(
    method: str, url: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with urllib: (status, headers in lower case, body); errors are answers too."""
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def enable_user_budget(base: str, admin_key: str) -> None:
    """The user's own budget, on top of the key's."""
    status, _, body = http(
        "PUT",
        f"{base}/admin/users/{USER}/quota",
        {"Authorization": f"Bearer {admin_key}"},
        {"tier": TIER, "max_budget_usd": BUDGET_USD, "budget_period": BUDGET_PERIOD},
    )
    if status != 200:
        raise RuntimeError(f"setting the user's budget failed: {status} {body[:500]!r}")


def check_budgets(base: str, key: str) -> str:
    """One request with the key; the budget it reports left (proof that budgets are on)."""
    chat = ENDPOINTS["chat"]
    status, headers, body = http(
        "POST",
        base + chat.path,
        dict(chat.headers(key)),
        orjson.loads(chat.body(CHECK.gateway_model, False)),
    )
    if status != 200:
        raise RuntimeError(f"check request failed: {status} {body[:500]!r}")
    remaining = headers.get("x-budget-remaining-usd")
    if remaining is None:
        raise RuntimeError("the gateway answered without x-budget-remaining-usd: budgets are off")
    return remaining


# -- the gateway process ----------------------------------------------------------------------


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    base: str
    log_path: Path
    workers: int

    @property
    def pid(self) -> int:
        return self.proc.pid


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            status: int = resp.status
            return status
    except OSError:
        return 0


def start_gateway(
    children: Children, config_path: Path, log_path: Path, pin: list[str], workers: int = 1
) -> Gateway:
    """`gateway serve` (with `--workers N` when N > 1), ready: every worker started and
    /readyz answering 200."""
    port = free_port()
    argv = [
        *pin, sys.executable, "-m", "gateway", "serve", "-c", str(config_path),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    if workers > 1:
        argv += ["--workers", str(workers)]
    with open(log_path, "wb") as log_file:
        proc = children.start(argv, stdout=subprocess.DEVNULL, stderr=log_file, cwd=ROOT)
    wait_port(port, 30, proc)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    expected = 1 if workers <= 1 else workers + 1  # a supervisor and its workers
    while http_status(base + "/readyz") != 200 or len(process_tree(proc.pid)) < expected:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"gateway not ready; see {log_path}")
        time.sleep(0.1)
    return Gateway(proc, base, log_path, workers)


def log_features(log_path: Path) -> dict[str, Any]:
    """What the gateway's log says: request lines (per endpoint, and how many had their usage
    estimated rather than read from the mock's answer), errors, distinct warnings."""
    warnings: set[str] = set()
    endpoints: dict[str, int] = {}
    lines = estimated = errors = 0
    for line in log_path.read_text(errors="replace").splitlines():
        if '"msg":"request"' in line:
            lines += 1
            estimated += '"usage_estimated":true' in line
            try:
                endpoint = str(orjson.loads(line).get("endpoint", "?"))
            except orjson.JSONDecodeError:
                endpoint = "?"
            endpoints[endpoint] = endpoints.get(endpoint, 0) + 1
        if '"level":"warning"' in line or '"level":"error"' in line:
            errors += '"level":"error"' in line
            try:
                warnings.add(str(orjson.loads(line).get("msg", "")))
            except orjson.JSONDecodeError:
                warnings.add(line[:200])
    return {
        "request_log_lines": lines,
        "requests_by_endpoint": endpoints,
        # The mock always sends usage: an estimate means the gateway did not find it.
        "usage_estimated": estimated,
        "gateway_errors_logged": errors,
        # e.g. "rate limiter backend unavailable": a silently degraded feature shows here
        "gateway_warnings": sorted(warnings)[:10],
    }
