"""The objects a running gateway shares between requests, built once by web/app.py.
Handlers reach them through one AppKey; nothing here is a module global."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..access.auth import Authenticator, CachedKeys
from ..access.console_sessions import ConsoleSessions
from ..access.quotas import QuotaResolver
from ..access.teams import TeamCache
from ..accounting.recorder import Recorder
from ..cache import MemoryCache, ResponseCache
from ..config import Config
from ..limits import RateLimiter
from ..metrics import Metrics
from ..proxy.affinity import MemoryAffinity, ResponseAffinity
from ..proxy.upstream import Upstreams
from ..routing import Router
from ..store import Store
from ..store.reads import ConsistentReads
from ..store.writer import Writer


@dataclass(slots=True)
class Services:
    """Everything a handler may use."""

    config: Config
    router: Router
    upstreams: Upstreams
    authenticator: Authenticator
    key_cache: CachedKeys
    quotas: QuotaResolver
    limiter: RateLimiter
    store: Store
    writer: Writer
    recorder: Recorder
    metrics: Metrics
    reads: ConsistentReads
    redis: Any = None  # the Redis or RedisCluster client, unless redis.url is memory://
    affinity: ResponseAffinity = field(default_factory=MemoryAffinity)
    # Console sign-in (auth.oidc): the sessions, and the provider's client (an OidcClient, built
    # only when configured so that authlib is imported only then).
    console_sessions: ConsoleSessions | None = None
    oidc: Any = None
    teams: TeamCache = field(default_factory=lambda: TeamCache(None))
    cache: ResponseCache = field(default_factory=MemoryCache)  # the response cache's entries
    clock: Callable[[], float] = time.monotonic  # routing's `now` (cooldowns); tests replace it
    # Unix time for the limiter: rpm buckets, token days, budget periods and reservation expiry
    # at admission and at settlement. Replace it with use_wall_clock, never by assignment.
    wall_clock: Callable[[], float] = time.time
    started: int = field(default_factory=lambda: int(time.time()))  # /v1/models' `created`

    def use_wall_clock(self, clock: Callable[[], float]) -> None:
        """Read the limiter's `now` from `clock`, at admission and at settlement alike (tests
        move it across a UTC midnight)."""
        self.wall_clock = clock
        self.recorder.wall_clock = clock
