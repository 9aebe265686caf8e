"""Routing: a public model name -> the ordered upstream deployments to try for one request.
Pure: weighted order, fallbacks and deployment health, with `now` passed in; no I/O, no clock.

Rules:
- Exact model names win over wildcard routes; the longest matching `prefix/*` sends `prefix/<x>`
  upstream as `<x>`. A name that is itself a wildcard (`prefix/*`) is no model.
- A plan has groups: the model's deployments, then each of its fallbacks in order (resolved like
  a request name; a fallback's own fallbacks are not followed). Providers without an api_key are
  skipped, and a deployment already in an earlier group is not listed twice.
- Within a group, healthy deployments come in weighted-random order (Efraimidis-Spirakis:
  P(first) = weight / total), except that a half-open one comes first, so it is probed at once.
- At most `max_attempts` entries, chosen so fallbacks are never starved: first the best healthy
  deployment of each group in order (the model, then fallback 1, 2, ...), then the groups' other
  healthy deployments, then deployments cooling down (a last resort: a model whose deployments all
  cool down still answers once upstream is back), then repeats of the healthy ones, one round
  at a time (retries on the same deployment, e.g. for a model with one deployment). Chosen
  entries are ordered healthy before cooling, then by group, so a model's retries come before
  its fallbacks.
- Health: a deployment that fails `cooldown_failures` times in a row cools down for `cooldown_s`
  and is skipped while any other target is usable. Then it is half-open: the first attempt on it
  (claimed with `begin`) probes it while others pass it by; success closes it, failure reopens
  the cooldown. A probe that never reports back expires after `cooldown_s`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import FREE, UNPRICED, Config, Deployment, ModelConfig, Prices, ProviderConfig
from .config.catalog import catalog_prices
from .errors import ModelNotFound, ProviderNotConfigured, clip

MAX_TRACKED = 4096  # health entries kept before closed ones are pruned (wildcards make new ids)


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream attempt: which provider, which upstream model, at what prices."""

    model: ModelConfig
    provider: ProviderConfig
    upstream_model: str
    prices: Prices = UNPRICED

    @property
    def deployment_id(self) -> str:
        return f"{self.provider.name}/{self.upstream_model}"


@dataclass(slots=True)
class _Health:
    failures: int = 0  # consecutive
    cooldown_until: float = 0.0
    probe_until: float = 0.0  # > now while a half-open probe is in flight
    cooldowns: int = 0  # times a cooldown started
    last_error: str = ""
    last_failure_at: float | None = None


