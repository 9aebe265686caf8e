"""The config reader in-process: interpolation, defaults, unknown keys, wrong types and the checks
between entries, each error as the one line `file: key.path: reason` an operator reads."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.config import (
    AuthConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    Deployment,
    LoggingConfig,
    QuotaConfig,
    RedisConfig,
    RoutingConfig,
    ServerConfig,
    SessionsConfig,
    StaticKey,
    TierLimits,
    load,
    parse,
    responses_bridged,
)

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = {
    "openai": {"type": "openai", "base_url": "https://api.openai.com/v1/", "api_key": "sk-x"},
    "echo": {"type": "echo"},
}


def error(data: object, environ: dict[str, str] | None = None) -> str:
    """The message parse() refuses `data` with; it is always a single line."""
    with pytest.raises(ConfigError) as caught:
        parse(data, "f.yaml", environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def models(entries: dict[str, object]) -> dict[str, object]:
    return {"providers": PROVIDERS, "models": entries}


# --- a good file -------------------------------------------------------------------------------


def test_full_config_is_read_into_every_section():
    data = {
        "server": {
            "host": "127.0.0.1",
            "port": 9000,
            "max_body_bytes": 2048,
            "shutdown_grace_s": 3,
        },
        "database": {
            "url": "postgresql://gw@db/gw",
            "spill_path": "/var/spill.jsonl",
            "batch_size": 50,
            "flush_interval_s": 0.5,
            "max_queue": 99,
            "retention_days": 30,
        },
        "redis": {"url": "redis://r:6379/1", "prefix": "p", "fallback_retry_s": 1},
        "auth": {
            "admin_key": "sk-admin",
            "keys": [{"key": "sk-a", "user": "alice", "tier": "pro", "name": "laptop"}],
            "cache_refresh_s": 1.5,
        },
        "providers": {
            **PROVIDERS,
            "ds": {
                "type": "openai",
                "base_url": "https://api.deepseek.com/v1",
                "api_key": "k",
                "headers": {"X-Org": 42},
                "timeout_s": 60,
                "connect_timeout_s": 2,
                "read_timeout_s": 30,
            },
        },
        "models": {
            "gpt-4o": {
                "deployments": [
                    {"provider": "openai", "model": "gpt-4o", "weight": 3},
                    {"provider": "ds"},
                ],
                "fallbacks": ["mini", "ds/deepseek-chat"],
                "input_price": 2.5,
                "output_price": "10.00",
                "max_tokens": 4096,
                "display_name": "GPT-4o",
            },
            "mini": {"provider": "openai", "model": "gpt-4o-mini", "input_price": 0.15},
            "ds/*": {"provider": "ds"},
        },
        "quota": {"default_tier": "pro", "tiers": {"pro": {"rpm": 600, "tpd": 0}}},
        "sessions": {"history_max_tokens": 100, "history_max_messages": 5},
        "routing": {"max_attempts": 2, "cooldown_s": 1},
        "logging": {"level": "debug", "content": "yes"},
    }
    config = parse(data, "full.yaml", {})
    assert config.source == "full.yaml"
    assert config.server == ServerConfig("127.0.0.1", 9000, 2048, 3.0)
    assert config.database == DatabaseConfig(
        "postgresql://gw@db/gw", "/var/spill.jsonl", 50, 0.5, 99, retention_days=30
    )
    assert config.redis == RedisConfig("redis://r:6379/1", "p", 1.0)
    assert config.auth == AuthConfig(
        "sk-admin", (StaticKey("sk-a", "alice", "pro", "laptop"),), 1.5
    )
    assert config.providers["openai"].base_url == "https://api.openai.com/v1"  # no trailing /
    ds = config.providers["ds"]
    assert (ds.headers, ds.timeout_s, ds.connect_timeout_s, ds.read_timeout_s) == (
        {"X-Org": "42"},
        60.0,
        2.0,
        30.0,
    )
    gpt = config.models["gpt-4o"]
    assert gpt.deployments == (Deployment("openai", "gpt-4o", 3), Deployment("ds", "gpt-4o", 1))
    assert gpt.fallbacks == ("mini", "ds/deepseek-chat")
    assert (gpt.input_price, gpt.output_price) == (Decimal("2.5"), Decimal("10.00"))
    assert (gpt.max_tokens, gpt.display_name) == (4096, "GPT-4o")
    assert config.models["mini"].output_price == Decimal(0)
    assert config.models["ds/*"].deployments == (Deployment("ds", ""),)
    assert config.quota == QuotaConfig("pro", {"pro": TierLimits(600, 0)})
    assert config.sessions == SessionsConfig(100, 5)
    assert config.routing == RoutingConfig(max_attempts=2, cooldown_s=1.0)
    assert config.logging == LoggingConfig("debug", True)


def test_shipped_config_yaml_loads_with_an_empty_environment():
    config = load(str(ROOT / "config.yaml"), {})
    assert config.server.port == 8080
    assert config.database.url == "sqlite:///gateway.db"
    assert config.auth.keys == (StaticKey("sk-demo", "demo", "free"),)
    assert not config.providers["openai"].configured
    assert config.providers["echo"].configured
    assert config.models["echo"].deployments == (Deployment("echo", "echo"),)


# --- defaults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {}, dict.fromkeys(["server", "auth", "quota", "models"])])
def test_an_empty_file_or_empty_sections_give_the_defaults(data):
    assert parse(data, "f.yaml", {}) == Config(
        server=ServerConfig(),
        database=DatabaseConfig(),
        redis=RedisConfig(),
        auth=AuthConfig(),
        providers={},
        models={},
        quota=QuotaConfig(),
        sessions=SessionsConfig(),
        routing=RoutingConfig(),
        logging=LoggingConfig(),
        source="f.yaml",
    )


def test_the_default_values_an_operator_relies_on():
    config = parse({}, "f.yaml", {})
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8080)
    assert config.server.max_body_bytes == 4194304
    assert (config.database.url, config.redis.url) == ("sqlite:///gateway.db", "memory://")
    assert config.auth.admin_key == ""  # admin API off
    assert config.quota.default_tier == "free"
    assert config.quota.tiers == {"free": TierLimits(rpm=20, tpd=100000)}
    assert (config.sessions.history_max_tokens, config.sessions.history_max_messages) == (8000, 50)
    assert (config.logging.level, config.logging.content) == ("INFO", False)


def test_null_values_and_empty_numbers_mean_unset():
    config = parse(
        {
            "server": {"port": None, "host": None, "max_body_bytes": ""},
            "logging": {"content": ""},
            "providers": {"e": {"type": "echo", "chunk_delay_s": ""}},
            "models": {"m": {"provider": "e", "max_tokens": None, "input_price": ""}},
            "quota": {"tiers": {"free": {"rpm": 3}}},
        },
        "f.yaml",
        {},
    )
    assert config.server == ServerConfig()
    assert config.logging.content is False
    assert config.providers["e"].chunk_delay_s == 0.0
    assert config.models["m"].max_tokens is None
    assert config.models["m"].input_price == Decimal(0)
    assert config.quota.tiers == {"free": TierLimits(rpm=3, tpd=0)}


def test_an_entry_without_model_sends_its_own_name_upstream():
    config = parse(models({"gpt-4o": {"provider": "openai"}}), "f.yaml", {})
    assert config.models["gpt-4o"].deployments == (Deployment("openai", "gpt-4o", 1),)


# --- interpolation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${A}", {"A": "set"}, "set"),
        ("${A}", {"A": ""}, ""),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("https://${HOST}:${PORT:-443}/v1", {"HOST": "h"}, "https://h:443/v1"),
        ("no $A or ${ here", {}, "no $A or ${ here"),
    ],
)
def test_interpolation_forms(text, environ, expected):
    config = parse({"server": {"host": text}}, "f.yaml", environ)
    assert config.server.host == expected


def test_interpolation_reaches_lists_nested_mappings_and_typed_values():
    environ = {"KEY": "sk-env", "PORT": "9001", "CONTENT": "true", "FALLBACK": "mini"}
    config = parse(
        {
            "server": {"port": "${PORT}", "shutdown_grace_s": "${GRACE:-2.5}"},
            "auth": {"keys": [{"key": "${KEY}", "user": "u"}]},
            "logging": {"content": "${CONTENT}"},
            "providers": {
                "p": {"type": "openai", "base_url": "http://x", "headers": {"X-Key": "${KEY}"}}
            },
            "models": {
                "m": {"provider": "p", "fallbacks": ["${FALLBACK}"]},
                "mini": {"provider": "p"},
            },
        },
        "f.yaml",
        environ,
    )
    assert (config.server.port, config.server.shutdown_grace_s) == (9001, 2.5)
    assert config.auth.keys[0].key == "sk-env"
    assert config.logging.content is True
    assert config.providers["p"].headers == {"X-Key": "sk-env"}
    assert config.models["m"].fallbacks == ("mini",)


def test_an_empty_variable_for_a_number_gives_the_default():
    config = parse({"server": {"port": "${PORT:-}"}}, "f.yaml", {})
    assert config.server.port == 8080


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"server": {"host": "${NOPE}"}},
            "f.yaml: server.host: environment variable NOPE is not set",
        ),
        (
            {"auth": {"keys": [{"key": "k", "user": "u"}, {"key": "${K}", "user": "u"}]}},
            "f.yaml: auth.keys[1].key: environment variable K is not set",
        ),
        (
            {"providers": {"p": {"type": "echo", "headers": {"h": "a ${B} c"}}}},
            "f.yaml: providers.p.headers.h: environment variable B is not set",
        ),
        ("${TOP}", "f.yaml: (top): environment variable TOP is not set"),
    ],
)
def test_a_variable_without_value_or_default_is_an_error_at_its_key(data, expected):
    assert error(data) == expected


def test_the_environment_passed_in_is_the_only_one_read(monkeypatch):
    monkeypatch.setenv("GW_TEST_ONLY_IN_OS", "x")
    assert "GW_TEST_ONLY_IN_OS" in error({"server": {"host": "${GW_TEST_ONLY_IN_OS}"}})


# --- unknown keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"servers": {}}, "servers"),
        ({"server": {"prot": 80}}, "server.prot"),
        ({"providers": {"e": {"type": "echo", "apikey": "k"}}}, "providers.e.apikey"),
        (models({"m": {"provider": "echo", "wieght": 2}}), "models.m.wieght"),
        (
            models({"m": {"deployments": [{"provider": "echo"}, {"provider": "echo", "x": 1}]}}),
            "models.m.deployments[1].x",
        ),
        ({"auth": {"keys": [{"key": "k", "user": "u", "uid": "u"}]}}, "auth.keys[0].uid"),
        ({"quota": {"tiers": {"free": {"rpm": 1, "rpd": 2}}}}, "quota.tiers.free.rpd"),
        ({"routing": {"retries": 3}}, "routing.retries"),
        ({"logging": {"format": "json"}}, "logging.format"),
        ({7: 1}, "7"),
    ],
)
def test_unknown_keys_are_refused_at_any_depth(data, where):
    assert error(data) == f"f.yaml: {where}: unknown key"


# --- wrong types and bounds --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([1, 2], "(top): must be a mapping"),
        ({"server": "fast"}, "server: must be a mapping"),
        ({"providers": ["echo"]}, "providers: must be a mapping"),
        ({"providers": {"e": "echo"}}, "providers.e: must be a mapping"),
        ({"server": {"port": "http"}}, "server.port: must be an integer, got 'http'"),
        ({"server": {"port": 80.5}}, "server.port: must be an integer, got 80.5"),
        ({"server": {"port": True}}, "server.port: must be an integer, got True"),
        ({"server": {"port": -1}}, "server.port: must be >= 0, got -1"),
        ({"server": {"max_body_bytes": 10}}, "server.max_body_bytes: must be >= 1024, got 10"),
        ({"server": {"host": ["a"]}}, "server.host: must be a string"),
        ({"server": {"host": False}}, "server.host: must be a string"),
        ({"server": {"shutdown_grace_s": "soon"}}, "server.shutdown_grace_s: must be a number"),
        ({"server": {"shutdown_grace_s": -2}}, "server.shutdown_grace_s: must be >= 0.0, got -2"),
        ({"database": {"batch_size": 0}}, "database.batch_size: must be >= 1, got 0"),
        (
            {"database": {"url": "mysql://db"}},
            "database.url: must start with sqlite://, postgresql:// or postgres://",
        ),
        (
            {"redis": {"url": "http://r"}},
            "redis.url: must start with memory://, redis://, rediss://, unix://,"
            " redis+cluster:// or redis+sentinel://",
        ),
        ({"redis": {"fallback_retry_s": 0}}, "redis.fallback_retry_s: must be >= 0.05, got 0"),
        ({"auth": {"keys": {"key": "k"}}}, "auth.keys: must be a list"),
        ({"auth": {"keys": ["sk-a"]}}, "auth.keys[0]: must be a mapping"),
        ({"auth": {"keys": [{"user": "u"}]}}, "auth.keys[0].key: is required"),
        ({"auth": {"keys": [{"key": "", "user": "u"}]}}, "auth.keys[0].key: must not be empty"),
        ({"logging": {"content": "maybe"}}, "logging.content: must be true or false, got 'maybe'"),
        ({"logging": {"content": 1}}, "logging.content: must be true or false, got 1"),
        ({"logging": {"level": "LOUD"}}, "logging.level: must be one of DEBUG, INFO, WARNING"),
        (
            {"quota": {"tiers": {"free": {"rpm": "many"}}}},
            "quota.tiers.free.rpm: must be an integer",
        ),
        ({"providers": {"e": {}}}, "providers.e.type: is required"),
        ({"providers": {"e": None}}, "providers.e.type: is required"),
        ({"providers": {"e": {"type": "carrier-pigeon"}}}, "providers.e.type: must be one of"),
        ({"providers": {"e": {"type": "echo", "headers": "h"}}}, "providers.e.headers: must be"),
        ({"providers": {"e": {"type": "echo", "timeout_s": "1m"}}}, "providers.e.timeout_s: must"),
        (models({"m": {"provider": "echo", "input_price": -1}}), "models.m.input_price: must be a"),
        (
            models({"m": {"provider": "echo", "output_price": "free"}}),
            "models.m.output_price: must",
        ),
        (models({"m": {"provider": "echo", "max_tokens": 0}}), "models.m.max_tokens: must be >= 1"),
        (
            models({"m": {"provider": "echo", "fallbacks": "x"}}),
            "models.m.fallbacks: must be a list",
        ),
        (
            models({"m": {"deployments": [{"provider": "echo", "weight": "heavy"}]}}),
            "models.m.deployments[0].weight: must be an integer, got 'heavy'",
        ),
    ],
)
def test_wrong_types_and_out_of_bounds_values(data, expected):
    assert error(data).startswith(f"f.yaml: {expected}")


def test_numbers_and_flags_from_strings_are_converted():
    config = parse(
        {
            "server": {"port": "81", "shutdown_grace_s": "1.5", "host": 127},
            "logging": {"content": "No"},
        },
        "f.yaml",
        {},
    )
    assert (config.server.port, config.server.shutdown_grace_s) == (81, 1.5)
    assert config.server.host == "127"
    assert config.logging.content is False


# --- references between entries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"m": {"provider": "ghost"}}, "models.m.provider: unknown provider 'ghost'"),
        (
            {"m": {"deployments": [{"provider": "echo"}, {"provider": "ghost"}]}},
            "models.m.deployments[1].provider: unknown provider 'ghost'",
        ),
        ({"m": {"model": "x"}}, "models.m.provider: is required"),
        ({"m": {"deployments": [{"model": "x"}]}}, "models.m.deployments[0].provider: is required"),
        (
            {"m": {"provider": "echo", "deployments": [{"provider": "echo"}]}},
            "models.m.provider: give either provider or deployments, not both",
        ),
        (
            {"m": {"weight": 2, "deployments": [{"provider": "echo"}]}},
            "models.m.weight: give either weight or deployments, not both",
        ),
        ({"m": {"deployments": []}}, "models.m.deployments: must list at least one deployment"),
        ({"m": {"provider": "echo", "fallbacks": ["m"]}}, "models.m.fallbacks: a model cannot"),
        ({"m": {"provider": "echo", "fallbacks": ["zz"]}}, "models.m.fallbacks: unknown fallback"),
        (
            {"m": {"provider": "echo", "fallbacks": ["d/*"]}, "d/*": {"provider": "openai"}},
            "models.m.fallbacks: unknown fallback model 'd/*'",
        ),
        (
            {"d/*": {"provider": "openai", "model": "gpt"}},
            "models.d/*.model: a wildcard route takes the upstream model from the request",
        ),
        (
            {"d/*": {"deployments": [{"provider": "openai", "model": "gpt"}]}},
            "models.d/*.deployments[0].model: a wildcard route takes the upstream model",
        ),
    ],
)
def test_bad_references_between_models_and_providers(entries, expected):
    assert error(models(entries)).startswith(f"f.yaml: {expected}")


def test_fallbacks_may_name_a_model_under_a_wildcard_route():
    config = parse(
        models({"m": {"provider": "echo", "fallbacks": ["d/x"]}, "d/*": {"provider": "openai"}}),
        "f.yaml",
        {},
    )
    assert config.models["m"].fallbacks == ("d/x",)


def test_a_wildcard_route_may_spread_over_several_deployments():
    config = parse(
        models(
            {"d/*": {"deployments": [{"provider": "openai", "weight": 2}, {"provider": "echo"}]}}
        ),
        "f.yaml",
        {},
    )
    assert config.models["d/*"].deployments == (Deployment("openai", "", 2), Deployment("echo", ""))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"auth": {"keys": [{"key": "k", "user": "u", "tier": "gold"}]}},
            "f.yaml: auth.keys[0].tier: unknown tier 'gold'",
        ),
        ({"quota": {"default_tier": "pro"}}, "f.yaml: quota.default_tier: unknown tier 'pro'"),
        (
            {"quota": {"tiers": {"pro": {"rpm": 1}}}},  # the file's tiers replace the default ones
            "f.yaml: quota.default_tier: unknown tier 'free'",
        ),
    ],
)
def test_tiers_named_by_keys_and_the_default_must_exist(data, expected):
    assert error(data) == expected


# --- provider types ----------------------------------------------------------------------------

AZURE = {"type": "azure", "base_url": "https://res.openai.azure.com/", "api_version": "2024-10-21"}


def test_each_provider_type_with_its_base_url_and_api_version():
    config = parse(
        {
            "providers": {
                "oa": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
                "az": {**AZURE, "api_key": "k"},
                "an": {"type": "anthropic", "api_key": "k"},
                "ge": {"type": "gemini", "api_key": "k"},
                "an-proxy": {"type": "anthropic", "base_url": "https://proxy.test/anthropic/"},
                "e": {"type": "echo"},
            }
        },
        "f.yaml",
        {},
    )
    p = config.providers
    assert {name: provider.type for name, provider in p.items()} == {
        "oa": "openai", "az": "azure", "an": "anthropic", "ge": "gemini",
        "an-proxy": "anthropic", "e": "echo",
    }  # fmt: skip
    assert (p["az"].base_url, p["az"].api_version) == ("https://res.openai.azure.com", "2024-10-21")
    assert p["an"].base_url == "https://api.anthropic.com"
    assert p["ge"].base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert p["an-proxy"].base_url == "https://proxy.test/anthropic"
    assert p["oa"].api_version == ""


def test_an_empty_base_url_variable_falls_back_to_the_default():
    config = parse(
        {"providers": {"an": {"type": "anthropic", "base_url": "${ANTHROPIC_BASE_URL:-}"}}},
        "f.yaml",
        {},
    )
    assert config.providers["an"].base_url == "https://api.anthropic.com"


def test_an_unquoted_yaml_date_is_a_valid_api_version(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "providers:\n  az: {type: azure, base_url: 'https://r.test', api_version: 2024-10-21}\n",
        encoding="utf-8",
    )
    assert load(str(path), {}).providers["az"].api_version == "2024-10-21"


@pytest.mark.parametrize(
    ("kind", "configured"),
    [("openai", False), ("azure", False), ("anthropic", False), ("gemini", False), ("echo", True)],
)
def test_a_provider_without_api_key_is_not_configured_except_echo(kind, configured):
    provider = {"type": kind, "base_url": "https://x.test"}
    if kind == "azure":
        provider["api_version"] = "2024-10-21"
    for api_key, expected in (("", configured), ("k", True)):
        config = parse({"providers": {"p": {**provider, "api_key": api_key}}}, "f.yaml", {})
        assert config.providers["p"].configured is expected


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (
            {"type": "openai", "base_url": "api.openai.com"},
            "providers.p.base_url: must be an http(s) URL for a provider of type openai",
        ),
        (
            {"type": "openai"},
            "providers.p.base_url: must be an http(s) URL for a provider of type openai",
        ),
        (
            {"type": "azure", "api_version": "2024-10-21"},
            "providers.p.base_url: must be an http(s) URL for a provider of type azure",
        ),
        (
            {"type": "azure", "base_url": "https://r.test"},
            "providers.p.api_version: is required for a provider of type azure",
        ),
        (
            {**AZURE, "api_version": ""},
            "providers.p.api_version: is required for a provider of type azure",
        ),
        (
            {"type": "anthropic", "api_version": "2023-06-01"},
            "providers.p.api_version: only a provider of type azure takes an api_version",
        ),
        (
            {"type": "gemini", "base_url": "generativelanguage.googleapis.com"},
            "providers.p.base_url: must be an http(s) URL for a provider of type gemini",
        ),
        (
            {"type": "watsonx"},
            "providers.p.type: must be one of openai, azure, anthropic, gemini, bedrock, vertex,"
            " echo, got 'watsonx'",
        ),
        ({"type": "vertex"}, "providers.p.project: is required for a provider of type vertex"),
        (
            {"type": "vertex", "project": "p"},
            "providers.p.location: is required for a provider of type vertex",
        ),
        ({"type": "bedrock"}, "providers.p.region: is required for a provider of type bedrock"),
        (
            {"type": "vertex", "project": "acme/../x", "location": "us-east5"},
            "providers.p.project: must be a plain name (letters, digits, - . _), got 'acme/../x'",
        ),
        (
            {"type": "bedrock", "region": "us-east-1", "access_key_id": "AKIA"},
            "providers.p.secret_access_key: give access_key_id and secret_access_key together"
            " (or neither, for AWS's chain)",
        ),
        (
            {"type": "gemini", "api_key": "k", "region": "us-east-1"},
            "providers.p.region: only a provider of type bedrock takes a region",
        ),
        (
            {"type": "vertex", "project": "p", "location": "l", "api_key": "k"},
            "providers.p.api_key: a provider of type vertex takes no api_key: it signs with the"
            " cloud's credentials",
        ),
        (
            {"type": "bedrock", "region": "eu-west-1", "project": "p"},
            "providers.p.project: only a provider of type vertex takes a project",
        ),
    ],
)
def test_provider_type_rules(provider, expected):
    assert error({"providers": {"p": provider}}) == f"f.yaml: {expected}"


def test_cloud_providers_default_base_urls():
    config = parse(
        {
            "providers": {
                "aws": {"type": "bedrock", "region": "eu-west-3"},
                "gcp": {"type": "vertex", "project": "acme", "location": "us-east5"},
                "world": {"type": "vertex", "project": "acme", "location": "global"},
            }
        },
        "f.yaml",
        {},
    )
    urls = {name: p.base_url for name, p in config.providers.items()}
    assert urls == {
        "aws": "https://bedrock-runtime.eu-west-3.amazonaws.com",
        "gcp": "https://us-east5-aiplatform.googleapis.com",
        "world": "https://aiplatform.googleapis.com",
    }
    assert all(p.configured for p in config.providers.values())  # credentials: the clouds' chains


@pytest.mark.parametrize(
    "entry",
    [
        {"provider": "an", "model": "claude-sonnet-4-5", "max_tokens": 8192},
        {
            "deployments": [{"provider": "an", "model": "claude-sonnet-4-5"}, {"provider": "oa"}],
            "max_tokens": "8192",
        },
    ],
)
def test_max_tokens_is_set_per_model_inline_or_with_deployments(entry):
    providers = {
        "an": {"type": "anthropic", "api_key": "k"},
        "oa": {"type": "openai", "base_url": "https://api.openai.com/v1"},
    }
    config = parse({"providers": providers, "models": {"claude": entry}}, "f.yaml", {})
    assert config.models["claude"].max_tokens == 8192


def test_max_tokens_inside_a_deployment_is_an_unknown_key():
    entry = {"deployments": [{"provider": "echo", "max_tokens": 5}]}
    assert error(models({"m": entry})) == (
        "f.yaml: models.m.deployments[0].max_tokens: unknown key"
    )


# --- database retention ------------------------------------------------------------------------


def test_retention_days_defaults_to_keep_everything():
    assert parse({}, "f.yaml", {}).database.retention_days == 0
    config = parse({"database": {"retention_days": "${KEEP:-90}"}}, "f.yaml", {})
    assert config.database.retention_days == 90


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-1, "must be >= 0, got -1"), (1.5, "must be an integer, got 1.5"), ("a", "must be an")],
)
def test_retention_days_is_a_whole_number_of_days(value, reason):
    message = error({"database": {"retention_days": value}})
    assert message.startswith(f"f.yaml: database.retention_days: {reason}")


# --- the file itself ---------------------------------------------------------------------------


def test_load_reports_yaml_syntax_errors_with_their_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  port: 80\n  host: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.yaml: line \d+: "):
        load(str(path), {})


def test_load_reports_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read: "):
        load(str(tmp_path / "nope.yaml"), {})


def test_load_interpolates_from_the_environ_it_is_given(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text('database: {url: "${DB:-sqlite:///x.db}"}\n', encoding="utf-8")
    assert load(str(path), {}).database.url == "sqlite:///x.db"
    assert load(str(path), {"DB": "postgres://h/db"}).database.url == "postgres://h/db"


def test_responses_relay_or_bridge_per_provider_and_model():
    config = parse(
        {
            "providers": {
                **PROVIDERS,
                "local": {"type": "openai", "base_url": "http://127.0.0.1:9/v1",
                          "responses": "bridge"},
            },
            "models": {
                "gpt": {"provider": "openai", "model": "gpt-5"},
                "gpt-bridged": {"provider": "openai", "model": "gpt-5", "responses": "bridge",
                                "hosted_tools": "reject"},
                "qwen": {"provider": "local", "model": "qwen3"},
                "qwen-relayed": {"provider": "local", "model": "qwen3", "responses": "relay"},
                "echo": {"provider": "echo", "model": "echo"},
            },
        },
        "f.yaml",
        {},
    )  # fmt: skip
    p, m = config.providers, config.models
    bridged = {
        name: responses_bridged(p[model.deployments[0].provider], model)
        for name, model in m.items()
    }
    assert bridged == {"gpt": False, "gpt-bridged": True, "qwen": True, "qwen-relayed": False,
                       "echo": True}  # fmt: skip
    assert (m["gpt"].hosted_tools, m["gpt-bridged"].hosted_tools) == ("drop", "reject")


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"providers": {"an": {"type": "anthropic", "responses": "relay"}}},
         "providers.an.responses"),
        ({"providers": {"oa": {**PROVIDERS["openai"], "responses": "maybe"}}},
         "providers.oa.responses"),
        (models({"m": {"provider": "echo", "model": "e", "hosted_tools": "ignore"}}),
         "models.m.hosted_tools"),
        (models({"m": {"provider": "echo", "model": "e", "responses": "relay"}}),
         "models.m.responses"),
    ],
)  # fmt: skip
def test_bad_responses_and_hosted_tools_settings_are_named(data, path):
    assert path in error(data)
