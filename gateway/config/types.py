"""The configuration's shape: frozen dataclasses, their defaults, and ConfigError.
Plain data: imports nothing from the package; config.reader fills these, config re-exports them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


class ConfigError(Exception):
    """A bad configuration: rendered as one line, `file: key.path: reason`."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    max_body_bytes: int = 4 * 1024 * 1024
    shutdown_grace_s: float = 30.0
    # A connection that has not sent a whole request head this long after it opened (or after its
    # last answer) is closed: idle sockets and slowloris heads. aiohttp's keep-alive timeout.
    idle_timeout_s: float = 15.0
    body_timeout_s: float = 30.0  # reading a request body past this is a 408


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite:///gateway.db"
    spill_path: str = "gateway-spill.jsonl"
    batch_size: int = 500
    flush_interval_s: float = 0.25  # a partial batch waits this long for company (reads wait less)
    max_queue: int = 10000
    retention_days: int = 0  # request log partitions older than this are dropped; 0 = keep all


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str = "memory://"
    prefix: str = "gw"
    # While Redis is unreachable, limits are kept per process; Redis is probed again at most
    # this often (by a request or /readyz) and used again as soon as it answers.
    fallback_retry_s: float = 5.0
    # A budget reservation of a request that never settles (its process died mid-request) stops
    # counting this long after admission; keep it above the longest request.
    reservation_ttl_s: float = 900.0


@dataclass(frozen=True, slots=True)
class StaticKey:
    key: str
    user: str
    tier: str | None = None
    name: str = "static"


ROLES = ("admin", "team_admin", "viewer", "user")
OIDC_SCOPES = ("openid", "profile", "email")


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """Console sign-in through an OpenID Connect provider (SPEC 19)."""

    issuer: str
    client_id: str
    client_secret: str = ""  # empty: a public client (PKCE alone)
    scopes: tuple[str, ...] = OIDC_SCOPES
    role_claim: str = "groups"  # a claim holding a string or a list of strings
    # role -> the role_claim values that grant it; the first role matched in ROLES order wins,
    # and a person matching none is a `user`.
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    team_claim: str = ""  # empty: a team admin's team is their user quota's team
    session_ttl_s: float = 28800.0  # a console session ends this long after sign-in
    redirect_uri: str = ""  # empty: <scheme>://<host>/ui/callback of the request


@dataclass(frozen=True, slots=True)
class AuthConfig:
    admin_key: str = ""
    keys: tuple[StaticKey, ...] = ()
    cache_refresh_s: float = 2.0
    oidc: OidcConfig | None = None


# `openai` is any OpenAI-compatible API, relayed byte for byte; `azure` the same body on Azure's
# URL and header; `anthropic` and `gemini` are translated to and from their native APIs; `echo` is
# built in and needs no network; `bedrock` (AWS) and `vertex` (Google Cloud) reach Claude, Gemini
# and the clouds' other models with the clouds' own credentials.
PROVIDER_TYPES = ("openai", "azure", "anthropic", "gemini", "bedrock", "vertex", "echo")
# The cloud types sign requests with credentials their own libraries find (none in config is fine).
CLOUD_TYPES = ("bedrock", "vertex")
DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str  # one of PROVIDER_TYPES
    base_url: str = ""
    api_key: str = ""
    api_version: str = ""  # azure only: the api-version query parameter
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 600.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    chunk_delay_s: float = 0.0  # echo only: pause between streamed chunks
    # /v1/responses: "relay" (openai/azure speak it) or "bridge" (through chat completions, for a
    # chat-only server); "" is the type's default. A model's own `responses` wins.
    responses: str = ""
    # bedrock: the region, and credentials (absent: AWS's environment and profile chain)
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    # vertex: the project and location, and a service-account JSON file (absent: Google's
    # application default credentials)
    project: str = ""
    location: str = ""
    credentials_file: str = ""

    @property
    def configured(self) -> bool:
        """A provider without an api_key cannot serve requests; echo needs none, and the cloud
        types find their credentials themselves."""
        return self.type in ("echo", *CLOUD_TYPES) or bool(self.api_key)


@dataclass(frozen=True, slots=True)
class Rate:
    """A price in USD per million tokens: ``base``, or the price of the highest tier whose
    threshold the request's whole input exceeds (that price then applies to every token)."""

    base: Decimal = Decimal(0)
    tiers: tuple[tuple[int, Decimal], ...] = ()  # (above this many input tokens, price), rising

    def at(self, input_tokens: int) -> Decimal:
        for above, price in reversed(self.tiers):
            if input_tokens > above:
                return price
        return self.base

    @property
    def highest(self) -> Decimal:
        return max((self.base, *(price for _, price in self.tiers)))


