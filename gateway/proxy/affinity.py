"""Response-id affinity: which deployment produced a Responses API answer, so follow-ups
(previous_response_id, GET, DELETE, input_items) reach it, and whose answer it is, so nobody else's
do. Shared through Redis, or per process."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

log = logging.getLogger("gateway.affinity")

TTL_S = 30 * 3600  # the SPEC asks for at least 24 hours
MAX_LOCAL = 100_000  # per-process entries kept before the oldest are dropped


@dataclass(frozen=True, slots=True)
class Remembered:
    """A relayed response: the deployment that made it and its owner (the user, the key, and the
    public model asked for, which a scoped key's list must allow)."""

    deployment_id: str
    user: str
    key_id: str
    model: str

    def encode(self) -> bytes:
        return orjson.dumps([self.deployment_id, self.user, self.key_id, self.model])

    @classmethod
    def decode(cls, value: bytes | str) -> Remembered | None:
        """The entry, or None for one this version cannot read (an ownerless older entry)."""
        try:
            fields = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if not (isinstance(fields, list) and len(fields) == 4):
            return None
        if not all(isinstance(f, str) for f in fields):
            return None
        return cls(*fields)


class ResponseAffinity(Protocol):
    async def remember(self, response_id: str, entry: Remembered) -> None: ...

    async def lookup(self, response_id: str) -> Remembered | None: ...


class MemoryAffinity:
    """One process's map, oldest entries dropped past MAX_LOCAL or TTL_S."""

    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_LOCAL):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._map: OrderedDict[str, tuple[Remembered, float]] = OrderedDict()

    async def remember(self, response_id: str, entry: Remembered) -> None:
        self._map[response_id] = (entry, time.monotonic() + self.ttl_s)
        self._map.move_to_end(response_id)
        while len(self._map) > self.max_entries:
            self._map.popitem(last=False)

    async def lookup(self, response_id: str) -> Remembered | None:
        found = self._map.get(response_id)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]


class RedisAffinity:
    """`{prefix}:resp:{<id>}` -> the Remembered entry as JSON, expiring after TTL_S; a Redis
    failure means "unknown" (as for an id nobody relayed), never a 5xx for the client."""

    def __init__(self, redis: Any, prefix: str, ttl_s: int = TTL_S):
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    def _key(self, response_id: str) -> str:
        return f"{self.prefix}:resp:{{{response_id}}}"

    async def remember(self, response_id: str, entry: Remembered) -> None:
        try:
            await self.redis.set(self._key(response_id), entry.encode(), ex=self.ttl_s)
        except Exception as exc:  # redis-py raises RedisError and OSError subclasses
            log.warning("response affinity not stored: %s", exc)

    async def lookup(self, response_id: str) -> Remembered | None:
        try:
            value = await self.redis.get(self._key(response_id))
        except Exception as exc:
            log.warning("response affinity lookup failed: %s", exc)
            return None
        return None if value is None else Remembered.decode(value)
