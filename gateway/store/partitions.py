"""The PostgreSQL request log partitioned by month: conversion of an unpartitioned log in place,
partitions created ahead, and retention by dropping whole partitions.

Rules:
- `ai_request_log` is `PARTITION BY RANGE (created_at)`, one partition per UTC calendar month,
  named `ai_request_log_pYYYYMM`, plus `ai_request_log_default` for rows outside every month
  (clock skew, replayed spill files); creating ahead keeps the default partition empty.
- A partitioned table's unique keys must include the partition key: the primary key is
  (id, created_at) and the idempotency key (request_id, created_at). A replayed row carries its
  original created_at, so `ON CONFLICT (request_id, created_at) DO NOTHING` still skips it.
- Conversion (an existing plain table): in one transaction under the migration lock, the old
  table is renamed, the partitioned one created with the same columns, partitions made for every
  month the old rows cover, the rows copied, and the old table dropped; nothing is lost if any
  step fails (the transaction rolls back).
- Retention: a partition is dropped when its whole month ends before now - retention_days.
  Queries bounded by created_at read only the partitions of their range (planner pruning).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

TABLE = "ai_request_log"
DEFAULT = f"{TABLE}_default"
AHEAD_MONTHS = 3  # partitions kept ready past the current month
_NAME = re.compile(rf"^{TABLE}_p(\d{{4}})(\d{{2}})$")


def month_start(moment: datetime) -> datetime:
    """00:00 UTC of the first day of `moment`'s month."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{TABLE}_p{start.year:04d}{start.month:02d}"


def months_between(first: datetime, last: datetime) -> list[datetime]:
    """The starts of every month from `first`'s to `last`'s, inclusive."""
    out, current, end = [], month_start(first), month_start(last)
    while current <= end:
        out.append(current)
        current = next_month(current)
    return out


def expired(names: list[str], now: datetime, retention_days: int) -> list[str]:
    """The monthly partitions whose whole month ended before now - retention_days."""
    if retention_days <= 0:
        return []
    cutoff = now.astimezone(UTC) - timedelta(days=retention_days)
    out = []
    for name in names:
        found = _NAME.match(name)
        if found is None:
            continue
        start = datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)
        if next_month(start) <= cutoff:
            out.append(name)
    return sorted(out)


async def is_partitioned(conn: Any) -> bool:
    kind = await conn.fetchval(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = $1 AND n.nspname = ANY(current_schemas(false))",
        TABLE,
    )
    return bool(kind in (b"p", "p"))


async def _create_partition(conn: Any, start: datetime) -> None:
    end = next_month(start)
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {partition_name(start)} PARTITION OF {TABLE}"
        f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


async def ensure_ahead(conn: Any, now: datetime, months: int = AHEAD_MONTHS) -> None:
    """The current month's partition and the next `months` ones exist."""
    start = month_start(now)
    for _ in range(months + 1):
        await _create_partition(conn, start)
        start = next_month(start)


async def convert(conn: Any, now: datetime) -> int:
    """Make ai_request_log partitioned (a no-op when it is); returns the rows moved. Run inside
    the migration's transaction, after schema.sql."""
    if await is_partitioned(conn):
        return 0
    old = f"{TABLE}_unpartitioned"
    await conn.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
    for index in await conn.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = $1", old
    ):  # index names are schema-wide: free them for the new table's indexes
        name = index["indexname"]
        await conn.execute(f'ALTER INDEX "{name}" RENAME TO "{name}_old"')
    await conn.execute(
        f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE (created_at)"
    )
    await conn.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id, created_at)")
    await conn.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_request_id_key UNIQUE (request_id, created_at)"
    )
    await conn.execute(f"CREATE TABLE IF NOT EXISTS {DEFAULT} PARTITION OF {TABLE} DEFAULT")
    bounds = await conn.fetchrow(f"SELECT min(created_at) AS lo, max(created_at) AS hi FROM {old}")
    lo, hi = bounds["lo"] or now, bounds["hi"] or now
    for start in months_between(lo, max(hi, now)):
        await _create_partition(conn, start)
    await ensure_ahead(conn, now)
    moved = await conn.execute(f"INSERT INTO {TABLE} SELECT * FROM {old}")
    # The id sequence stays owned by the new table's column default.
    await conn.execute(f"ALTER SEQUENCE IF EXISTS {TABLE}_id_seq OWNED BY {TABLE}.id")
    await conn.execute(f"DROP TABLE {old}")
    return int(moved.split()[-1])


async def partitions(conn: Any) -> list[str]:
    """The monthly partitions' names, oldest first."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
        TABLE,
    )
    return sorted(r["relname"] for r in rows if _NAME.match(r["relname"]))


async def drop_expired(conn: Any, now: datetime, retention_days: int) -> list[str]:
    """Drop the monthly partitions past retention; returns their names."""
    gone = expired(await partitions(conn), now, retention_days)
    for name in gone:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
    return gone
