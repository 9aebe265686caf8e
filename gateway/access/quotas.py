"""Which limits apply to a user: override row, else tier, else the default tier (0 = unlimited).
Overrides are cached in process and re-polled, so an admin change lands everywhere in seconds."""

from __future__ import annotations

import logging

from ..config import QuotaConfig
from ..limits import Limits
from ..store import QuotaOverride, Store
from .polling import ChangedSince, poll_forever

log = logging.getLogger("gateway.quotas")


class QuotaResolver:
    """Resolves Limits for (user, key tier) from config tiers and cached per-user overrides."""

    def __init__(self, quota: QuotaConfig, store: Store | None, refresh_s: float = 2.0):
        self.quota = quota
        self.store = store
        self.refresh_s = refresh_s
        self._overrides: dict[str, QuotaOverride] = {}
        self._changes = ChangedSince()

    def limits_for(self, user: str, key_tier: str | None) -> Limits:
        """The user's limits: override fields, else the override's tier (or the key's tier),
        else the default tier; an unknown tier name counts as the default tier."""
        override = self._overrides.get(user)
        base = self.quota.tiers[self.tier_for(user, key_tier)]
        if override is None:
            return Limits(rpm=base.rpm, tpd=base.tpd)
        return Limits(
            rpm=base.rpm if override.rpm is None else override.rpm,
            tpd=base.tpd if override.tpd is None else override.tpd,
        )

    def tier_for(self, user: str, key_tier: str | None) -> str:
        """The name of the tier `limits_for` starts from."""
        override = self._overrides.get(user)
        tier = (override.tier if override else None) or key_tier
        return tier if tier is not None and tier in self.quota.tiers else self.quota.default_tier

    def set_tiers(self, quota: QuotaConfig) -> None:
        """New tiers (a config reload); the cached overrides and the poller stay."""
        self.quota = quota

    def override_for(self, user: str) -> QuotaOverride | None:
        """The user's cached override (team and budget live there too)."""
        return self._overrides.get(user)

    def apply(self, override: QuotaOverride) -> None:
        """Take an override into the cache at once (used by the admin API on this instance)."""
        self._overrides[override.uid] = override

    async def refresh(self) -> None:
        """Load overrides changed since the last poll (with an overlap for clock skew)."""
        if self.store is None:
            return
        for override in await self.store.quota_overrides_changed_since(self._changes.begin()):
            self._overrides[override.uid] = override
        self._changes.advance()

    async def run(self) -> None:
        """Poll forever (a background task)."""
        await poll_forever(self.refresh, self.refresh_s, "quota override", log)
