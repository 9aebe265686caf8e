"""Reads a parsed config.yaml tree into Config: ${VAR} interpolation, key-path errors, one parser
per section. Pure: the environment arrives as a mapping; config.load does the file and YAML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .config_types import (
    LOG_LEVELS,
    AuthConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    Deployment,
    LoggingConfig,
    ModelConfig,
    ProviderConfig,
    QuotaConfig,
    RedisConfig,
    RoutingConfig,
    ServerConfig,
    SessionsConfig,
    StaticKey,
    TierLimits,
)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(text: str, environ: Mapping[str, str], where: str) -> str:
    """Replace ${VAR} and ${VAR:-default}; an unset ${VAR} without default is an error."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return default
        return value

    return _VAR.sub(sub, text)


class _Section:
    """Reads one mapping of the YAML tree, remembering its key path for error messages."""

    def __init__(self, data: Any, path: str, source: str, environ: Mapping[str, str]):
        self.path, self.source, self.environ = path, source, environ
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail("must be a mapping")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def fail(self, reason: str, key: str | None = None) -> None:
        where = f"{self.path}.{key}" if key and self.path else (key or self.path or "(top)")
        raise ConfigError(f"{self.source}: {where}: {reason}")

    def _raw(self, key: str) -> Any:
        self.used.add(key)
        value = self.data.get(key)
        if isinstance(value, str):
            value = interpolate(value, self.environ, f"{self.source}: {self._key(key)}")
        return value

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def str(self, key: str, default: str | None = None, required: bool = False) -> Any:
        value = self._raw(key)
        if value is None:
            if required:
                self.fail("is required", key)
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail("must be a string", key)
        return str(value)

    def int(self, key: str, default: int | None, minimum: int = 0) -> Any:
        return self._number(key, default, minimum, int, bool | float, "an integer")

    def float(self, key: str, default: float, minimum: float = 0.0) -> float:
        return self._number(key, default, minimum, float, bool, "a number")

    def _number(
        self, key: str, default: Any, minimum: Any, kind: type, refused: Any, noun: str
    ) -> Any:
        """An int or float that is at least `minimum`; YAML values of type `refused` are wrong."""
        value = self._raw(key)
        if value is None or value == "":
            return default
        try:
            if isinstance(value, refused):
                raise ValueError
            number = kind(value)
        except (TypeError, ValueError):
            self.fail(f"must be {noun}, got {value!r}", key)
        if number < minimum:
            self.fail(f"must be >= {minimum}, got {number}", key)
        return number

    def decimal(self, key: str) -> Decimal:
        value = self._raw(key)
        if value is None or value == "":
            return Decimal(0)
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"must be a number, got {value!r}", key)
        if number < 0 or not number.is_finite():
            self.fail(f"must be a finite number >= 0, got {value!r}", key)
        return number

    def bool(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        self.fail(f"must be true or false, got {value!r}", key)
        return default

    def section(self, key: str) -> _Section:
        self.used.add(key)
        return _Section(self.data.get(key), self._key(key), self.source, self.environ)

    def list(self, key: str) -> list[Any]:
        self.used.add(key)
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail("must be a list", key)
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail("unknown key", unknown[0])


def _server(s: _Section) -> ServerConfig:
    d = ServerConfig()
    cfg = ServerConfig(
        host=s.str("host", d.host),
        port=s.int("port", d.port, minimum=0),
        max_body_bytes=s.int("max_body_bytes", d.max_body_bytes, minimum=1024),
        shutdown_grace_s=s.float("shutdown_grace_s", d.shutdown_grace_s),
    )
    s.done()
    return cfg


def _database(s: _Section) -> DatabaseConfig:
    d = DatabaseConfig()
    url = s.str("url", d.url)
    if not url.startswith(("sqlite://", "postgresql://", "postgres://")):
        s.fail("must start with sqlite://, postgresql:// or postgres://", "url")
    cfg = DatabaseConfig(
        url=url,
        spill_path=s.str("spill_path", d.spill_path),
        batch_size=s.int("batch_size", d.batch_size, minimum=1),
        flush_interval_s=s.float("flush_interval_s", d.flush_interval_s),
        max_queue=s.int("max_queue", d.max_queue, minimum=1),
    )
    s.done()
    return cfg


def _redis(s: _Section) -> RedisConfig:
    d = RedisConfig()
    url = s.str("url", d.url)
    if not url.startswith(("memory://", "redis://", "rediss://", "unix://")):
        s.fail("must start with memory://, redis://, rediss:// or unix://", "url")
    cfg = RedisConfig(
        url=url,
        prefix=s.str("prefix", d.prefix),
        fallback_retry_s=s.float("fallback_retry_s", d.fallback_retry_s, minimum=0.05),
    )
    s.done()
    return cfg


def _auth(s: _Section, tiers: Mapping[str, TierLimits]) -> AuthConfig:
    keys = []
    for i, item in enumerate(s.list("keys")):
        k = _Section(item, f"{s.path}.keys[{i}]", s.source, s.environ)
        tier = k.str("tier")
        if tier is not None and tier not in tiers:
            k.fail(f"unknown tier {tier!r}", "tier")
        key = StaticKey(
            key=k.str("key", required=True),
            user=k.str("user", required=True),
            tier=tier,
            name=k.str("name", "static"),
        )
        if not key.key:
            k.fail("must not be empty", "key")
        k.done()
        keys.append(key)
    cfg = AuthConfig(
        admin_key=s.str("admin_key", ""),
        keys=tuple(keys),
        cache_refresh_s=s.float("cache_refresh_s", AuthConfig().cache_refresh_s),
    )
    s.done()
    return cfg


def _provider(name: str, s: _Section) -> ProviderConfig:
    kind = s.str("type", required=True)
    if kind not in ("openai", "azure", "anthropic", "gemini", "echo"):
        s.fail(f"must be openai, azure, anthropic, gemini or echo, got {kind!r}", "type")
    defaults = {
        "anthropic": "https://api.anthropic.com",
        "gemini": "https://generativelanguage.googleapis.com/v1beta",
    }
    base_url = s.str("base_url", defaults.get(kind, ""))
    if kind != "echo" and not base_url.startswith(("http://", "https://")):
        s.fail(f"must be an http(s) URL for an {kind} provider", "base_url")
    api_version = s.str("api_version", "")
    if kind == "azure" and not api_version:
        s.fail("is required for an azure provider", "api_version")
    headers = s.section("headers")
    header_map = {k: headers.str(k, required=True) for k in list(headers.data)}
    d = ProviderConfig(name=name, type=kind)
    cfg = ProviderConfig(
        name=name,
        type=kind,
        base_url=base_url.rstrip("/"),
        api_key=s.str("api_key", ""),
        headers=header_map,
        timeout_s=s.float("timeout_s", d.timeout_s),
        connect_timeout_s=s.float("connect_timeout_s", d.connect_timeout_s),
        read_timeout_s=s.float("read_timeout_s", d.read_timeout_s),
        chunk_delay_s=s.float("chunk_delay_s", d.chunk_delay_s),
        api_version=api_version,
    )
    s.done()
    return cfg


def _deployment(s: _Section, providers: Mapping[str, ProviderConfig], default_model: str):
    provider = s.str("provider", required=True)
    if provider not in providers:
        s.fail(f"unknown provider {provider!r}", "provider")
    return Deployment(
        provider=provider,
        model=s.str("model", default_model),
        weight=s.int("weight", 1, minimum=1),
    )


def _model(name: str, s: _Section, providers: Mapping[str, ProviderConfig]) -> ModelConfig:
    if s.has("deployments"):
        if s.has("provider"):
            s.fail("give either provider or deployments, not both", "provider")
        deployments = []
        for i, item in enumerate(s.list("deployments")):
            d = _Section(item, f"{s.path}.deployments[{i}]", s.source, s.environ)
            deployments.append(_deployment(d, providers, name))
            d.done()
        if not deployments:
            s.fail("must list at least one deployment", "deployments")
    else:
        default_model = "" if name.endswith("/*") else name
        deployments = [_deployment(s, providers, default_model)]
    if name.endswith("/*") and any(d.model for d in deployments):
        s.fail("a wildcard route takes the upstream model from the request", "model")
    fallbacks = s.list("fallbacks")
    if not all(isinstance(f, str) for f in fallbacks):
        s.fail("must be a list of model names", "fallbacks")
    cfg = ModelConfig(
        name=name,
        deployments=tuple(deployments),
        fallbacks=tuple(fallbacks),
        input_price=s.decimal("input_price"),
        output_price=s.decimal("output_price"),
        max_tokens=s.int("max_tokens", None, minimum=1),
        display_name=s.str("display_name"),
    )
    s.done()
    return cfg


def _quota(s: _Section) -> QuotaConfig:
    tiers_section = s.section("tiers")
    tiers = {}
    for tier in list(tiers_section.data):
        t = tiers_section.section(str(tier))
        tiers[str(tier)] = TierLimits(rpm=t.int("rpm", 0), tpd=t.int("tpd", 0))
        t.done()
    if not tiers:
        tiers = dict(QuotaConfig().tiers)
    default_tier = s.str("default_tier", "free")
    if default_tier not in tiers:
        s.fail(f"unknown tier {default_tier!r}", "default_tier")
    s.done()
    return QuotaConfig(default_tier=default_tier, tiers=tiers)


def _simple(cls: type, s: _Section) -> Any:
    """Build a dataclass whose fields are all int/float/bool/str scalars."""
    default = cls()
    values = {}
    for name in cls.__dataclass_fields__:
        current = getattr(default, name)
        if isinstance(current, bool):
            values[name] = s.bool(name, current)
        elif isinstance(current, int):
            values[name] = s.int(name, current)
        elif isinstance(current, float):
            values[name] = s.float(name, current)
        else:
            values[name] = s.str(name, current)
    s.done()
    return cls(**values)


def _routable(name: str, models: Mapping[str, ModelConfig]) -> bool:
    """A name a request may use: an exact model, or `prefix/<x>` under a `prefix/*` route."""
    if name.endswith("/*"):
        return False
    if name in models:
        return True
    return any(
        m.is_wildcard and name.startswith(m.name[:-1]) and len(name) > len(m.name) - 1
        for m in models.values()
    )


def _logging(s: _Section) -> LoggingConfig:
    cfg = _simple(LoggingConfig, s)
    if cfg.level.upper() not in LOG_LEVELS:
        s.fail(f"must be one of {', '.join(LOG_LEVELS)}, got {cfg.level!r}", "level")
    return cfg


def parse(data: Any, source: str, environ: Mapping[str, str]) -> Config:
    """Validate a parsed YAML document into a Config."""
    top = _Section(data, "", source, environ)
    providers = {}
    provider_section = top.section("providers")
    for name in list(provider_section.data):
        providers[str(name)] = _provider(str(name), provider_section.section(str(name)))
    models = {}
    model_section = top.section("models")
    for name in list(model_section.data):
        models[str(name)] = _model(str(name), model_section.section(str(name)), providers)
    for model in models.values():
        for fallback in model.fallbacks:
            if fallback == model.name:
                model_section.fail("a model cannot fall back to itself", f"{model.name}.fallbacks")
            if not _routable(fallback, models):
                model_section.fail(
                    f"unknown fallback model {fallback!r}", f"{model.name}.fallbacks"
                )
    quota = _quota(top.section("quota"))
    config = Config(
        server=_server(top.section("server")),
        database=_database(top.section("database")),
        redis=_redis(top.section("redis")),
        auth=_auth(top.section("auth"), quota.tiers),
        providers=providers,
        models=models,
        quota=quota,
        sessions=_simple(SessionsConfig, top.section("sessions")),
        routing=_simple(RoutingConfig, top.section("routing")),
        logging=_logging(top.section("logging")),
        source=source,
    )
    top.done()
    return config
