"""The SQLite store's governance queries (SPEC 10): key scope updates, the active keys, teams and
spend. A mixin of SqliteStore; like every query there, each one runs on the worker thread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gateway.store.base import TEAM_FIELDS, ApiKey, Team, key_row_id
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
from gateway.store.sqlite_schema import param, ts_text
from gateway.store.sqlite_thread import SqliteThread

_READ = RowReader(parse_time=datetime.fromisoformat)
_PUT_TEAM = team_upsert_sql(["?"] * len(TEAM_FIELDS))
# group_by -> (the group's SQL expression, what to join to ai_request_log r for it).
_SPEND_GROUPS = {
    "user": ("r.uid", ""),
    "key": ("r.key_id", ""),
    "team": ("r.team", ""),
    "model": ("r.model", ""),
    "tag": ("t.value", " LEFT JOIN json_each(r.tags) t"),  # no tags: one null group row
    "day": ("substr(r.created_at, 1, 10)", ""),  # timestamps are UTC text, date first
}


class SqliteGovernance:
    """update_key, active_keys, the teams and spend, over SqliteStore's worker thread."""

    _worker: SqliteThread

    async def update_key(self, key_id: str, changes: Mapping[str, Any]) -> ApiKey | None:
        """Set the given scope fields (None clears) and updated_at; the key after, or None."""
        pairs = key_changes(changes)
        row_id = key_row_id(key_id)
        if row_id is None:
            return None
        sets = "".join(f"{c} = ?, " for c, _ in pairs)
        args = [*(param(c, v) for c, v in pairs), ts_text(datetime.now(UTC)), row_id]
        row = await self._worker.run(
            lambda db: db.execute(
                f"UPDATE ai_api_key SET {sets}updated_at = ? WHERE id = ? RETURNING {KEY_COLS}",
                args,
            ).fetchone()
        )
        return _READ.key(row) if row else None

    async def get_key(self, key_id: str) -> ApiKey | None:
        row_id = key_row_id(key_id)
        if row_id is None:
            return None
        row = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {KEY_COLS} FROM ai_api_key WHERE id = ?", (row_id,)
            ).fetchone()
        )
        return _READ.key(row) if row else None

    async def active_keys(self) -> list[ApiKey]:
        """Every active key, by id."""
        rows = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {KEY_COLS} FROM ai_api_key WHERE status = 'active' ORDER BY id"
            ).fetchall()
        )
        return [_READ.key(r) for r in rows]

    async def put_team(self, team: Team) -> Team:
        """Insert or replace the team, active, updated_at now; as stored."""
        now = datetime.now(UTC)
        stored = replace(team, status="active", created_at=team.created_at or now, updated_at=now)
        args = [param(c, getattr(stored, c)) for c in TEAM_FIELDS]
        row = await self._worker.run(lambda db: db.execute(_PUT_TEAM, args).fetchone())
        return _READ.team(row)

    async def get_team(self, team_id: str) -> Team | None:
        """The team, whatever its status, or None."""
        row = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {TEAM_COLS} FROM ai_team WHERE id = ?", (team_id,)
            ).fetchone()
        )
        return _READ.team(row) if row else None

    async def list_teams(self) -> list[Team]:
        """Active teams by id."""
        rows = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {TEAM_COLS} FROM ai_team WHERE status = 'active' ORDER BY id"
            ).fetchall()
        )
        return [_READ.team(r) for r in rows]

    async def delete_team(self, team_id: str) -> bool:
        """Mark the active team deleted; False if there was none."""
        args = (ts_text(datetime.now(UTC)), team_id)
        gone = await self._worker.run(
            lambda db: (
                db.execute(
                    "UPDATE ai_team SET status = 'deleted', updated_at = ?"
                    " WHERE id = ? AND status = 'active'",
                    args,
                ).rowcount
            )
        )
        return bool(gone)

    async def teams_changed_since(self, since: datetime) -> list[Team]:
        """Teams whose updated_at is after `since`, oldest change first."""
        rows = await self._worker.run(
            lambda db: db.execute(
                f"SELECT {TEAM_COLS} FROM ai_team WHERE updated_at > ? ORDER BY updated_at, id",
                (ts_text(since),),
            ).fetchall()
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
        """Request-log sums per group over [start, end), exactly (decsum)."""
        check_spend_group(group_by)
        group, join = _SPEND_GROUPS[group_by]
        uid_mark = None if uid is None else ":uid"
        team_mark = None if team is None else ":team"
        sql = spend_sql(group, join, "decsum({})", ":start", ":end", uid_mark, team_mark)
        args = {"start": ts_text(start), "end": ts_text(end), "uid": uid, "team": team}
        rows = await self._worker.run(lambda db: db.execute(sql, args).fetchall())
        return spend_totals(rows)
