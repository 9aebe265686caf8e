"""SIGHUP: re-read the config file and swap routing, upstreams, static keys, quota tiers, session
limits and the log level of a running gateway, without dropping a request in flight.

Rules:
- A file that fails to load or validate is refused with one log line; the running config stays.
- server, database, redis, auth.cache_refresh_s and auth.oidc take effect only on restart: their
  changes are logged as ignored and the running values are kept.
- Handlers read `Services` fields per request, so swapping those fields is the whole reload. The
  swap has no await in it: a handler sees either every old field or every new one.
- Unchanged providers keep their upstream client (and its warm connections). The client of a
  changed or removed provider is closed only once every request begun before the swap has ended,
  bounded by that provider's own timeout; a removed provider stays reachable by name until then,
  for requests that planned their route before the swap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any

from ..access.auth import Authenticator, StaticKeys
from ..config import Config, ConfigError, ProviderConfig, load
from ..proxy.upstream import Upstream, Upstreams, build_upstreams
from ..routing import DeploymentHealth, Router
from .services import Services

log = logging.getLogger("gateway.reload")

RESTART_SECTIONS = ("server", "database", "redis")
RETIRE_UNBOUNDED_S = 600.0  # how long to keep a retired client whose provider has no timeout


def prepare(current: Config, new: Config) -> tuple[Config, list[str]]:
    """The config to run after a reload, and the changed settings that wait for a restart."""
    ignored = [name for name in RESTART_SECTIONS if getattr(new, name) != getattr(current, name)]
    if new.auth.cache_refresh_s != current.auth.cache_refresh_s:
        ignored.append("auth.cache_refresh_s")  # the key poller was started with the old period
    if new.auth.oidc != current.auth.oidc:
        ignored.append("auth.oidc")  # the provider's client and the session store are built once
    running = replace(
        new,
        server=current.server,
        database=current.database,
        redis=current.redis,
        auth=replace(
            new.auth, cache_refresh_s=current.auth.cache_refresh_s, oidc=current.auth.oidc
        ),
    )
    return running, ignored


def rebuild_upstreams(
    old: Upstreams,
    old_providers: Mapping[str, ProviderConfig],
    new_providers: Mapping[str, ProviderConfig],
) -> tuple[Upstreams, dict[str, Upstream]]:
    """The Upstreams for `new_providers`, reusing unchanged clients, and the clients retired."""
    kept = {
        name: old.clients[name]
        for name, provider in new_providers.items()
        if name in old.clients and old_providers.get(name) == provider
    }
    fresh = build_upstreams({n: p for n, p in new_providers.items() if n not in kept}).clients
    clients = {**kept, **fresh}
    retired = {name: c for name, c in old.clients.items() if clients.get(name) is not c}
    lingering = {name: c for name, c in retired.items() if name not in clients}
    return Upstreams({**lingering, **clients}), retired


def _retire_bound(config: Config, retired: Mapping[str, Upstream]) -> float:
    """Seconds to wait for older requests: the longest a retired provider lets one run."""
    bounds = [config.server.shutdown_grace_s]
    for name in retired:
        provider = config.providers.get(name)
        if provider is not None and provider.type != "echo":
            bounds.append(provider.timeout_s or RETIRE_UNBOUNDED_S)
    return max(bounds)


class Reloader:
    """Applies a new config to a running app's Services (see the module rules)."""

    def __init__(
        self,
        services: Services,
        path: str,
        settled: Callable[[float], Awaitable[bool]],
        mirror: Callable[[Config], Awaitable[None]] | None = None,
    ):
        """`settled(timeout_s)` waits for the requests in flight now; `mirror` stores the
        config's providers, models and tiers for reporting."""
        self.services = services
        self.path = path
        self._settled = settled
        self._mirror = mirror
        self._tasks: set[asyncio.Task[None]] = set()
        self._retiring: dict[int, Upstream] = {}

    def reload(self) -> bool:
        """Re-read the config file (the SIGHUP handler); False when the file was refused."""
        try:
            new = load(self.path)
        except ConfigError as error:
            _refused(error)
            return False
        return self.apply(new)

    def apply(self, new: Config) -> bool:
        """Swap a loaded config in; False when it cannot be applied."""
        s = self.services
        config, ignored = prepare(s.config, new)
        if ignored:
            log.warning(
                "config reload: changes that need a restart were ignored",
                extra={"fields": {"ignored": ignored}},
            )
        previous = s.config
        upstreams, retired = rebuild_upstreams(s.upstreams, previous.providers, config.providers)
        health = s.router.health
        if (config.routing.cooldown_failures, config.routing.cooldown_s) != (
            previous.routing.cooldown_failures,
            previous.routing.cooldown_s,
        ):
            health = DeploymentHealth(config.routing.cooldown_failures, config.routing.cooldown_s)
        static = StaticKeys(config.auth.keys)
        # The swap: no await between these lines.
        s.router = Router(config, health)
        s.upstreams = upstreams
        s.authenticator = Authenticator(static, s.authenticator.stores)
        # The resolver keeps its cache of per-user overrides and its poller: only tiers change.
        s.quotas.set_tiers(config.quota)
        s.recorder.configure(log_content=config.logging.content)
        s.config = config
        logging.getLogger().setLevel(config.logging.level.upper())
        if retired:
            self._retiring.update({id(c): c for c in retired.values()})
            self._spawn(self._retire(retired, _retire_bound(previous, retired)))
        if self._mirror is not None:
            self._spawn(self._mirror_config(config))
        log.info(
            "config reloaded",
            extra={
                "fields": {
                    "source": new.source,
                    "models": len(config.models),
                    "providers": len(config.providers),
                    "replaced_clients": sorted(retired),
                }
            },
        )
        return True

    async def close(self) -> None:
        """At shutdown, once requests have drained: stop background work, close retired clients."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        retiring, self._retiring = list(self._retiring.values()), {}
        await asyncio.gather(*(c.close() for c in retiring), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retire(self, retired: Mapping[str, Upstream], bound_s: float) -> None:
        if not await self._settled(bound_s):
            log.warning(
                "closing replaced upstream clients with older requests still in flight",
                extra={"fields": {"waited_s": bound_s, "providers": sorted(retired)}},
            )
        self.services.upstreams.forget(retired)
        await asyncio.gather(*(c.close() for c in retired.values()), return_exceptions=True)
        for client in retired.values():
            self._retiring.pop(id(client), None)

    async def _mirror_config(self, config: Config) -> None:
        assert self._mirror is not None
        try:
            await self._mirror(config)
        except Exception as exc:
            log.warning(
                "config reload: could not mirror the config to the database",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}},
            )


def _refused(error: ConfigError) -> None:
    log.error(
        "config reload refused, keeping the running config",
        extra={"fields": {"reason": str(error)}},
    )
