"""create_app(config): the aiohttp application, its routes, and the lifetime of every backend.
The only place that picks concrete backends (SQLite or PostgreSQL, memory or Redis) from config."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from ..access.auth import Authenticator, CachedKeys, StaticKeys
from ..access.console_sessions import ConsoleSessions, MemoryBlobs, RedisBlobs
from ..access.polling import maintain_forever
from ..access.quotas import QuotaResolver
from ..access.teams import TeamCache
from ..accounting.recorder import Recorder
from ..cache import GuardedCache, MemoryCache, RedisCache, ResponseCache
from ..config import Config
from ..config.redis_url import parse_redis_url
from ..limits import FallbackLimiter, MemoryLimiter, RateLimiter
from ..limits.redis import RedisLimiter
from ..metrics import Metrics
from ..proxy.affinity import MemoryAffinity, RedisAffinity
from ..proxy.upstream import build_upstreams
from ..redis_clients import RedisClient, open_redis
from ..routing import DeploymentHealth, Router
from ..store.backends import open_store
from ..store.reads import ConsistentReads
from ..store.writer import Writer
from ..tracing import Tracer, build_tracer
from . import (
    admin,
    chat,
    console,
    docs,
    embeddings,
    mcp,
    messages,
    models,
    ops,
    own_keys,
    requests_log,
    responses,
    sessions,
    signin,
    usage,
)
from .keys import MCP_FRONT, SERVICES, TRACER
from .lifecycle import INFLIGHT, RELOADER, InFlight
from .middleware import front_door, stamp_headers
from .reload import Reloader
from .services import Services

log = logging.getLogger("gateway.app")

REDIS_TIMEOUT_S = 0.5


def _limiter(config: Config) -> tuple[RateLimiter, RedisClient | None]:
    target = parse_redis_url(config.redis.url)
    ttl = config.redis.reservation_ttl_s
    if target.kind == "memory":
        return MemoryLimiter(reservation_ttl_s=ttl), None
    # One server, a Cluster (admissions slot by slot) or a Sentinel-watched master.
    client = open_redis(target, REDIS_TIMEOUT_S)
    primary = RedisLimiter(client, prefix=config.redis.prefix, reservation_ttl_s=ttl)
    fallback = FallbackLimiter(
        primary, MemoryLimiter(reservation_ttl_s=ttl), retry_every_s=config.redis.fallback_retry_s
    )
    return fallback, client


def mirror_rows(
    config: Config,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Providers, models and tiers as ai_provider / ai_model / ai_quota_tier rows."""
    providers = [
        {
            "name": p.name,
            "display_name": p.name,
            "status": "active" if p.configured else "not_configured",
            "models": [
                m.name
                for m in config.models.values()
                if any(d.provider == p.name for d in m.deployments)
            ],
            "is_default": False,
            "sort": i,
        }
        for i, p in enumerate(config.providers.values())
    ]
    model_rows = [
        {
            "provider_name": m.deployments[0].provider,
            "model": m.name,
            "display_name": m.display_name or m.name,
            "max_tokens": m.max_tokens or 0,
            "input_price": m.input_price,
            "output_price": m.output_price,
            "status": "active",
            "is_default": i == 0,
            "sort": i,
        }
        for i, m in enumerate(config.models.values())
    ]
    tiers = [{"tier": name, "rpm": t.rpm, "tpd": t.tpd} for name, t in config.quota.tiers.items()]
    return providers, model_rows, tiers


async def build_services(config: Config, metrics: Metrics) -> Services:
    """Connect every backend; applies the schema when the database has none."""
    store = await open_store(config.database.url)
    if not await store.has_schema():
        log.info("applying schema to an empty database")
    await store.migrate()
    await store.mirror_config(*mirror_rows(config))
    writer = Writer(
        store,
        batch_size=config.database.batch_size,
        flush_interval_s=config.database.flush_interval_s,
        max_queue=config.database.max_queue,
        spill_path=config.database.spill_path,
        on_depth=metrics.persist_queue_depth.set,
        on_failure=metrics.persist_failures.inc,
    )
    limiter, redis_client = _limiter(config)
    key_cache = CachedKeys(store, refresh_s=config.auth.cache_refresh_s)
    health = DeploymentHealth(config.routing.cooldown_failures, config.routing.cooldown_s)
    oidc = config.auth.oidc
    console_sessions: ConsoleSessions | None = None
    oidc_client: Any = None
    if oidc is not None:  # authlib loads only here
        from ..access.oidc import OidcClient

        blobs: MemoryBlobs | RedisBlobs = MemoryBlobs()
        if redis_client is not None:
            blobs = RedisBlobs(redis_client, config.redis.prefix)
        console_sessions = ConsoleSessions(blobs, oidc.session_ttl_s)
        oidc_client = OidcClient(oidc, aiohttp.ClientSession())
    return Services(
        console_sessions=console_sessions,
        oidc=oidc_client,
        config=config,
        router=Router(config, health),
        upstreams=build_upstreams(config.providers),
        authenticator=Authenticator(StaticKeys(config.auth.keys), [key_cache]),
        key_cache=key_cache,
        quotas=QuotaResolver(config.quota, store, refresh_s=config.auth.cache_refresh_s),
        teams=TeamCache(store, refresh_s=config.auth.cache_refresh_s),
        limiter=limiter,
        store=store,
        writer=writer,
        reads=ConsistentReads(store, writer),
        recorder=Recorder(writer, limiter, metrics, log_content=config.logging.content),
        metrics=metrics,
        redis=redis_client,
        affinity=(
            MemoryAffinity()
            if redis_client is None
            else RedisAffinity(redis_client, config.redis.prefix)
        ),
        cache=_response_cache(config, redis_client, metrics),
    )


