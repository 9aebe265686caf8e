"""API keys: generation, SHA-256 hashing, and authentication from an in-process cache.
Static keys come from config; every active database key is held in memory and re-polled, so
revocations land fast and an unknown or malformed key never costs a database round trip."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from ..config import StaticKey
from ..errors import InvalidApiKey, ServiceUnavailable
from ..store import ApiKey, Store, StoreUnavailable
from .polling import ChangedSince, poll_forever

log = logging.getLogger("gateway.auth")

KEY_PREFIX = "sk-gw-"
KEY_MIN_LENGTH = len(KEY_PREFIX) + 32
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def could_be_key(token: str) -> bool:
    """Whether `token` has the shape of a gateway key (checked before any lookup)."""
    return (
        token.startswith(KEY_PREFIX)
        and KEY_MIN_LENGTH <= len(token) <= 256
        and _KEY_CHARS.issuperset(token[len(KEY_PREFIX) :])
    )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user id, which key, the key's tier and its scopes (SPEC 10)."""

    user: str
    key_id: str
    tier: str | None = None
    models: tuple[str, ...] | None = None  # None: any model
    expires_at: datetime | None = None
    rpm: int | None = None
    tpd: int | None = None
    max_budget_usd: Decimal | None = None
    budget_period: str | None = None
    team: str | None = None
    metadata: dict[str, Any] | None = None
    max_parallel_requests: int | None = None
    mcp_tools: tuple[str, ...] | None = None  # None: any MCP tool


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
    if not (token.isascii() and token.isprintable()):  # bad bytes arrive as lone surrogates
        raise InvalidApiKey("Incorrect API key provided.")
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
    """Every active database key, held in process.

    A lookup costs no round trip, known key or not: the first refresh loads all active keys and
    a background poll applies keys changed since (every `refresh_s`), so a new key or a
    revocation reaches every instance within about that time. Until the first load has
    succeeded (the database was down at start), a miss asks the database, remembered briefly.
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
        self._changes = ChangedSince()
        self._loaded = False  # every active key is in _hits

    async def lookup(self, key_hash: str) -> Principal | None:
        entry = self._hits.get(key_hash)
        now = self.clock()
        if entry is None and self._loaded:
            return None
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
        """Load every active key (first), then apply keys changed since the last poll, and
        record last-used times."""
        now = self.clock()
        if not self._loaded:
            for row in await self.store.active_keys():
                self._remember(row.key_hash, _principal(row), now)
            self._loaded = True
        rows = await self.store.keys_changed_since(self._changes.begin())
        for row in rows:
            principal = _principal(row)
            if principal is None:
                self._hits.pop(row.key_hash, None)
            else:
                self._remember(row.key_hash, principal, now)
        self._changes.advance()
        if self._last_used:
            used, self._last_used = self._last_used, {}
            await self.store.touch_keys(used)

    async def run(self) -> None:
        """Poll forever (a background task)."""
        await poll_forever(self.refresh, self.refresh_s, "key cache", log)

    def apply(self, row: ApiKey) -> None:
        """Take a key created or changed on this instance (admin API) into the cache at once, so
        the caller can use it straight away; other instances see it at their next poll."""
        principal = _principal(row)
        if principal is None:
            self._hits.pop(row.key_hash, None)
        else:
            self._remember(row.key_hash, principal, self.clock())


def _principal(row: ApiKey | None) -> Principal | None:
    if row is None or row.status != "active":
        return None
    return Principal(
        row.uid,
        row.id,
        row.tier,
        models=row.models,
        expires_at=row.expires_at,
        rpm=row.rpm,
        tpd=row.tpd,
        max_budget_usd=row.max_budget_usd,
        budget_period=row.budget_period,
        team=row.team,
        metadata=row.metadata,
        max_parallel_requests=row.max_parallel_requests,
        mcp_tools=row.mcp_tools,
    )


class Authenticator:
    """Static keys first (any text), then, for text shaped like a gateway key, the database
    keys' cache."""

    def __init__(self, static: StaticKeys, stores: Iterable[KeyStore]):
        self.static = static
        self.stores = tuple(stores)

    async def authenticate(self, header: str | None) -> Principal:
        token = bearer_token(header)
        key_hash = hash_key(token)
        principal = await self.static.lookup(key_hash)
        if principal is None and could_be_key(token):
            for store in self.stores:
                principal = await store.lookup(key_hash)
                if principal is not None:
                    break
        if principal is None:
            raise InvalidApiKey("Incorrect API key provided.")
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            raise InvalidApiKey("This API key has expired.", code="expired_api_key")
        return principal
