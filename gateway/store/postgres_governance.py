"""The PostgreSQL store's governance queries (SPEC 10): key scope updates, the active keys, teams
and spend. A mixin of PostgresStore, on its pooled connections (`_conn`)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.store.base import TEAM_FIELDS, ApiKey, Team, key_row_id, utc
from gateway.store.common import (
    KEY_COLS,
    TEAM_COLS,
    RowReader,
    check_spend_group,
    key_changes,
    spend_sql,
    spend_totals,
    team_upsert_sql,
)
from gateway.store.postgres_params import marks, param

_READ = RowReader(parse_time=lambda value: value)
_PUT_TEAM = team_upsert_sql(marks(len(TEAM_FIELDS)))
# group_by -> (the group's SQL expression, what to join to ai_request_log r for it).
_SPEND_GROUPS = {
    "user": ("r.uid", ""),
    "key": ("r.key_id", ""),
    "team": ("r.team", ""),
    "model": ("r.model", ""),
    "tag": (  # no tags: one null group row
        "t.tag",
        " LEFT JOIN LATERAL jsonb_array_elements_text(r.tags::jsonb) AS t(tag) ON TRUE",
    ),
    "day": ("to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')", ""),
}


class PostgresGovernance:
    """update_key, active_keys, the teams and spend, over PostgresStore's connections."""

    def _conn(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        raise NotImplementedError  # PostgresStore's

    async def update_key(self, key_id: str, changes: Mapping[str, Any]) -> ApiKey | None:
        """Set the given scope fields (None clears) and updated_at; the key after, or None."""
        pairs = key_changes(changes)
        row_id = key_row_id(key_id)
        if row_id is None:
            return None
        sets = "".join(f"{c} = ${i}, " for i, (c, _) in enumerate(pairs, start=2))
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"UPDATE ai_api_key SET {sets}updated_at = now() WHERE id = $1"
                f" RETURNING {KEY_COLS}",
                row_id,
                *(param(c, v) for c, v in pairs),
            )
        return _READ.key(row) if row else None

    async def get_key(self, key_id: str) -> ApiKey | None:
        row_id = key_row_id(key_id)
        if row_id is None:
            return None
        async with self._conn() as conn:
            row = await conn.fetchrow(f"SELECT {KEY_COLS} FROM ai_api_key WHERE id = $1", row_id)
        return _READ.key(row) if row else None

    async def active_keys(self) -> list[ApiKey]:
        """Every active key, by id."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {KEY_COLS} FROM ai_api_key WHERE status = 'active' ORDER BY id"
            )
        return [_READ.key(r) for r in rows]

    async def put_team(self, team: Team) -> Team:
        """Insert or replace the team, active, updated_at now; as stored."""
        now = datetime.now(UTC)
        stored = replace(team, status="active", created_at=team.created_at or now, updated_at=now)
        async with self._conn() as conn:
            row = await conn.fetchrow(
                _PUT_TEAM, *(param(c, getattr(stored, c)) for c in TEAM_FIELDS)
            )
        assert row is not None
        return _READ.team(row)

    async def get_team(self, team_id: str) -> Team | None:
        """The team, whatever its status, or None."""
        async with self._conn() as conn:
            row = await conn.fetchrow(f"SELECT {TEAM_COLS} FROM ai_team WHERE id = $1", team_id)
        return _READ.team(row) if row else None

    async def list_teams(self) -> list[Team]:
        """Active teams by id."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {TEAM_COLS} FROM ai_team WHERE status = 'active' ORDER BY id"
            )
        return [_READ.team(r) for r in rows]

    async def delete_team(self, team_id: str) -> bool:
        """Mark the active team deleted; False if there was none."""
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE ai_team SET status = 'deleted', updated_at = now()"
                " WHERE id = $1 AND status = 'active'",
                team_id,
            )
        return bool(status != "UPDATE 0")

    async def teams_changed_since(self, since: datetime) -> list[Team]:
        """Teams whose updated_at is after `since`, oldest change first."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {TEAM_COLS} FROM ai_team WHERE updated_at > $1 ORDER BY updated_at, id",
                utc(since),
            )
        return [_READ.team(r) for r in rows]

    async def spend(
        self,
        group_by: str,
        start: datetime,
        end: datetime,
        uid: str | None = None,
        team: str | None = None,
    ) -> list[dict[str, Any]]:
        """Request-log sums per group over [start, end), exactly (NUMERIC)."""
        check_spend_group(group_by)
        group, join = _SPEND_GROUPS[group_by]
        args: list[Any] = [utc(start), utc(end)]
        uid_mark = team_mark = None
        if uid is not None:
            args.append(uid)
            uid_mark = f"${len(args)}"
        if team is not None:
            args.append(team)
            team_mark = f"${len(args)}"
        money = "COALESCE(sum({}), 0)"
        sql = spend_sql(group, join, money, "$1", "$2", uid_mark, team_mark)
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return spend_totals(rows)
