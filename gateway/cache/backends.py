"""Where cache entries live: one process's memory (memory://), or Redis (a server, a Cluster or a
Sentinel-watched master) behind a guard that skips it while it fails: a cache that cannot be
reached is a miss, never an error the client sees."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("gateway.cache")

MAX_MEMORY_BYTES = 64 * 1024 * 1024  # a process's entries in all; the oldest go first


class ResponseCache(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The stored bytes, or None (missing or expired)."""
        ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep `value` under `key` for `ttl_s` seconds, replacing what was there."""
        ...


class MemoryCache:
    """A least-recently-used map, bounded in bytes; expiry on an injected clock."""

    def __init__(
        self, max_bytes: int = MAX_MEMORY_BYTES, clock: Callable[[], float] = time.monotonic
    ):
        self.max_bytes = max_bytes
        self.clock = clock
        self.size = 0
        self._map: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._map.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            self._drop(key)
            return None
        self._map.move_to_end(key)
        return found[1]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if key in self._map:
            self._drop(key)
        if len(value) > self.max_bytes:
            return
        self._map[key] = (self.clock() + ttl_s, value)
        self.size += len(value)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._map)))

    def _drop(self, key: str) -> None:
        _, value = self._map.pop(key)
        self.size -= len(value)


class RedisCache:
    """Entries as plain Redis strings with a PX expiry; errors propagate (GuardedCache)."""

    def __init__(self, redis: Any):
        self.redis = redis

    async def get(self, key: str) -> bytes | None:
        value = await self.redis.get(key)
        return None if value is None else bytes(value)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        await self.redis.set(key, value, px=max(1, math.ceil(ttl_s * 1000)))


class GuardedCache:
    """Redis as a cache that may go away: a failed call is a miss (or a lost write), counted by
    `on_error`, and Redis is not asked again for `retry_s`, so an outage costs each request
    nothing rather than a timeout. The first failure of an outage is logged, and its end."""

    def __init__(
        self,
        inner: ResponseCache,
        retry_s: float,
        on_error: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.inner = inner
        self.retry_s = retry_s
        self.on_error = on_error
        self.clock = clock
        self.down_until: float | None = None

    def _usable(self) -> bool:
        return self.down_until is None or self.clock() >= self.down_until

    def _failed(self, exc: Exception) -> None:
        self.on_error()
        if self.down_until is None:
            log.warning("response cache unavailable, requests go upstream: %s", exc)
        self.down_until = self.clock() + self.retry_s

    def _worked(self) -> None:
        if self.down_until is not None:
            self.down_until = None
            log.info("response cache available again")

    async def get(self, key: str) -> bytes | None:
        if not self._usable():
            return None
        try:
            value = await self.inner.get(key)
        except Exception as exc:  # redis-py raises RedisError and OSError subclasses
            self._failed(exc)
            return None
        self._worked()
        return value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if not self._usable():
            return
        try:
            await self.inner.put(key, value, ttl_s)
        except Exception as exc:
            self._failed(exc)
            return
        self._worked()
