"""Reads a parsed config.yaml tree into Config: ${VAR} interpolation, the shape checked by
config.schema's models, then the checks between entries. Pure: the environment is passed in.

Rules:
- Interpolation runs over every string value first, so a missing ${VAR} is reported at its key.
- The dataclasses of config.types receive only the keys the file set and supply the defaults.
- References between entries (a model's provider, its fallbacks, a key's tier) are checked after
  the shape, each at its own key path.
- Every error is one line, `file: key.path: reason`; pydantic's errors are put into those words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .schema import (
    AuthSection,
    CacheSection,
    ConfigFile,
    DeploymentSection,
    McpServerSection,
    ModelSection,
    OidcSection,
    PricedSection,
    ProviderSection,
    QuotaSection,
)
from .types import (
    DEFAULT_BASE_URLS,
    OIDC_SCOPES,
    RESPONSES_NATIVE,
    AuthConfig,
    CacheConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    Deployment,
    LoggingConfig,
    McpServerConfig,
    ModelConfig,
    OidcConfig,
    Prices,
    PricingConfig,
    ProviderConfig,
    QuotaConfig,
    Rate,
    RedisConfig,
    RoutingConfig,
    ServerConfig,
    SessionsConfig,
    StaticKey,
    TelemetryConfig,
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


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _resolve(value: Any, environ: Mapping[str, str], source: str, path: str) -> Any:
    """The tree with every string interpolated and every mapping key a string."""
    if isinstance(value, str):
        return interpolate(value, environ, f"{source}: {path or '(top)'}")
    if isinstance(value, dict):
        return {str(k): _resolve(v, environ, source, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, environ, source, _join(path, i)) for i, v in enumerate(value)]
    return value


# pydantic's error types, in the words of this file's other messages
_REASONS = {
    "extra_forbidden": "unknown key",
    "missing": "is required",
    "model_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
}


def _describe(error: ErrorDetails) -> str:
    """`key.path: reason` for one pydantic error."""
    path = ""
    for part in error["loc"]:
        path = _join(path, part)
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        reason = str(ctx["error"])
    elif kind == "greater_than_equal":
        reason = f"must be >= {ctx['ge']}, got {error['input']}"
    else:
        reason = _REASONS.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
    return f"{path or '(top)'}: {reason}"


class _Invalid(Exception):
    """A failed check between entries, at a key path; parse adds the file name."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")


# A region, project or location goes into a host name or a URL path as it is.
_CLOUD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# The keys only one provider type takes.
_TYPE_KEYS = {
    "bedrock": ("region", "access_key_id", "secret_access_key", "session_token"),
    "vertex": ("project", "location", "credentials_file"),
}


def _cloud(where: str, p: ProviderSection) -> str:
    """Check a provider's cloud keys; the default base_url of a bedrock or vertex provider."""
    for kind, keys in _TYPE_KEYS.items():
        for key in keys:
            if p.type != kind and getattr(p, key) is not None:
                raise _Invalid(f"{where}.{key}", f"only a provider of type {kind} takes a {key}")
    if p.type in _TYPE_KEYS and p.api_key is not None:
        raise _Invalid(
            f"{where}.api_key",
            f"a provider of type {p.type} takes no api_key: it signs with the cloud's credentials",
        )
    for key in ("region", "project", "location"):
        value = getattr(p, key)
        if value and not _CLOUD_NAME.fullmatch(value):
            raise _Invalid(
                f"{where}.{key}", f"must be a plain name (letters, digits, - . _), got {value!r}"
            )
    if p.type == "bedrock":
        if not p.region:
            raise _Invalid(f"{where}.region", "is required for a provider of type bedrock")
        if bool(p.access_key_id) != bool(p.secret_access_key):
            raise _Invalid(
                f"{where}.secret_access_key",
                "give access_key_id and secret_access_key together (or neither, for AWS's chain)",
            )
        return f"https://bedrock-runtime.{p.region}.amazonaws.com"
    if p.type == "vertex":
        for key in ("project", "location"):
            if not getattr(p, key):
                raise _Invalid(f"{where}.{key}", "is required for a provider of type vertex")
        if p.location == "global":
            return "https://aiplatform.googleapis.com"
        return f"https://{p.location}-aiplatform.googleapis.com"
    return DEFAULT_BASE_URLS.get(p.type, "")


