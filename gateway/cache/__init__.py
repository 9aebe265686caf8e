"""The response cache (SPEC 16): identical requests answered once per tenant, from Redis or
memory. `key` says what is cacheable and names an entry; `entry` and `backends` keep them."""

from __future__ import annotations

from .backends import GuardedCache, MemoryCache, RedisCache, ResponseCache
from .entry import Entry
from .key import Mode, cache_key, cacheable, mode_of

__all__ = [
    "Entry",
    "GuardedCache",
    "MemoryCache",
    "Mode",
    "RedisCache",
    "ResponseCache",
    "cache_key",
    "cacheable",
    "mode_of",
]
