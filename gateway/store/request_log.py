"""The request-log search both backends share: its SQL (placeholders handed out by the caller)
and the RequestLogRow read back from a result row. Driver-free, like common.py.

Rules:
- Newest first on (created_at DESC, id DESC); the row id breaks ties between rows written in the
  same microsecond, so keyset pages never skip or repeat a row.
- The `before` cursor is a request_id; the page holds the rows strictly older than that row.
  An unknown cursor matches no row, so it gives an empty page (as sessions' `after` does).
- A failure (the search's `status=error`) is every status but ok and client_closed; the partial
  index on failures (schema) carries exactly that predicate, so the planner can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.store.base import LOG_FIELDS, RequestLogRow
from gateway.store.common import Row
from gateway.store.request_query import FAILED, NOT_FAILED, RequestQuery

# `add(value)` appends a query argument and returns its placeholder (`$3`, `:p3`).
AddArg = Callable[[Any], str]

LOG_COLS = ", ".join(f"r.{f}" for f in LOG_FIELDS)
_NOT_FAILED_SQL = ", ".join(f"'{s}'" for s in NOT_FAILED)
FAILED_SQL = f"status NOT IN ({_NOT_FAILED_SQL})"


def _where(query: RequestQuery, add: AddArg) -> list[str]:
    """The query's filters as SQL conditions on the row alias `r`."""
    where = []
    for column, value in (
        ("uid", query.uid),
        ("model", query.model),
        ("endpoint", query.endpoint),
        ("team", query.team),
    ):
        if value is not None:
            where.append(f"r.{column} = {add(value)}")
    if query.status == FAILED:
        where.append(f"r.{FAILED_SQL}")
    elif query.status is not None:
        where.append(f"r.status = {add(query.status)}")
    if query.start is not None:
        where.append(f"r.created_at >= {add(query.start)}")
    if query.end is not None:
        where.append(f"r.created_at < {add(query.end)}")
    return where


def search_sql(query: RequestQuery, before: str | None, limit: int, add: AddArg) -> str:
    """One page of the search: `limit` rows (ask for one more than the page to learn has_more)."""
    where = _where(query, add)
    if before is not None:
        where.append(
            "(r.created_at, r.id) < (SELECT c.created_at, c.id FROM ai_request_log c"
            f" WHERE c.request_id = {add(before)})"
        )
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return (
        f"SELECT {LOG_COLS} FROM ai_request_log r{condition}"
        f" ORDER BY r.created_at DESC, r.id DESC LIMIT {add(limit)}"
    )


def get_sql(request_id: str, uid: str | None, add: AddArg) -> str:
    """One row by request_id (and owner, when `uid` is given)."""
    owner = "" if uid is None else f" AND r.uid = {add(uid)}"
    return f"SELECT {LOG_COLS} FROM ai_request_log r WHERE r.request_id = {add(request_id)}{owner}"


def failures_sql(day: str, start: datetime, end: datetime, add: AddArg) -> str:
    """Failed requests per (day, status) over [start, end); `day` is the backend's SQL
    expression for the YYYY-MM-DD UTC date of `r.created_at`."""
    return (
        f"SELECT {day} AS day, r.status AS status, count(*) AS requests FROM ai_request_log r"
        f" WHERE r.{FAILED_SQL} AND r.created_at >= {add(start)} AND r.created_at < {add(end)}"
        " GROUP BY 1, 2 ORDER BY 1, 2"
    )


def failure_rows(rows: list[Row]) -> list[dict[str, Any]]:
    """failures_sql's rows as dicts with an int count."""
    return [{"day": r["day"], "status": r["status"], "requests": int(r["requests"])} for r in rows]


def log_row(row: Row, parse_time: Callable[[Any], datetime]) -> RequestLogRow:
    """A RequestLogRow from a row holding LOG_FIELDS (SQLite's 0/1 and money text included)."""
    values: dict[str, Any] = {f: row[f] for f in LOG_FIELDS}
    values["created_at"] = parse_time(values["created_at"])
    values["stream"] = bool(values["stream"])
    values["usage_estimated"] = bool(values["usage_estimated"])
    values["cost_usd"] = Decimal(values["cost_usd"])
    values["cache_savings_usd"] = Decimal(values["cache_savings_usd"])
    values["cache_hit"] = bool(values["cache_hit"])
    values["cache_saved_usd"] = Decimal(values["cache_saved_usd"])
    return RequestLogRow(**values)
