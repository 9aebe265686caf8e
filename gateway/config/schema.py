"""The shape of config.yaml as pydantic models: which keys each section may hold, their types and
bounds. The defaults are not here: they live in the dataclasses of config.types.

Rules:
- Unknown keys are refused. A null value, or a null section, means "not set", and so does ""
  for a number or a flag (an empty ${VAR}): the dataclass default applies.
- Scalars take YAML's own types or the strings interpolation yields: "8080" is a port.
- A failed rule raises ValueError with the reason as the operator should read it; config.reader
  turns pydantic's errors into `key.path: reason`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticUseDefault

from .redis_url import parse_redis_url
from .types import HOSTED_TOOL_MODES, LOG_LEVELS, PROVIDER_TYPES, RESPONSES_MODES

# Scalars: YAML gives numbers as numbers and environment values as strings; both are accepted.


def _text(value: Any) -> str:
    if isinstance(value, date):  # an unquoted 2024-10-21 is a date to YAML
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    return str(value)


def _integer(value: Any) -> int:
    if value == "":
        raise PydanticUseDefault
    try:
        if isinstance(value, bool | float):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be an integer, got {value!r}") from None


def _number(value: Any) -> float:
    if value == "":
        raise PydanticUseDefault
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, got {value!r}") from None


def _price(value: Any) -> Decimal:
    if value == "":
        raise PydanticUseDefault
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"must be a number, got {value!r}") from None
    if number < 0 or not number.is_finite():
        raise ValueError(f"must be a finite number >= 0, got {value!r}")
    return number


def _flag(value: Any) -> bool:
    if value == "":
        raise PydanticUseDefault
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ValueError(f"must be true or false, got {value!r}")


def _one_of(options: tuple[str, ...], *, any_case: bool = False) -> AfterValidator:
    def check(value: str) -> str:
        if (value.upper() if any_case else value) not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {value!r}")
        return value

    return AfterValidator(check)


def _scheme(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        if not value.startswith(schemes):
            raise ValueError(f"must start with {', '.join(schemes[:-1])} or {schemes[-1]}")
        return value

    return AfterValidator(check)


def _otlp_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https:// (OTLP over HTTP), or be empty")
    return value


def _redis_url(value: str) -> str:
    parse_redis_url(value)  # raises ValueError naming what is wrong
    return value


Text = Annotated[str, BeforeValidator(_text)]
Count = Annotated[int, BeforeValidator(_integer), Field(ge=0)]
Positive = Annotated[int, BeforeValidator(_integer), Field(ge=1)]
Seconds = Annotated[float, BeforeValidator(_number), Field(ge=0.0)]
Price = Annotated[Decimal, BeforeValidator(_price)]
Flag = Annotated[bool, BeforeValidator(_flag)]


class Section(BaseModel):
    """One mapping of the file. Unknown keys are refused; a null section or value is unset."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    def given(self, *names: str) -> dict[str, Any]:
        """The values the file set, of `names` or of every field; the dataclass has the rest."""
        fields = names or tuple(type(self).model_fields)
        return {n: getattr(self, n) for n in fields if getattr(self, n) is not None}


class ServerSection(Section):
    host: Text | None = None
    port: Count | None = None
    max_body_bytes: Annotated[int, BeforeValidator(_integer), Field(ge=1024)] | None = None
    shutdown_grace_s: Seconds | None = None
    idle_timeout_s: Seconds | None = None
    body_timeout_s: Seconds | None = None


class DatabaseSection(Section):
    url: Annotated[Text, _scheme("sqlite://", "postgresql://", "postgres://")] | None = None
    spill_path: Text | None = None
    batch_size: Positive | None = None
    flush_interval_s: Seconds | None = None
    max_queue: Positive | None = None
    retention_days: Count | None = None


class RedisSection(Section):
    url: Annotated[Text, AfterValidator(_redis_url)] | None = None
    prefix: Text | None = None
    fallback_retry_s: Annotated[float, BeforeValidator(_number), Field(ge=0.05)] | None = None
    reservation_ttl_s: Annotated[float, BeforeValidator(_number), Field(ge=1)] | None = None


class StaticKeySection(Section):
    key: Text
    user: Text
    tier: Text | None = None
    name: Text | None = None


class OidcRolesSection(Section):
    admin: list[Text] = []
    team_admin: list[Text] = []
    viewer: list[Text] = []


class OidcSection(Section):
    issuer: Annotated[Text, _scheme("https://", "http://")]
    client_id: Text
    client_secret: Text | None = None
    scopes: list[Text] | None = None
    role_claim: Text | None = None
    roles: OidcRolesSection = Field(default_factory=OidcRolesSection)
    team_claim: Text | None = None
    session_ttl_s: Annotated[float, BeforeValidator(_number), Field(ge=60)] | None = None
    redirect_uri: Annotated[Text, _scheme("https://", "http://")] | None = None


