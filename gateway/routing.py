"""Routing: a public model name -> the ordered upstream deployments to try for one request.
Pure: weighted choice, cooldowns (with an injected clock) and fallbacks; no I/O.

Rules:
- Exact model names win over wildcard routes; `prefix/*` sends `prefix/<x>` upstream as `<x>`.
- A plan lists the model's deployments in weighted-random order (healthy first, cooling-down last),
  then each fallback's deployments, skipping providers that are not configured; at most
  `max_attempts` entries.
- A deployment that fails `cooldown_failures` times in a row cools down for `cooldown_s`; after
  that one request may try it (half-open): success closes it, failure reopens the cooldown.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from .config import Config, ModelConfig, ProviderConfig
from .errors import ModelNotFound, ProviderNotConfigured


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream attempt: which provider, which upstream model, whose prices."""

    model: ModelConfig
    provider: ProviderConfig
    upstream_model: str

    @property
    def deployment_id(self) -> str:
        return f"{self.provider.name}/{self.upstream_model}"


@dataclass(slots=True)
class _Health:
    failures: int = 0
    cooldown_until: float = 0.0


class DeploymentHealth:
    """Consecutive-failure counters and cooldowns per deployment id."""

    def __init__(self, failures_to_cool: int, cooldown_s: float):
        self.failures_to_cool = max(1, failures_to_cool)
        self.cooldown_s = cooldown_s
        self._state: dict[str, _Health] = {}

    def cooling(self, deployment_id: str, now: float) -> bool:
        state = self._state.get(deployment_id)
        return state is not None and state.cooldown_until > now

    def success(self, deployment_id: str) -> None:
        state = self._state.get(deployment_id)
        if state is not None:
            state.failures = 0
            state.cooldown_until = 0.0

    def failure(self, deployment_id: str, now: float) -> bool:
        """Count a failure; returns True when this failure starts a cooldown."""
        state = self._state.setdefault(deployment_id, _Health())
        state.failures += 1
        if state.failures >= self.failures_to_cool:
            state.cooldown_until = now + self.cooldown_s
            return True
        return False

    def snapshot(self, now: float) -> dict[str, dict]:
        """Per deployment: consecutive failures, state and seconds of cooldown left."""
        out = {}
        for deployment_id, state in self._state.items():
            if state.cooldown_until > now:
                status = "cooling_down"
            elif state.failures >= self.failures_to_cool:
                status = "half_open"
            else:
                status = "healthy"
            out[deployment_id] = {
                "consecutive_failures": state.failures,
                "state": status,
                "cooldown_remaining_s": round(max(0.0, state.cooldown_until - now), 3),
            }
        return out


class Router:
    """Resolves public model names against the config's models."""

    def __init__(self, config: Config, health: DeploymentHealth, rng: random.Random | None = None):
        self.models: Mapping[str, ModelConfig] = config.models
        self.providers: Mapping[str, ProviderConfig] = config.providers
        self.max_attempts = max(1, config.routing.max_attempts)
        self.health = health
        self.rng = rng or random.Random()
        self._wildcards = sorted(
            ((name[:-1], model) for name, model in self.models.items() if model.is_wildcard),
            key=lambda item: -len(item[0]),
        )

    def lookup(self, name: str) -> tuple[ModelConfig, str]:
        """The model entry and, for a wildcard route, the upstream model taken from the name."""
        model = self.models.get(name)
        if model is not None and not model.is_wildcard:
            return model, ""
        for prefix, wildcard in self._wildcards:
            if name.startswith(prefix) and len(name) > len(prefix):
                return wildcard, name[len(prefix) :]
        raise ModelNotFound(f"The model `{name}` does not exist.", param="model")

    def plan(self, name: str, now: float) -> list[Target]:
        """Ordered attempts for one request; raises ModelNotFound or ProviderNotConfigured."""
        model, suffix = self.lookup(name)
        targets = self._targets(model, suffix, now)
        for fallback in model.fallbacks:
            targets.extend(self._targets(self.models[fallback], "", now))
        if not targets:
            raise ProviderNotConfigured(
                f"The provider for model `{name}` is not configured.", param="model"
            )
        return targets[: self.max_attempts]

    def _targets(self, model: ModelConfig, suffix: str, now: float) -> list[Target]:
        usable = [d for d in model.deployments if self.providers[d.provider].configured]
        # Efraimidis-Spirakis: a weighted random order in one sort.
        keyed = sorted(usable, key=lambda d: -(self.rng.random() ** (1.0 / d.weight)))
        targets = [
            Target(model, self.providers[d.provider], suffix or d.model or model.name)
            for d in keyed
        ]
        healthy = [t for t in targets if not self.health.cooling(t.deployment_id, now)]
        cooling = [t for t in targets if self.health.cooling(t.deployment_id, now)]
        return healthy + cooling

    def available(self, model: ModelConfig) -> bool:
        return any(self.providers[d.provider].configured for d in model.deployments)
