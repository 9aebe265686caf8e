"""Time the console's request-log queries on a million rows in a scratch PostgreSQL database.
Seeds ai_request_log with generate_series, then runs each search under EXPLAIN ANALYZE.

    python scripts/seed_request_log.py [--url postgresql://postgres@127.0.0.1:5432/test]
                                       [--rows 1000000] [--days 30] [--keep]

A database `gw_seed_<random>` is created on the server of --url (the schema applied by the
gateway's own migrate) and dropped at the end unless --keep. The queries are the store's own
SQL (gateway/store/request_log.py); timings are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.store.base import RequestQuery
from gateway.store.postgres import connect_postgres
from gateway.store.request_log import failures_sql, search_sql

# 200 users, the first ones busier; 8 models; endpoints and statuses in realistic shares.
SEED = """
INSERT INTO ai_request_log (request_id, uid, key_id, model, provider, upstream_model, stream,
    status, status_code, prompt_tokens, completion_tokens, usage_estimated, cost_usd,
    latency_ms, ttft_ms, session_id, attempts, error, created_at, endpoint, team, tags)
SELECT
    'seed-' || g,
    'user-' || (floor(200 * power(random(), 2)))::int,
    (g % 500)::text,
    (ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'claude-haiku', 'gemini-pro',
           'gemini-flash', 'llama-70b', 'mistral-large'])[1 + (g % 8)],
    (ARRAY['openai', 'anthropic', 'gemini', 'local'])[1 + (g % 4)],
    'upstream-' || (g % 8),
    g % 3 = 0,
    CASE WHEN r < 0.95 THEN 'ok' WHEN r < 0.97 THEN 'client_closed'
         WHEN r < 0.99 THEN 'upstream_error' ELSE 'rejected' END,
    CASE WHEN r < 0.95 THEN 200 WHEN r < 0.97 THEN 499 WHEN r < 0.99 THEN 502 ELSE 429 END,
    (random() * 4000)::int,
    (random() * 800)::int,
    g % 50 = 0,
    round((random() * 0.02)::numeric, 9),
    (200 + random() * 5000)::int,
    (50 + random() * 800)::int,
    NULL,
    1 + (g % 17 = 0)::int,
    CASE WHEN r >= 0.97 THEN 'upstream said no' END,
    $2::timestamptz - (g::float8 / $1) * ($3 || ' days')::interval,
    CASE WHEN e < 0.80 THEN 'chat' WHEN e < 0.88 THEN 'responses' WHEN e < 0.95 THEN 'messages'
         WHEN e < 0.99 THEN 'embeddings' ELSE 'completions' END,
    'team-' || (g % 12),
    CASE WHEN g % 10 = 0 THEN '["batch"]' END
FROM generate_series(1, $1) AS g,
    LATERAL (SELECT random() AS r, random() AS e WHERE g > 0) AS x  -- once per row
"""


@dataclass
class Case:
    name: str
    query: RequestQuery
    before: bool = False  # page from the 50th row of the first page (a second page)


def cases(now: datetime) -> list[Case]:
    day = timedelta(days=1)
    return [
        Case("newest 50, no filter", RequestQuery()),
        Case("second page (before=)", RequestQuery(), before=True),
        Case("user", RequestQuery(uid="user-7")),
        Case("rare user (tail)", RequestQuery(uid="user-199")),
        Case("user, second page", RequestQuery(uid="user-7"), before=True),
        Case("model", RequestQuery(model="claude-haiku")),
        Case("status=error", RequestQuery(status="error")),
        Case("status=rejected", RequestQuery(status="rejected")),
        Case("endpoint=completions (1%)", RequestQuery(endpoint="completions")),
        Case("user + model + error", RequestQuery(uid="user-3", model="gpt-4o", status="error")),
        Case("last 24 h", RequestQuery(start=now - day, end=now)),
        Case("one day, 20 days ago", RequestQuery(start=now - 20 * day, end=now - 19 * day)),
        Case(
            "model, one day ago", RequestQuery(model="gpt-4o", start=now - 2 * day, end=now - day)
        ),
        Case("no match: model=nope", RequestQuery(model="nope")),
        Case("no match: endpoint=unknown", RequestQuery(endpoint="nope")),
    ]


class Args(list[Any]):
    def add(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


async def explain(conn: asyncpg.Connection, sql: str, args: list[Any]) -> tuple[float, str]:
    """Execution + planning time (ms) of EXPLAIN ANALYZE, and the plan's outline."""
    plan = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    top = json.loads(plan)[0]
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" {node['Index Name']}"
        nodes.append(label)
        for child in node.get("Plans", []):
            walk(child)

    walk(top["Plan"])
    return top["Execution Time"] + top["Planning Time"], " > ".join(nodes)


async def timed(make: Any, runs: int = 5) -> float:
    """Median wall time (ms) of the store call."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await make()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    opts = parser.parse_args()

    name = f"gw_seed_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(opts.url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{opts.url.rsplit('/', 1)[0]}/{name}"
    print(f"scratch database: {name}", file=sys.stderr)
    try:
        store = await connect_postgres(url)
        await store.migrate()
        conn = await asyncpg.connect(url)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        await conn.execute(SEED, opts.rows, now, str(opts.days))
        await conn.execute("VACUUM ANALYZE ai_request_log")
        seeded = time.perf_counter() - t0
        count = await conn.fetchval("SELECT count(*) FROM ai_request_log")
        size = await conn.fetchval(
            "SELECT pg_size_pretty(pg_total_relation_size('ai_request_log'))"
        )
        version = await conn.fetchval("SHOW server_version")
        print(
            f"PostgreSQL {version}: {count} rows over {opts.days} days, {size} with indexes,"
            f" seeded in {seeded:.1f} s\n"
        )
        print(
            "| search (limit 50) | rows | EXPLAIN ANALYZE ms | store call ms (median of 5) | plan |"
        )
        print("|---|---|---|---|---|")
        for case in cases(now):
            before = None
            if case.before:
                first, _ = await store.search_requests(case.query, 50, None)
                before = first[-1].request_id
            args = Args()
            sql = search_sql(case.query, before, 51, args.add)
            ms, plan = await explain(conn, sql, args)
            rows, _ = await store.search_requests(case.query, 50, before)
            wall = await timed(lambda q=case.query, b=before: store.search_requests(q, 50, b))
            print(f"| {case.name} | {len(rows)} | {ms:.2f} | {wall:.2f} | {plan} |")
        wall = await timed(lambda: store.get_request("seed-123456"))
        print(f"| GET one request by id | 1 | - | {wall:.2f} | request_id unique index |")
        for days in (1, 7, 30):
            args = Args()
            day = "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            sql = failures_sql(day, now - timedelta(days=days), now, args.add)
            ms, plan = await explain(conn, sql, args)
            wall = await timed(
                lambda d=days: store.request_failures(now - timedelta(days=d), now), runs=3
            )
            print(f"| failures per day and status, {days} d | - | {ms:.2f} | {wall:.2f} | {plan} |")
        await conn.close()
        await store.close()
    finally:
        if not opts.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
