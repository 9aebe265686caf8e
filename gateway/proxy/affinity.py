"""Response-id affinity: which deployment produced a Responses API answer, so follow-ups
(previous_response_id, GET, DELETE, input_items) reach it. Shared through Redis, or per process."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("gateway.affinity")

TTL_S = 30 * 3600  # the SPEC asks for at least 24 hours
MAX_LOCAL = 100_000  # per-process entries kept before the oldest are dropped


class ResponseAffinity(Protocol):
    async def remember(self, response_id: str, deployment_id: str) -> None: ...

    async def lookup(self, response_id: str) -> str | None: ...


class MemoryAffinity:
    """One process's map, oldest entries dropped past MAX_LOCAL or TTL_S."""

    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_LOCAL):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._map: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def remember(self, response_id: str, deployment_id: str) -> None:
        self._map[response_id] = (deployment_id, time.monotonic() + self.ttl_s)
        self._map.move_to_end(response_id)
        while len(self._map) > self.max_entries:
            self._map.popitem(last=False)

    async def lookup(self, response_id: str) -> str | None:
        found = self._map.get(response_id)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]


class RedisAffinity:
    """`{prefix}:resp:{<id>}` -> deployment id, expiring after TTL_S; a Redis failure means
    "unknown" (the request is routed as a new one), never an error for the client."""

    def __init__(self, redis: Any, prefix: str, ttl_s: int = TTL_S):
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    def _key(self, response_id: str) -> str:
        return f"{self.prefix}:resp:{{{response_id}}}"

    async def remember(self, response_id: str, deployment_id: str) -> None:
        try:
            await self.redis.set(self._key(response_id), deployment_id, ex=self.ttl_s)
        except Exception as exc:  # redis-py raises RedisError and OSError subclasses
            log.warning("response affinity not stored: %s", exc)

    async def lookup(self, response_id: str) -> str | None:
        try:
            value = await self.redis.get(self._key(response_id))
        except Exception as exc:
            log.warning("response affinity lookup failed: %s", exc)
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
