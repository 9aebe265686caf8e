"""Server-side console sessions (SPEC 19): who signed in, their role and team, the CSRF token,
and the sign-ins under way (state, nonce, PKCE verifier) between /ui/login and /ui/callback.
Kept in the configured Redis (shared by every instance) or in process memory; both expire.

Rules:
- The cookie carries a random token; the store keys a session by the token's SHA-256, so what
  the store holds cannot be replayed as a cookie.
- A pending sign-in is taken once (get and delete): a callback cannot be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError

from ..errors import ServiceUnavailable
from ..redis_clients import RedisClient

PENDING_TTL_S = 600.0  # a sign-in must come back from the provider within ten minutes


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in person."""

    user: str
    role: str
    team: str | None
    csrf_token: str
    expires_at: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A sign-in sent to the provider, waiting for its callback."""

    nonce: str
    code_verifier: str
    redirect_uri: str


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _key(kind: str, token: str) -> str:
    return f"{kind}:{hashlib.sha256(token.encode()).hexdigest()}"


class Blobs(Protocol):
    """Expiring bytes by key: the two backends."""

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def take(self, key: str) -> bytes | None: ...
    async def delete(self, key: str) -> None: ...


class MemoryBlobs:
    """In this process (redis.url memory://): one instance, one worker."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._items: dict[str, tuple[bytes, float]] = {}

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, until) in self._items.items() if until <= now]:
            del self._items[key]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        now = self.clock()
        self._sweep(now)
        self._items[key] = (value, now + ttl_s)

    async def get(self, key: str) -> bytes | None:
        found = self._items.get(key)
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    async def take(self, key: str) -> bytes | None:
        value = await self.get(key)
        self._items.pop(key, None)
        return value

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)


class RedisBlobs:
    """In the configured Redis, under `<prefix>:ui:`; a Redis error is a 503."""

    def __init__(self, client: RedisClient, prefix: str) -> None:
        self.client = client
        self.prefix = f"{prefix}:ui:"

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self.client.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))
        except RedisError:
            raise ServiceUnavailable("The console session store (Redis) is unavailable.") from None

    async def get(self, key: str) -> bytes | None:
        try:
            value: Any = await self.client.get(self.prefix + key)
        except RedisError:
            raise ServiceUnavailable("The console session store (Redis) is unavailable.") from None
        return value if isinstance(value, bytes) else None

    async def take(self, key: str) -> bytes | None:
        try:
            value: Any = await self.client.getdel(self.prefix + key)
        except RedisError:
            raise ServiceUnavailable("The console session store (Redis) is unavailable.") from None
        return value if isinstance(value, bytes) else None

    async def delete(self, key: str) -> None:
        try:
            await self.client.delete(self.prefix + key)
        except RedisError:
            raise ServiceUnavailable("The console session store (Redis) is unavailable.") from None


class ConsoleSessions:
    """Sessions and pending sign-ins over one Blobs backend."""

    def __init__(self, blobs: Blobs, ttl_s: float, clock: Callable[[], float] = time.time):
        self.blobs = blobs
        self.ttl_s = ttl_s
        self.clock = clock

    async def begin_login(self, state: str, pending: PendingLogin) -> None:
        await self.blobs.put(_key("login", state), orjson.dumps(asdict(pending)), PENDING_TTL_S)

    async def finish_login(self, state: str) -> PendingLogin | None:
        raw = await self.blobs.take(_key("login", state))
        return None if raw is None else PendingLogin(**orjson.loads(raw))

    async def create(self, user: str, role: str, team: str | None) -> tuple[str, ConsoleSession]:
        """A new session; returns the cookie's token and the session."""
        token = new_token()
        session = ConsoleSession(user, role, team, new_token(), self.clock() + self.ttl_s)
        await self.blobs.put(_key("session", token), orjson.dumps(asdict(session)), self.ttl_s)
        return token, session

    async def find(self, token: str) -> ConsoleSession | None:
        """The live session of a cookie's token, or None (unknown, ended or expired)."""
        raw = await self.blobs.get(_key("session", token))
        if raw is None:
            return None
        session = ConsoleSession(**orjson.loads(raw))
        return session if session.expires_at > self.clock() else None

    async def end(self, token: str) -> None:
        await self.blobs.delete(_key("session", token))
