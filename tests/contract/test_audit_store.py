"""ai_audit_log on both backends: entries come back as written (JSON before/after included),
newest first, narrowed by time, actor and team, and capped by the limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.store.audit import AuditEntry, AuditQuery

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(minutes: int, actor: str, team: str | None, **more: object) -> AuditEntry:
    return AuditEntry(
        created_at=T0 + timedelta(minutes=minutes), actor=actor, role="admin",
        action="key.update", target=f"k{minutes}", team=team, **more,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_entries_round_trip_newest_first(store):
    before = {"name": "", "max_budget_usd": "12.500000000", "models": ["gpt-4o", "é/*"]}
    after = {**before, "name": "laptop ☕", "metadata": {"nested": {"n": 1}}}
    await store.add_audit(entry(0, "ada", "core", before=before, after=after))
    await store.add_audit(entry(1, "admin-key", None, after={"id": "x"}))
    await store.add_audit(entry(2, "tom", "core"))
    rows = await store.list_audit(AuditQuery())
    assert [r.target for r in rows] == ["k2", "k1", "k0"]
    first = rows[2]
    assert (first.actor, first.role, first.action, first.team) == ("ada", "admin", "key.update",
                                                                   "core")  # fmt: skip
    assert (first.before, first.after) == (before, after)
    assert first.created_at == T0 and first.id is not None
    assert (rows[1].before, rows[1].after, rows[1].team) == (None, {"id": "x"}, None)


async def test_filters_and_limit(store):
    for minutes, actor, team in [(0, "ada", "core"), (10, "tom", "core"), (20, "ada", "other"),
                                 (30, "admin-key", None)]:  # fmt: skip
        await store.add_audit(entry(minutes, actor, team))

    async def targets(**query: object) -> list[str]:
        return [r.target for r in await store.list_audit(AuditQuery(**query))]  # type: ignore[arg-type]

    assert await targets(actor="ada") == ["k20", "k0"]
    assert await targets(team="core") == ["k10", "k0"]
    assert await targets(start=T0 + timedelta(minutes=10)) == ["k30", "k20", "k10"]
    assert await targets(end=T0 + timedelta(minutes=10)) == ["k0"]
    assert await targets(start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=25),
                         actor="ada") == ["k20"]  # fmt: skip
    assert await targets(limit=2) == ["k30", "k20"]
    assert await targets(actor="nobody") == []