class DeploymentHealth:
    """Consecutive-failure counters, cooldowns and half-open probes, per deployment id."""

    def __init__(self, failures_to_cool: int, cooldown_s: float):
        self.failures_to_cool = max(1, failures_to_cool)
        self.cooldown_s = cooldown_s
        self._state: dict[str, _Health] = {}

    def state(self, deployment_id: str, now: float) -> str:
        """healthy | cooling_down | half_open (awaiting a probe) | probing (a probe in flight)."""
        s = self._state.get(deployment_id)
        if s is None or s.failures < self.failures_to_cool:
            return "healthy"
        if s.cooldown_until > now:
            return "cooling_down"
        return "probing" if s.probe_until > now else "half_open"

    def usable(self, deployment_id: str, now: float) -> bool:
        """Whether an attempt may go there now without being a last resort."""
        return self.state(deployment_id, now) in ("healthy", "half_open")

    def begin(self, deployment_id: str, now: float) -> None:
        """An attempt starts: on a half-open deployment it becomes the one probe."""
        if self.state(deployment_id, now) == "half_open":
            self._state[deployment_id].probe_until = now + self.cooldown_s

    def release(self, deployment_id: str) -> None:
        """An attempt ended with no verdict on the deployment (cancelled, or a client 4xx)."""
        s = self._state.get(deployment_id)
        if s is not None:
            s.probe_until = 0.0

    def success(self, deployment_id: str) -> bool:
        """Close the deployment; returns True when it was not healthy (a cooldown ends)."""
        s = self._state.get(deployment_id)
        if s is None:
            return False
        was_cooled = s.failures >= self.failures_to_cool
        s.failures, s.cooldown_until, s.probe_until = 0, 0.0, 0.0
        return was_cooled

    def failure(self, deployment_id: str, now: float, reason: str = "") -> bool:
        """Count a failure; returns True when this failure starts a cooldown."""
        s = self._state.get(deployment_id)
        if s is None:
            if len(self._state) >= MAX_TRACKED:
                self._prune(now)
            s = self._state[deployment_id] = _Health()
        s.failures += 1
        s.last_error, s.last_failure_at, s.probe_until = reason, now, 0.0
        if s.failures >= self.failures_to_cool:
            s.cooldown_until = now + self.cooldown_s
            s.cooldowns += 1
            return True
        return False

    def _prune(self, now: float) -> None:
        for deployment_id in [i for i in self._state if self.state(i, now) == "healthy"]:
            del self._state[deployment_id]

    def snapshot(self, now: float, known: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """Per deployment (the `known` ones, then any other with a history): its state,
        consecutive failures, cooldown left, cooldowns so far, and the last failure."""
        out = {}
        for deployment_id in dict.fromkeys([*known, *self._state]):
            s = self._state.get(deployment_id) or _Health()
            out[deployment_id] = {
                "state": self.state(deployment_id, now),
                "consecutive_failures": s.failures,
                "cooldown_remaining_s": round(max(0.0, s.cooldown_until - now), 3),
                "cooldowns": s.cooldowns,
                "last_error": s.last_error or None,
                "last_failure_s_ago": (
                    None if s.last_failure_at is None else round(now - s.last_failure_at, 3)
                ),
            }
        return out


class Router:
    """Resolves public model names against the config's models and plans attempts."""

    def __init__(self, config: Config, health: DeploymentHealth, rng: random.Random | None = None):
        self.models: Mapping[str, ModelConfig] = config.models
        self.providers: Mapping[str, ProviderConfig] = config.providers
        self.max_attempts = max(1, config.routing.max_attempts)
        self.health = health
        self.rng = rng or random.Random()
        self.catalog = config.pricing.catalog
        self._wildcards = sorted(
            ((name[:-1], model) for name, model in self.models.items() if model.is_wildcard),
            key=lambda item: -len(item[0]),
        )

    def lookup(self, name: str) -> tuple[ModelConfig, str]:
        """The model entry and, for a wildcard route, the upstream model taken from the name."""
        model = self.models.get(name)
        if model is not None and not model.is_wildcard:
            return model, ""
        if not name.endswith("/*"):
            for prefix, wildcard in self._wildcards:
                if name.startswith(prefix) and len(name) > len(prefix):
                    return wildcard, name[len(prefix) :]
        raise ModelNotFound(f"The model `{clip(name)}` does not exist.", param="model")

    def plan(self, name: str, now: float) -> list[Target]:
        """Ordered attempts for one request; raises ModelNotFound or ProviderNotConfigured."""
        model, suffix = self.lookup(name)
        if not model.fallbacks and len(model.deployments) == 1:  # the common case, unsorted
            only = self._targets(model, suffix)
            if only:
                usable, _ = self._order(only, now)
                return only * self.max_attempts if usable else only
        groups: list[tuple[list[Target], list[Target]]] = []
        seen: set[str] = set()
        for entry, entry_suffix in [(model, suffix), *map(self.lookup, model.fallbacks)]:
            targets = [t for t in self._targets(entry, entry_suffix) if t.deployment_id not in seen]
            seen.update(t.deployment_id for t in targets)
            groups.append(self._order(targets, now))
        if not seen:
            raise ProviderNotConfigured(
                f"The provider for model `{clip(name)}` is not configured.", param="model"
            )
        # Sort keys: (tier: 0 healthy / 1 cooling, group, repeat round, position in group).
        healthy = [(g, i, t) for g, (ok, _) in enumerate(groups) for i, t in enumerate(ok)]
        cooling = [(g, i, t) for g, (_, bad) in enumerate(groups) for i, t in enumerate(bad)]
        chosen = (
            [((0, g, 0, i), t) for g, i, t in healthy if i == 0]
            + [((0, g, 0, i), t) for g, i, t in healthy if i > 0]
            + [((1, g, 0, i), t) for g, i, t in cooling]
        )[: self.max_attempts]
        round_ = 1
        while healthy and len(chosen) < self.max_attempts:
            repeats = [((0, g, round_, i), t) for g, i, t in healthy]
            chosen += repeats[: self.max_attempts - len(chosen)]
            round_ += 1
        return [t for _, t in sorted(chosen, key=lambda kt: kt[0])]

    def _targets(self, model: ModelConfig, suffix: str) -> list[Target]:
        """The model's usable deployments, in weighted-random order."""
        usable = [d for d in model.deployments if self.providers[d.provider].configured]
        # Efraimidis-Spirakis: a weighted random order in one sort.
        keyed = sorted(usable, key=lambda d: -(self.rng.random() ** (1.0 / d.weight)))
        return [self._target(model, d, suffix or d.model or model.name) for d in keyed]

    def _target(self, model: ModelConfig, d: Deployment, upstream_model: str) -> Target:
        provider = self.providers[d.provider]
        return Target(model, provider, upstream_model, self.prices(model, d, upstream_model))

    def prices(self, model: ModelConfig, d: Deployment, upstream_model: str) -> Prices:
        """The deployment's own prices, else its model entry's, else the catalog's (cached)."""
        own = d.prices or model.prices
        if own is not None:
            return own
        provider = self.providers[d.provider]
        if provider.type == "echo":
            return FREE
        if not self.catalog:
            return UNPRICED
        return catalog_prices(provider.type, provider.base_url, upstream_model) or UNPRICED

    def _order(self, targets: list[Target], now: float) -> tuple[list[Target], list[Target]]:
        """(healthy with half-open first, cooling down or being probed)."""
        states = [self.health.state(t.deployment_id, now) for t in targets]
        half_open = [t for t, s in zip(targets, states, strict=True) if s == "half_open"]
        healthy = [t for t, s in zip(targets, states, strict=True) if s == "healthy"]
        cooling = [
            t for t, s in zip(targets, states, strict=True) if s not in ("healthy", "half_open")
        ]
        return half_open + healthy, cooling

    def available(self, model: ModelConfig) -> bool:
        """Whether a request for the model can reach some upstream (itself or a fallback)."""
        models = [model, *(self.lookup(f)[0] for f in model.fallbacks)]
        return any(self.providers[d.provider].configured for m in models for d in m.deployments)

    def deployment_ids(self) -> list[str]:
        """Every deployment the config names (wildcard routes have none until used)."""
        return list(
            dict.fromkeys(
                f"{d.provider}/{d.model or m.name}"
                for m in self.models.values()
                if not m.is_wildcard
                for d in m.deployments
            )
        )

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        """DeploymentHealth.snapshot for every deployment the config names, failed or not."""
        return self.health.snapshot(now, known=self.deployment_ids())

    def routes(self, now: float) -> list[dict[str, Any]]:
        """Per public model: deployments (weight, configured, health) and fallbacks."""
        out = []
        for m in self.models.values():
            deployments = []
            for d in m.deployments:
                upstream = d.model or ("*" if m.is_wildcard else m.name)
                deployment_id = f"{d.provider}/{upstream}"
                entry = {
                    "deployment": deployment_id,
                    "provider": d.provider,
                    "upstream_model": upstream,
                    "weight": d.weight,
                    "configured": self.providers[d.provider].configured,
                }
                if not m.is_wildcard:
                    entry.update(self.health.snapshot(now, [deployment_id])[deployment_id])
                deployments.append(entry)
            out.append(
                {"model": m.name, "deployments": deployments, "fallbacks": list(m.fallbacks)}
            )
        return out


def deployment_prices(config: Config) -> list[tuple[ModelConfig, Deployment, Prices | None]]:
    """Each deployment's prices as requests will see them; None for a wildcard route priced by
    the catalog, which prices each upstream model a request names."""
    router = Router(config, DeploymentHealth(1, 0.0))
    out: list[tuple[ModelConfig, Deployment, Prices | None]] = []
    for model in config.models.values():
        for d in model.deployments:
            own = d.prices or model.prices
            if own is None and model.is_wildcard and config.pricing.catalog:
                out.append((model, d, None))
            else:
                out.append((model, d, router.prices(model, d, d.model or model.name)))
    return out


def unpriced_models(config: Config) -> list[str]:
    """The models with a deployment priced nowhere (its requests cost 0)."""
    return sorted(
        {m.name for m, _, prices in deployment_prices(config) if prices and not prices.priced}
    )


def describe_prices(prices: Prices | None) -> str:
    """One line of a deployment's prices per million tokens, and where they come from."""
    if prices is None:
        return "catalog, per upstream model"
    if not prices.priced:
        return "none: cost 0"
    kinds = (
        ("in", prices.input),
        ("cached", prices.cached_input),
        ("write", prices.cache_write),
        ("write-1h", prices.cache_write_1h),
        ("out", prices.output),
    )
    text = " ".join(f"{name} {rate.base}" for name, rate in kinds)
    tiers = sorted({above for _, rate in kinds for above, _ in rate.tiers})
    for above in tiers:
        text += f"; above {above} input tokens: " + " ".join(
            f"{name} {rate.at(above + 1)}" for name, rate in kinds
        )
    return f"{text} ({prices.source})"
