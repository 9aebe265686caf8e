"""Teams as the request path sees them: held in process, loaded at start and re-polled, so a
team's budget, model list and limits reach every instance within seconds of an admin change."""

from __future__ import annotations

import logging

from ..store import Store, Team
from .polling import ChangedSince, poll_forever

log = logging.getLogger("gateway.teams")


class TeamCache:
    """Active teams by id; a deleted team is dropped (its members count as team-less)."""

    def __init__(self, store: Store | None, refresh_s: float = 2.0):
        self.store = store
        self.refresh_s = refresh_s
        self._teams: dict[str, Team] = {}
        self._changes = ChangedSince()

    def get(self, team_id: str | None) -> Team | None:
        return self._teams.get(team_id) if team_id else None

    def apply(self, team: Team) -> None:
        """Take a change into the cache at once (the admin API on this instance)."""
        if team.status == "active":
            self._teams[team.id] = team
        else:
            self._teams.pop(team.id, None)

    async def refresh(self) -> None:
        if self.store is None:
            return
        for team in await self.store.teams_changed_since(self._changes.begin()):
            self.apply(team)
        self._changes.advance()

    async def run(self) -> None:
        """Poll forever (a background task)."""
        await poll_forever(self.refresh, self.refresh_s, "team", log)