class AuthSection(Section):
    admin_key: Text | None = None
    keys: list[StaticKeySection] = []
    cache_refresh_s: Seconds | None = None
    oidc: OidcSection | None = None


class ProviderSection(Section):
    type: Annotated[Text, _one_of(PROVIDER_TYPES)]
    base_url: Text | None = None
    api_key: Text | None = None
    api_version: Text | None = None
    headers: dict[str, Text] = {}
    timeout_s: Seconds | None = None
    connect_timeout_s: Seconds | None = None
    read_timeout_s: Seconds | None = None
    chunk_delay_s: Seconds | None = None
    responses: Annotated[Text, _one_of(RESPONSES_MODES)] | None = None
    region: Text | None = None
    access_key_id: Text | None = None
    secret_access_key: Text | None = None
    session_token: Text | None = None
    project: Text | None = None
    location: Text | None = None
    credentials_file: Text | None = None


class LongContextSection(Section):
    """Prices for the whole request when its input exceeds `above_tokens`."""

    above_tokens: Positive
    input_price: Price
    output_price: Price | None = None
    cached_input_price: Price | None = None
    cache_write_price: Price | None = None
    cache_write_1h_price: Price | None = None


class PricedSection(Section):
    """USD per million tokens of each kind; a model entry or a deployment may set them."""

    input_price: Price | None = None
    output_price: Price | None = None
    cached_input_price: Price | None = None
    cache_write_price: Price | None = None
    cache_write_1h_price: Price | None = None
    long_context: LongContextSection | None = None


class DeploymentSection(PricedSection):
    # `provider` is required, but a model entry with `deployments` omits it: config.reader checks.
    provider: Text | None = None
    model: Text | None = None
    weight: Positive | None = None


class CacheSection(Section):
    """The response cache: `cache: false` is `{enabled: false}`, `cache: true` is `{}`."""

    enabled: Flag | None = None
    ttl_s: Annotated[float, BeforeValidator(_number), Field(gt=0.0)] | None = None
    max_entry_bytes: Positive | None = None

    @model_validator(mode="before")
    @classmethod
    def _flag_is_enabled(cls, data: Any) -> Any:
        if isinstance(data, bool | str) and data != "":
            return {"enabled": _flag(data)}
        return data


class ModelSection(DeploymentSection):
    """A public model: one deployment written inline, or a `deployments` list."""

    deployments: list[DeploymentSection] | None = None
    fallbacks: list[Text] = []
    max_tokens: Positive | None = None
    display_name: Text | None = None
    responses: Annotated[Text, _one_of(RESPONSES_MODES)] | None = None
    hosted_tools: Annotated[Text, _one_of(HOSTED_TOOL_MODES)] | None = None
    cache: CacheSection | None = None


class TierSection(Section):
    rpm: Count | None = None
    tpd: Count | None = None


class QuotaSection(Section):
    default_tier: Text | None = None
    tiers: dict[str, TierSection] = {}


class SessionsSection(Section):
    history_max_tokens: Count | None = None
    history_max_messages: Count | None = None


class RoutingSection(Section):
    max_attempts: Count | None = None
    backoff_base_s: Seconds | None = None
    backoff_max_s: Seconds | None = None
    cooldown_failures: Count | None = None
    cooldown_s: Seconds | None = None


class LoggingSection(Section):
    level: Annotated[Text, _one_of(LOG_LEVELS, any_case=True)] | None = None
    content: Flag | None = None


class PricingSection(Section):
    catalog: Flag | None = None


class TelemetrySection(Section):
    otlp_endpoint: Annotated[Text, AfterValidator(_otlp_url)] | None = None
    service_name: Text | None = None
    sample_ratio: Annotated[float, BeforeValidator(_number), Field(ge=0.0, le=1.0)] | None = None
    capture_content: Flag | None = None
    headers: dict[str, Text] = {}
    max_queue_size: Positive | None = None
    export_timeout_s: Annotated[float, BeforeValidator(_number), Field(gt=0.0)] | None = None


class McpServerSection(Section):
    """An upstream MCP server: `url` (Streamable HTTP, with `headers`) or `command` (stdio)."""

    url: Annotated[Text, _scheme("http://", "https://")] | None = None
    headers: dict[str, Text] = {}
    command: Text | None = None
    args: list[Text] = []
    env: dict[str, Text] = {}


class ConfigFile(Section):
    server: ServerSection = Field(default_factory=ServerSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    redis: RedisSection = Field(default_factory=RedisSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    providers: dict[str, ProviderSection] = {}
    models: dict[str, ModelSection] = {}
    quota: QuotaSection = Field(default_factory=QuotaSection)
    sessions: SessionsSection = Field(default_factory=SessionsSection)
    routing: RoutingSection = Field(default_factory=RoutingSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    pricing: PricingSection = Field(default_factory=PricingSection)
    telemetry: TelemetrySection = Field(default_factory=TelemetrySection)
    cache: CacheSection | None = None
    mcp_servers: dict[str, McpServerSection] = {}
