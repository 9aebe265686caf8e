"""API keys: generation, SHA-256 hashing, and authentication from an in-process cache.
Static keys come from config; database keys are cached and re-polled, so revocations land fast."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from .config import StaticKey
from .errors import InvalidApiKey, ServiceUnavailable
from .polling import poll_forever
from .store import ApiKey, Store, StoreUnavailable

log = logging.getLogger("gateway.auth")

KEY_PREFIX = "sk-gw-"
POLL_OVERLAP = timedelta(seconds=10)  # re-read a margin so rows committed late are not missed


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user id, which key, and the key's tier (if it names one)."""

    user: str
    key_id: str
    tier: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """`sk-gw-` plus 43 random URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def bearer_token(header: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` header, or InvalidApiKey."""
    if not header or not header[:7].lower() == "bearer ":
        raise InvalidApiKey("Missing API key: send `Authorization: Bearer <key>`.")
    token = header[7:].strip()
    if not token:
        raise InvalidApiKey("Missing API key: send `Authorization: Bearer <key>`.")
    return token


class KeyStore(Protocol):
    """Resolves a key hash to its principal, or None."""

    async def lookup(self, key_hash: str) -> Principal | None: ...


class StaticKeys:
    """Keys listed in config.yaml."""

    def __init__(self, keys: Iterable[StaticKey]):
        self._keys = {hash_key(k.key): Principal(k.user, f"static:{k.name}", k.tier) for k in keys}

    async def lookup(self, key_hash: str) -> Principal | None:
        return self._keys.get(key_hash)


class CachedKeys:
    """Database keys behind an in-process cache.

    A hit costs no round trip. A background poll re-reads keys changed since the last poll
    (every `refresh_s`), so a revocation reaches every instance within about that time.
    Unknown keys are remembered briefly so a flood of bad keys cannot hammer the database.
    """

    def __init__(
        self,
        store: Store,
        refresh_s: float = 2.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.refresh_s = refresh_s
        self.max_entries = max_entries
        self.clock = clock
        self._hits: OrderedDict[str, tuple[Principal | None, float]] = OrderedDict()
        self._last_used: dict[str, datetime] = {}
        self._since = datetime(1970, 1, 1, tzinfo=UTC)

    async def lookup(self, key_hash: str) -> Principal | None:
        entry = self._hits.get(key_hash)
        now = self.clock()
        if entry is not None and (entry[0] is not None or now - entry[1] < self.refresh_s):
            principal = entry[0]
        else:
            try:
                row = await self.store.find_key(key_hash)
            except StoreUnavailable:
                raise ServiceUnavailable("The key database is unavailable.") from None
            principal = _principal(row)
            self._remember(key_hash, principal, now)
        if principal is not None:
            self._last_used[principal.key_id] = datetime.now(UTC)
        return principal

    def _remember(self, key_hash: str, principal: Principal | None, now: float) -> None:
        self._hits[key_hash] = (principal, now)
        self._hits.move_to_end(key_hash)
        while len(self._hits) > self.max_entries:
            self._hits.popitem(last=False)

    async def refresh(self) -> None:
        """Apply keys changed since the last poll, and record last-used times."""
        started = datetime.now(UTC)
        rows = await self.store.keys_changed_since(self._since - POLL_OVERLAP)
        now = self.clock()
        for row in rows:
            if row.key_hash in self._hits or row.status != "active":
                self._remember(row.key_hash, _principal(row), now)
        self._since = started
        if self._last_used:
            used, self._last_used = self._last_used, {}
            await self.store.touch_keys(used)

    async def run(self) -> None:
        """Poll forever (a background task)."""
        await poll_forever(self.refresh, self.refresh_s, "key cache", log)

    def invalidate(self) -> None:
        """Stub for the admin API's hook (POST/PATCH /admin/keys); the lead's cache reloads."""


def _principal(row: ApiKey | None) -> Principal | None:
    if row is None or row.status != "active":
        return None
    return Principal(row.uid, row.id, row.tier)


class Authenticator:
    """Static keys first, then the database cache."""

    def __init__(self, stores: Iterable[KeyStore]):
        self.stores = tuple(stores)

    async def authenticate(self, header: str | None) -> Principal:
        key_hash = hash_key(bearer_token(header))
        for store in self.stores:
            principal = await store.lookup(key_hash)
            if principal is not None:
                return principal
        raise InvalidApiKey("Incorrect API key provided.")
