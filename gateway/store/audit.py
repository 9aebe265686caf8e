"""The audit log (ai_audit_log, SPEC 19): one row per change made through the admin API or the
console, with who made it, in which role, and the object before and after. Plain data and SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

AUDIT_FIELDS = ("created_at", "actor", "role", "action", "target", "team", "before", "after")
AUDIT_LIMIT_MAX = 1000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change: `before` / `after` are the object as the admin API shows it (None when it did
    not exist before, or no longer exists after); `team` is the team it belongs to, if any."""

    created_at: datetime
    actor: str
    role: str
    action: str  # key.create, key.update, key.revoke, team.create, ... quota.set
    target: str
    team: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A read of the audit log, newest first; each field that is set narrows it."""

    start: datetime | None = None  # created_at >= start
    end: datetime | None = None  # created_at < end
    actor: str | None = None
    team: str | None = None
    limit: int = 100


class AuditLog(Protocol):
    """What a store keeps of the audit log."""

    async def add_audit(self, entry: AuditEntry) -> None:
        """Append one entry."""
        ...

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """The entries the query selects, newest first, at most query.limit."""
        ...


def audit_select_sql(query: AuditQuery, marks: list[str]) -> tuple[str, list[Any]]:
    """The list_audit query with the backend's placeholders (`marks`, one per argument in the
    order used) and its arguments (times as given: the caller converts them)."""
    where: list[str] = []
    args: list[Any] = []
    for clause, value in (
        ("created_at >= {}", query.start),
        ("created_at < {}", query.end),
        ("actor = {}", query.actor),
        ("team = {}", query.team),
    ):
        if value is not None:
            where.append(clause.format(marks[len(args)]))
            args.append(value)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    args.append(query.limit)
    sql = (
        f"SELECT id, {', '.join(AUDIT_FIELDS)} FROM ai_audit_log{condition}"
        f" ORDER BY created_at DESC, id DESC LIMIT {marks[len(args) - 1]}"
    )
    return sql, args
