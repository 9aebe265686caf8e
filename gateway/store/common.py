"""What the PostgreSQL and SQLite backends share: record builders, paging rules, query shapes.
Driver-free: SQL here takes its placeholders as arguments, and rows are read only by column name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import orjson

from gateway.store.base import (
    KEY_FIELDS,
    KEY_SCOPE_FIELDS,
    MODEL_COLUMNS,
    PROVIDER_COLUMNS,
    QUOTA_FIELDS,
    SESSION_FIELDS,
    SPEND_GROUPS,
    TEAM_FIELDS,
    TIER_COLUMNS,
    ApiKey,
    ConfigRows,
    Message,
    MessageRow,
    QuotaOverride,
    RequestLogRow,
    Session,
    Team,
    WriteItem,
    checked_columns,
)

T = TypeVar("T")

SESSION_COLS = ", ".join(f"s.{f}" for f in SESSION_FIELDS)
KEY_COLS = ", ".join(KEY_FIELDS)
# The key columns create_key writes: all but the row id, which the database assigns.
KEY_INSERT_FIELDS = KEY_FIELDS[1:]
QUOTA_COLS = ", ".join(QUOTA_FIELDS)
TEAM_COLS = ", ".join(TEAM_FIELDS)
TIME_COLUMNS = frozenset({"created_at", "updated_at", "last_used_at", "expires_at"})
PRICE_COLUMNS = frozenset({"input_price", "output_price"})
MONEY_COLUMNS = frozenset({"cost_usd", "max_budget_usd", "cache_savings_usd", "cache_saved_usd"})
# Record fields stored as JSON text: models and mcp_tools (lists, read back as tuples) and key
# metadata.
JSON_COLUMNS = frozenset({"models", "mcp_tools", "metadata"})
LIST_COLUMNS = frozenset({"models", "mcp_tools"})


class Row(Protocol):
    """A result row read by column name (asyncpg.Record, sqlite3.Row)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class RowReader:
    """Builds records from result rows; `parse_time` turns a stored timestamp into a datetime
    (identity for drivers that return datetimes, text parsing for SQLite)."""

    parse_time: Callable[[Any], datetime]

    def _get(self, row: Row, column: str) -> Any:
        value = row[column]
        if value is None:
            return None
        if column in TIME_COLUMNS:
            return self.parse_time(value)
        if column in MONEY_COLUMNS:
            return Decimal(value)
        if column in LIST_COLUMNS:
            return tuple(orjson.loads(value))
        if column in JSON_COLUMNS:
            return orjson.loads(value)
        return value

    def session(self, row: Row) -> Session:
        """A Session from a row holding SESSION_FIELDS."""
        return Session(*(self._get(row, f) for f in SESSION_FIELDS))

    def key(self, row: Row) -> ApiKey:
        """An ApiKey from a row holding KEY_FIELDS; the row id becomes a string."""
        return ApiKey(str(row["id"]), *(self._get(row, f) for f in KEY_FIELDS[1:]))

    def quota(self, row: Row) -> QuotaOverride:
        """A QuotaOverride from a row holding QUOTA_FIELDS."""
        return QuotaOverride(*(self._get(row, f) for f in QUOTA_FIELDS))

    def team(self, row: Row) -> Team:
        """A Team from a row holding TEAM_FIELDS."""
        return Team(*(self._get(row, f) for f in TEAM_FIELDS))

    def window(self, rows: Sequence[Row]) -> tuple[Session, list[Message]] | None:
        """The result of window_sql: the session and its messages (none when the LEFT JOIN
        found no message), or None when there is no row, i.e. the session is not the user's."""
        if not rows:
            return None
        messages = [
            Message(
                message_id=r["message_id"],
                session_id=r["session_id"],
                role=r["role"],
                content=r["content"],
                tokens=r["tokens"],
                model=r["m_model"],
                created_at=self.parse_time(r["m_created_at"]),
            )
            for r in rows
            if r["message_id"] is not None
        ]
        return self.session(rows[0]), messages