def _provider(name: str, p: ProviderSection) -> ProviderConfig:
    """A provider; anthropic, gemini and the clouds have a default base_url, azure needs an
    api_version, bedrock a region, vertex a project and a location."""
    where = f"providers.{name}"
    default = _cloud(where, p)
    base_url = p.base_url or default  # "" too: `${X_BASE_URL:-}`
    if p.type != "echo" and not base_url.startswith(("http://", "https://")):
        raise _Invalid(
            f"{where}.base_url", f"must be an http(s) URL for a provider of type {p.type}"
        )
    if p.type == "azure" and not p.api_version:
        raise _Invalid(f"{where}.api_version", "is required for a provider of type azure")
    if p.type != "azure" and p.api_version is not None:
        raise _Invalid(f"{where}.api_version", "only a provider of type azure takes an api_version")
    if p.responses == "relay" and p.type not in RESPONSES_NATIVE:
        raise _Invalid(f"{where}.responses", f"a provider of type {p.type} can only bridge")
    return ProviderConfig(name=name, **{**p.given(), "base_url": base_url.rstrip("/")})


def _deployment(
    where: str, d: DeploymentSection, providers: Mapping[str, ProviderConfig], public: str
) -> Deployment:
    """One deployment of the model `public`; a wildcard route leaves the upstream model empty."""
    if d.provider is None:
        raise _Invalid(f"{where}.provider", "is required")
    if d.provider not in providers:
        raise _Invalid(f"{where}.provider", f"unknown provider {d.provider!r}")
    wildcard = public.endswith("/*")
    if wildcard and d.model:
        raise _Invalid(
            f"{where}.model", "a wildcard route takes the upstream model from the request"
        )
    model = d.model if d.model is not None else "" if wildcard else public
    prices = None if isinstance(d, ModelSection) else _prices(d)  # inline: the entry's own
    return Deployment(provider=d.provider, model=model, prices=prices, **d.given("weight"))


PRICE_FIELDS = tuple(PricedSection.model_fields)


def _prices(p: PricedSection) -> Prices | None:
    """The prices an entry gives, or None when it gives none. Cache prices it leaves out equal
    its input price (in the long-context tier: that tier's input price); a long-context output
    price left out equals the base one."""
    if all(getattr(p, name) is None for name in PRICE_FIELDS):
        return None
    zero = Decimal(0)
    lc = p.long_context
    base_in = p.input_price if p.input_price is not None else zero
    base_out = p.output_price if p.output_price is not None else zero
    lc_in = lc.input_price if lc is not None else zero

    def rate(name: str, default: Decimal, tier_default: Decimal) -> Rate:
        base = getattr(p, name)
        first = base if base is not None else default
        if lc is None:
            return Rate(first)
        tier = getattr(lc, name)
        return Rate(first, ((lc.above_tokens, tier if tier is not None else tier_default),))

    return Prices(
        input=rate("input_price", zero, lc_in),
        output=rate("output_price", zero, base_out),
        cached_input=rate("cached_input_price", base_in, lc_in),
        cache_write=rate("cache_write_price", base_in, lc_in),
        cache_write_1h=rate("cache_write_1h_price", base_in, lc_in),
    )


def _cache(setting: CacheSection | None, default: CacheConfig | None) -> CacheConfig | None:
    """A `cache:` setting: off (false), on (true), or its own values over `default`'s (the top
    `cache:`); unset: `default`."""
    if setting is None:
        return default
    if setting.enabled is False:
        return None
    return replace(default or CacheConfig(), **setting.given("ttl_s", "max_entry_bytes"))


def _model(
    name: str,
    m: ModelSection,
    providers: Mapping[str, ProviderConfig],
    cache: CacheConfig | None = None,
) -> ModelConfig:
    where = f"models.{name}"
    entries: list[tuple[str, DeploymentSection]] = [(where, m)]
    if m.deployments is not None:
        for key in ("provider", "model", "weight"):
            if getattr(m, key) is not None:
                raise _Invalid(f"{where}.{key}", f"give either {key} or deployments, not both")
        if not m.deployments:
            raise _Invalid(f"{where}.deployments", "must list at least one deployment")
        entries = [(f"{where}.deployments[{i}]", d) for i, d in enumerate(m.deployments)]
    if m.responses == "relay":
        for path, d in entries:
            provider = providers.get(d.provider or "")
            if provider is not None and provider.type not in RESPONSES_NATIVE:
                raise _Invalid(f"{where}.responses", f"{path} has a provider that can only bridge")
    return ModelConfig(
        name=name,
        deployments=tuple(_deployment(path, d, providers, name) for path, d in entries),
        fallbacks=tuple(m.fallbacks),
        prices=_prices(m),
        cache=_cache(m.cache, cache),
        **m.given(
            "input_price",
            "output_price",
            "max_tokens",
            "display_name",
            "responses",
            "hosted_tools",
        ),
    )


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