@dataclass(frozen=True, slots=True)
class Prices:
    """Every token kind at its own rate. ``source``: "config", "catalog genai-prices <version>",
    or "none" (priced nowhere: cost 0)."""

    input: Rate = Rate()
    output: Rate = Rate()
    cached_input: Rate = Rate()
    cache_write: Rate = Rate()
    cache_write_1h: Rate = Rate()
    source: str = "config"

    @property
    def priced(self) -> bool:
        return self.source != "none"


UNPRICED = Prices(source="none")
FREE = Prices(source="free: echo")  # the built-in echo provider costs nothing


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The response cache of a model (SPEC 16): answers kept `ttl_s` seconds, none larger than
    `max_entry_bytes`."""

    ttl_s: float = 3600.0
    max_entry_bytes: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    model: str
    weight: int = 1
    prices: Prices | None = None  # its own, over the model entry's


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    deployments: tuple[Deployment, ...]
    fallbacks: tuple[str, ...] = ()
    input_price: Decimal = Decimal(0)
    output_price: Decimal = Decimal(0)
    max_tokens: int | None = None
    display_name: str | None = None
    prices: Prices | None = None  # None: the entry gives no price (the catalog may)
    responses: str | None = None  # "relay" | "bridge"; None: the provider's choice
    hosted_tools: str = "drop"  # on a bridge: "drop" (named in a header) | "reject" (400)
    cache: CacheConfig | None = None  # the response cache; None: off (the top `cache:` or none)

    @property
    def is_wildcard(self) -> bool:
        return self.name.endswith("/*")


RESPONSES_MODES = ("relay", "bridge")
HOSTED_TOOL_MODES = ("drop", "reject")
# The provider types that speak the Responses API themselves.
RESPONSES_NATIVE = ("openai", "azure")


def responses_bridged(provider: ProviderConfig, model: ModelConfig) -> bool:
    """Whether /v1/responses goes through the chat bridge for this deployment."""
    mode = model.responses or provider.responses
    if provider.type not in RESPONSES_NATIVE:
        return True
    return mode == "bridge"


@dataclass(frozen=True, slots=True)
class TierLimits:
    rpm: int = 0  # requests per minute; 0 = unlimited
    tpd: int = 0  # tokens per day; 0 = unlimited


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    default_tier: str = "free"
    tiers: Mapping[str, TierLimits] = field(
        default_factory=lambda: {"free": TierLimits(rpm=20, tpd=100000)}
    )


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    history_max_tokens: int = 8000
    history_max_messages: int = 50


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    max_attempts: int = 4
    backoff_base_s: float = 0.05
    backoff_max_s: float = 1.0
    cooldown_failures: int = 3
    cooldown_s: float = 30.0


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "INFO"
    content: bool = False  # log prompts and answers; off by default


@dataclass(frozen=True, slots=True)
class PricingConfig:
    catalog: bool = True  # price models the config does not from the genai-prices catalog


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """OpenTelemetry traces (SPEC 15): exported only when `otlp_endpoint` is set."""

    otlp_endpoint: str = ""  # e.g. http://jaeger:4318/v1/traces; empty: no tracing at all
    service_name: str = "gateway"
    sample_ratio: float = 1.0
    capture_content: bool = False  # prompts and answers as span attributes; never a key
    headers: Mapping[str, str] = field(default_factory=dict)  # sent to the collector
    max_queue_size: int = 2048  # spans waiting for export; more are dropped, never waited for
    export_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """An upstream MCP server (SPEC 17): Streamable HTTP at `url`, or a stdio `command`."""

    name: str
    url: str = ""  # set: Streamable HTTP (with `headers`); empty: stdio (`command`, `args`, `env`)
    headers: Mapping[str, str] = field(default_factory=dict)
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    database: DatabaseConfig
    redis: RedisConfig
    auth: AuthConfig
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, ModelConfig]
    quota: QuotaConfig
    sessions: SessionsConfig
    routing: RoutingConfig
    logging: LoggingConfig
    pricing: PricingConfig = PricingConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    cache: CacheConfig | None = None  # the models' default response cache; None: off
    mcp_servers: Mapping[str, McpServerConfig] = field(default_factory=dict)
    source: str = "<memory>"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