def page(rows: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """Keyset paging: the query fetched limit+1 rows; the extra one only says has_more."""
    return list(rows[:limit]), len(rows) > limit


class MessageWindow:
    """list_messages and load_history over one query, the backend's `_window`."""

    async def _window(
        self, uid: str, session_id: str, limit: int, before: str | None
    ) -> tuple[Session, list[Message]] | None:
        """The session joined with up to `limit` of its newest messages (older than `before`),
        oldest first, in one query; None when the session is not the user's."""
        raise NotImplementedError

    async def list_messages(
        self, uid: str, session_id: str, limit: int, before: str | None
    ) -> tuple[list[Message], bool] | None:
        """Newest `limit` messages older than `before`, oldest first, and has_more."""
        limit = max(0, limit)
        found = await self._window(uid, session_id, limit + 1, before)
        if found is None:
            return None
        messages = found[1]
        # One extra row was fetched: it is the oldest, so it sits first.
        return (messages[1:], True) if len(messages) > limit else (messages, False)

    async def load_history(
        self, uid: str, session_id: str, max_messages: int
    ) -> tuple[Session, list[Message]] | None:
        """The session and its newest max_messages messages, oldest first (one query)."""
        return await self._window(uid, session_id, max_messages, None)


def insert_sql(table: str, columns: Sequence[str], values: Sequence[str]) -> str:
    """`INSERT INTO table (columns) VALUES (values)`; each value is a placeholder or an SQL
    expression. Column names must come from the fixed lists in base, never from input."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)})"


def _upsert_sql(table: str, columns: Sequence[str], values: Sequence[str], sets: str) -> str:
    """INSERT that, on a conflict over columns[0], runs `UPDATE SET sets`."""
    return insert_sql(table, columns, values) + f" ON CONFLICT ({columns[0]}) DO UPDATE SET {sets}"


def quota_upsert_sql(values: Sequence[str]) -> str:
    """set_user_quota: QUOTA_FIELDS, created_at and updated_at (`values`: their placeholders);
    a user's existing override gets every field replaced and the new updated_at."""
    sets = ", ".join(f"{c} = excluded.{c}" for c in [*QUOTA_FIELDS[1:], "updated_at"])
    return _upsert_sql("ai_user_quota", [*QUOTA_FIELDS, "created_at", "updated_at"], values, sets)


def team_upsert_sql(values: Sequence[str]) -> str:
    """put_team: TEAM_FIELDS (`values`: their placeholders) RETURNING them; an existing team gets
    every field replaced but created_at, which restarts only when the team had been deleted."""
    sets = ", ".join(f"{c} = excluded.{c}" for c in TEAM_FIELDS[1:] if c != "created_at")
    sets += (
        ", created_at = CASE WHEN ai_team.status = 'deleted'"
        " THEN excluded.created_at ELSE ai_team.created_at END"
    )
    return _upsert_sql("ai_team", TEAM_FIELDS, values, sets) + f" RETURNING {TEAM_COLS}"


def key_changes(changes: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """update_key's changes as (column, value) in KEY_SCOPE_FIELDS order; a None name becomes
    "" (the column is NOT NULL). ValueError for a field that is not a scope field."""
    unknown = set(changes) - set(KEY_SCOPE_FIELDS)
    if unknown:
        raise ValueError(f"update_key: not scope field(s) {sorted(unknown)}")
    return [
        (c, "" if c == "name" and changes[c] is None else changes[c])
        for c in KEY_SCOPE_FIELDS
        if c in changes
    ]


def sessions_page_sql(uid: str, status: str | None, after: str | None, limit: str) -> str:
    """list_sessions: keyset page over (updated_at DESC, session_id ASC). Arguments are the
    placeholders; None leaves that filter out. An unknown `after` cursor gives no rows."""
    join, where = "", [f"s.uid = {uid}"]
    if status is not None:
        where.append(f"s.status = {status}")
    if after is not None:
        join = f" JOIN ai_session c ON c.uid = {uid} AND c.session_id = {after}"
        where.append(
            "(s.updated_at < c.updated_at"
            " OR (s.updated_at = c.updated_at AND s.session_id > c.session_id))"
        )
    return (
        f"SELECT {SESSION_COLS} FROM ai_session s{join} WHERE {' AND '.join(where)}"
        f" ORDER BY s.updated_at DESC, s.session_id LIMIT {limit}"
    )


def window_sql(uid: str, sid: str, limit: str, before: str | None, *, lateral: bool) -> str:
    """The session LEFT JOINed with its newest `limit` messages (older than `before`), ordered
    oldest first. Arguments are placeholders. With `lateral` the inner query follows the outer
    session row (PostgreSQL); without it, it filters on `sid` itself (SQLite has no LATERAL)."""
    session = "s.session_id" if lateral else sid
    older = ""
    if before is not None:
        older = (
            " AND id < (SELECT id FROM ai_message b"
            f" WHERE b.message_id = {before} AND b.session_id = {session})"
        )
    return (
        f"SELECT {SESSION_COLS}, m.message_id, m.role, m.content, m.tokens,"
        " m.model AS m_model, m.created_at AS m_created_at"
        f" FROM ai_session s LEFT JOIN{' LATERAL' if lateral else ''} ("
        "   SELECT id, message_id, role, content, tokens, model, created_at"
        f"  FROM ai_message WHERE session_id = {session}{older}"
        f"   ORDER BY id DESC LIMIT {limit}"
        " ) m ON TRUE"
        f" WHERE s.uid = {uid} AND s.session_id = {sid} ORDER BY m.id"
    )


def split_batch(items: Sequence[WriteItem]) -> tuple[list[RequestLogRow], list[MessageRow]]:
    """A writer batch as its request logs and its messages, each in submit order."""
    logs = [i for i in items if isinstance(i, RequestLogRow)]
    msgs = [i for i in items if isinstance(i, MessageRow)]
    return logs, msgs


def json_text(value: Any) -> str | None:
    """A JSON_COLUMNS field as the text stored (a tuple becomes an array); None stays None."""
    return None if value is None else orjson.dumps(value).decode()


def config_value(column: str, value: Any) -> Any:
    """Adapt a config value to its column type (JSON text for models, Decimal for prices)."""
    if column == "models":
        return orjson.dumps(value).decode()
    if column in PRICE_COLUMNS:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    return value


def config_upserts(
    providers: ConfigRows, models: ConfigRows, tiers: ConfigRows
) -> Iterator[tuple[str, list[str], list[Any]]]:
    """(table, columns, values) per config row, in mirror order; the first column is the key.

    Raises ValueError (from checked_columns) for a row with unknown or missing columns.
    """
    plan = [
        ("ai_provider", PROVIDER_COLUMNS, providers),
        ("ai_model", MODEL_COLUMNS, models),
        ("ai_quota_tier", TIER_COLUMNS, tiers),
    ]
    for table, allowed, rows in plan:
        for row in rows:
            cols = checked_columns(row, allowed, table)
            yield table, cols, [config_value(c, row[c]) for c in cols]


# The request log's token counts, summed by usage() and spend(): the whole input and output,
# then their parts (cache reads and writes of the input, reasoning of the output).
TOKEN_COLUMNS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cache_saved_tokens",  # of the response cache's hits, which charge no tokens
)
MONEY_SUMS = ("cost_usd", "cache_savings_usd", "cache_saved_usd")


def token_sums(total: str) -> str:
    """`total(r.c) AS c, ...` for every token column, with the backend's null-safe sum, and the
    number of response cache hits (`cache_hits`)."""
    hits = f"{total}(CASE WHEN r.cache_hit THEN 1 ELSE 0 END) AS cache_hits"
    return ", ".join([*(f"{total}(r.{c}) AS {c}" for c in TOKEN_COLUMNS), hits])


def _tokens(r: Row) -> dict[str, int]:
    return {c: int(r[c] or 0) for c in (*TOKEN_COLUMNS, "cache_hits")}


def _money(r: Row) -> dict[str, Decimal]:
    return {c: Decimal(r[c]) for c in MONEY_SUMS}


def usage_totals(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The usage() result from rows of (uid, model, requests, the token columns, cost_usd);
    counts as int, cost as an exact Decimal."""
    return [
        {
            "uid": r["uid"],
            "model": r["model"],
            "requests": int(r["requests"]),
            **_tokens(r),
            **_money(r),
        }
        for r in rows
    ]


def money_sums(money: str) -> str:
    """The MONEY_SUMS columns summed with `money`, the backend's exact sum of a column (a
    template with `{}` for it)."""
    return ", ".join(money.format(f"r.{c}") + f" AS {c}" for c in MONEY_SUMS)


def spend_sql(
    group: str,
    join: str,
    money: str,
    start: str,
    end: str,
    uid: str | None,
    team: str | None = None,
) -> str:
    """spend(): ai_request_log AS r (LEFT JOINed with `join`) in [start, end), of one user when
    `uid` is given (of one team when `team` is), summed per `group` (an SQL expression); `money`
    is the backend's exact sum (see money_sums). start, end, uid and team are placeholders."""
    who = f" AND r.uid = {uid}" if uid is not None else ""
    who += f" AND r.team = {team}" if team is not None else ""
    return (
        f"SELECT {group} AS grp, count(*) AS requests, {token_sums('sum')}, {money_sums(money)}"
        f" FROM ai_request_log r{join}"
        f" WHERE r.created_at >= {start} AND r.created_at < {end}{who} GROUP BY grp"
    )


def spend_totals(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The spend() result from rows of spend_sql: exact Decimal costs, by cost descending,
    then group (null last)."""
    groups: list[tuple[str | None, Decimal, Row]] = [
        (None if r["grp"] is None else str(r["grp"]), Decimal(r["cost_usd"]), r) for r in rows
    ]
    groups.sort(key=lambda g: (-g[1], g[0] is None, g[0] or ""))
    return [
        {
            "group": group,
            "requests": int(r["requests"]),
            **_tokens(r),
            **_money(r),
            "cost_usd": cost,
        }
        for group, cost, r in groups
    ]


def check_spend_group(group_by: str) -> None:
    """ValueError unless `group_by` is one of SPEND_GROUPS (it picks SQL text)."""
    if group_by not in SPEND_GROUPS:
        raise ValueError(f"spend: group_by must be one of {', '.join(SPEND_GROUPS)}")