def _check_fallbacks(models: Mapping[str, ModelConfig]) -> None:
    for model in models.values():
        where = f"models.{model.name}.fallbacks"
        for fallback in model.fallbacks:
            if fallback == model.name:
                raise _Invalid(where, "a model cannot fall back to itself")
            if not _routable(fallback, models):
                raise _Invalid(where, f"unknown fallback model {fallback!r}")


def _quota(q: QuotaSection) -> QuotaConfig:
    tiers = {name: TierLimits(**t.given()) for name, t in q.tiers.items()}
    quota = QuotaConfig(**q.given("default_tier"))
    if tiers:  # no tiers in the file: the default ones
        quota = replace(quota, tiers=tiers)
    if quota.default_tier not in quota.tiers:
        raise _Invalid("quota.default_tier", f"unknown tier {quota.default_tier!r}")
    return quota


def _auth(a: AuthSection, tiers: Mapping[str, TierLimits]) -> AuthConfig:
    for i, k in enumerate(a.keys):
        if not k.key:
            raise _Invalid(f"auth.keys[{i}].key", "must not be empty")
        if k.tier is not None and k.tier not in tiers:
            raise _Invalid(f"auth.keys[{i}].tier", f"unknown tier {k.tier!r}")
    keys = tuple(StaticKey(**k.given()) for k in a.keys)
    return AuthConfig(keys=keys, oidc=_oidc(a.oidc), **a.given("admin_key", "cache_refresh_s"))


def _oidc(o: OidcSection | None) -> OidcConfig | None:
    if o is None:
        return None
    if not o.issuer.strip("/").partition("://")[2]:
        raise _Invalid("auth.oidc.issuer", "must be the provider's URL")
    if not o.client_id:
        raise _Invalid("auth.oidc.client_id", "must not be empty")
    scopes = tuple(o.scopes) if o.scopes is not None else OIDC_SCOPES
    if "openid" not in scopes:
        raise _Invalid("auth.oidc.scopes", "must include openid")
    roles = {r: tuple(getattr(o.roles, r)) for r in ("admin", "team_admin", "viewer")}
    return OidcConfig(
        scopes=scopes,
        roles={r: v for r, v in roles.items() if v},
        **o.given("issuer", "client_id", "client_secret", "role_claim", "team_claim",
                  "session_ttl_s", "redirect_uri"),
    )  # fmt: skip


def _mcp_server(name: str, m: McpServerSection) -> McpServerConfig:
    """An upstream MCP server: exactly one of `url` (with `headers`) and `command` (with `args`,
    `env`); its name prefixes its tools (`<server>__<tool>`), so it holds no `__`."""
    where = f"mcp_servers.{name}"
    if not name or "__" in name or not name.replace("_", "").replace("-", "").isalnum():
        raise _Invalid(where, "a server name is letters, digits, `-` and single `_`")
    if bool(m.url) == bool(m.command):
        raise _Invalid(where, "needs either `url` (Streamable HTTP) or `command` (stdio)")
    if m.url and (m.args or m.env):
        raise _Invalid(where, "`args` and `env` go with `command`, not `url`")
    if m.command and m.headers:
        raise _Invalid(f"{where}.headers", "go with `url`, not `command`")
    return McpServerConfig(
        name=name,
        url=m.url or "",
        headers=dict(m.headers),
        command=m.command or "",
        args=tuple(m.args),
        env=dict(m.env),
    )


def _build(file: ConfigFile, source: str) -> Config:
    providers = {name: _provider(name, p) for name, p in file.providers.items()}
    cache = _cache(file.cache, None)
    models = {name: _model(name, m, providers, cache) for name, m in file.models.items()}
    _check_fallbacks(models)
    quota = _quota(file.quota)
    return Config(
        server=ServerConfig(**file.server.given()),
        database=DatabaseConfig(**file.database.given()),
        redis=RedisConfig(**file.redis.given()),
        auth=_auth(file.auth, quota.tiers),
        providers=providers,
        models=models,
        quota=quota,
        sessions=SessionsConfig(**file.sessions.given()),
        routing=RoutingConfig(**file.routing.given()),
        logging=LoggingConfig(**file.logging.given()),
        pricing=PricingConfig(**file.pricing.given()),
        telemetry=TelemetryConfig(**file.telemetry.given()),
        cache=cache,
        mcp_servers={n: _mcp_server(n, m) for n, m in file.mcp_servers.items()},
        source=source,
    )


def parse(data: Any, source: str, environ: Mapping[str, str]) -> Config:
    """Validate a parsed YAML document into a Config; raises ConfigError with one clear line."""
    tree = _resolve({} if data is None else data, environ, source, "")
    try:
        return _build(ConfigFile.model_validate(tree), source)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_describe(error.errors()[0])}") from None
    except _Invalid as error:
        raise ConfigError(f"{source}: {error}") from None
