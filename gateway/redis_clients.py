"""The redis-py asyncio client for a `redis.url` target: Redis, RedisCluster, or the Redis of a
Sentinel-watched master. The app builds it once; the limiter and response affinity share it.

Every client fails fast and never retries by itself (bounded socket timeouts, no retry): while
Redis is away the FallbackLimiter limits per process and probes again later; that probe is also
what reconnects. A Cluster client re-reads the topology after a node fails.

A Sentinel client follows a failover: it asks the sentinels for the master on every new
connection, drops a connection whose server answers as a replica, and, at most every
MASTER_RECHECK_S, asks again before handing out a connection, moving its connections to the new
master once the sentinels name one. (Without that recheck a forced failover leaves the old master
writable, and counted on, until the sentinels demote it, which takes them seconds.) Sentinels that
cannot be asked at a recheck leave the connections where they are.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, TimeoutError

from .config.redis_url import RedisTarget

RedisClient = Redis | RedisCluster
MASTER_RECHECK_S = 1.0


class FollowingSentinelPool(SentinelConnectionPool):
    """A master's connection pool that asks the sentinels again every MASTER_RECHECK_S."""

    _next_check = 0.0

    async def get_connection(
        self, command_name: str | None = None, *keys: Any, **options: Any
    ) -> AbstractConnection:
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + MASTER_RECHECK_S
            # A new address disconnects the idle connections (they reconnect to it when used).
            with contextlib.suppress(ConnectionError, TimeoutError):
                await self.get_master_address()  # type: ignore[no-untyped-call]
        connection: AbstractConnection = await super().get_connection(  # type: ignore[no-untyped-call]
            command_name, *keys, **options
        )
        address = (getattr(connection, "host", None), getattr(connection, "port", None))
        if self.master_address is not None and address != tuple(self.master_address):
            try:  # it was busy when the master changed: to the new master now
                await connection.disconnect()
                await connection.connect()  # type: ignore[no-untyped-call]
            except BaseException:
                await self.release(connection)
                raise
        return connection


class SentinelRedis(Redis):
    """The master's client; closing it also closes the connections to the sentinels."""

    sentinels: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.sentinels is not None:
                for sentinel in self.sentinels.sentinels:  # Sentinel.aclose is redis 8 only
                    await sentinel.aclose()


def open_redis(target: RedisTarget, timeout_s: float) -> RedisClient:
    """A client for `target` (not "memory"); nothing connects until the first command."""
    if target.kind == "single":
        return Redis.from_url(
            target.url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
    if target.kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
    if target.kind == "sentinel":
        return _sentinel_master(target, timeout_s)
    raise ValueError(f"no Redis client for a {target.kind} target")


def _sentinel_master(target: RedisTarget, timeout_s: float) -> SentinelRedis:
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }
    # Through a typed name: redis 7 leaves Sentinel.__init__ unannotated, redis 8 annotates it.
    make_sentinel: Callable[..., Sentinel] = Sentinel
    sentinel = make_sentinel(list(target.nodes), sentinel_kwargs=dict(options), **options)
    master: SentinelRedis = sentinel.master_for(
        target.service,
        redis_class=SentinelRedis,
        connection_pool_class=FollowingSentinelPool,
        db=target.db,
        username=target.username,
        password=target.password,
    )
    master.sentinels = sentinel
    return master