def _response_cache(config: Config, redis: RedisClient | None, metrics: Metrics) -> ResponseCache:
    """The response cache's entries: in this process, or in Redis (skipped while it fails).
    Built whether or not a model has `cache:` (a reload may turn it on); idle costs nothing."""
    if redis is None:
        return MemoryCache()
    return GuardedCache(RedisCache(redis), config.redis.fallback_retry_s, metrics.cache_errors.inc)


async def close_services(s: Services) -> None:
    """Flush and close in dependency order: charges, writer, clients, store."""
    await s.recorder.drain()
    await s.writer.close(timeout_s=s.config.server.shutdown_grace_s)
    await s.upstreams.close()
    if s.oidc is not None:
        await s.oidc.http.close()
    await s.limiter.close()
    if s.redis is not None:
        await s.redis.aclose()
    await s.store.close()


def _start_mcp(app: web.Application, config: Config) -> asyncio.Task[None] | None:
    """The MCP gateway, when mcp_servers is configured: the `mcp` SDK loads only then. Its
    session manager and upstream connections live in one task (anyio scopes stay in one task)."""
    if not config.mcp_servers:
        return None
    from ..mcp.front import Front
    from ..mcp.hub import Hub

    front = app[MCP_FRONT] = Front(Hub(config.mcp_servers))
    return asyncio.create_task(front.serve(), name="mcp")


def create_app(config: Config, metrics: Metrics | None = None) -> web.Application:
    """The gateway application; backends are opened on startup and closed on cleanup."""
    app = web.Application(
        middlewares=[front_door],
        client_max_size=config.server.max_body_bytes,
        handler_args={"max_field_size": 16384},
    )
    metrics = metrics or Metrics()
    app[INFLIGHT] = InFlight()
    app[TRACER] = Tracer()  # no-op until the lifetime starts the configured one

    def lost_spans(count: int, reason: str) -> None:
        metrics.trace_export_failures.labels(reason).inc(count)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        tracer = app[TRACER] = build_tracer(config.telemetry, lost_spans)
        s = await build_services(config, metrics)
        app[SERVICES] = s
        s.writer.start()
        await asyncio.gather(
            s.key_cache.refresh(), s.quotas.refresh(), s.teams.refresh(), return_exceptions=True
        )
        pollers = [
            asyncio.create_task(s.key_cache.run()),
            asyncio.create_task(s.quotas.run()),
            asyncio.create_task(s.teams.run()),
            asyncio.create_task(
                maintain_forever(s.store.maintain, config.database.retention_days, log)
            ),
        ]
        mcp_task = _start_mcp(app, config)
        reloader = Reloader(
            s,
            config.source,
            app[INFLIGHT].settled,
            mirror=lambda new: s.store.mirror_config(*mirror_rows(new)),
        )
        app[RELOADER] = reloader
        yield
        await reloader.close()
        if mcp_task is not None:
            app[MCP_FRONT].stop()
            with contextlib.suppress(asyncio.CancelledError):
                await mcp_task
        for task in pollers:
            task.cancel()
        for task in pollers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await close_services(s)
        await tracer.close()

    app.cleanup_ctx.append(lifetime)
    app.on_response_prepare.append(stamp_headers)
    app.router.add_post("/v1/chat/completions", chat.chat_completions)
    app.router.add_post("/v1/embeddings", embeddings.embeddings)
    app.router.add_post("/v1/completions", embeddings.completions)
    app.router.add_get("/v1/models", models.list_models)
    app.router.add_get("/v1/models/{model:.+}", models.get_model)
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/readyz", ops.readyz)
    app.router.add_get("/metrics", ops.metrics)
    responses.add_routes(app)
    messages.add_routes(app)
    sessions.add_routes(app)
    usage.add_routes(app)
    admin.add_routes(app)
    docs.add_routes(app)
    requests_log.add_routes(app)
    own_keys.add_routes(app)
    signin.add_routes(app)
    console.add_routes(app)
    if config.mcp_servers:
        mcp.add_routes(app)
    return app
