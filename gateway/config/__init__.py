"""Configuration: config.yaml with ${VAR} interpolation, validated into frozen dataclasses.
All environment reading happens here; everything else receives a Config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from .reader import interpolate, parse
from .types import (
    FREE,
    LOG_LEVELS,
    ROLES,
    UNPRICED,
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
    responses_bridged,
)

# The public face: the dataclasses live in config.types, the YAML reading in config.reader.
__all__ = [
    "FREE",
    "LOG_LEVELS",
    "METRICS_DIR_ENV",
    "ROLES",
    "UNPRICED",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "Deployment",
    "LoggingConfig",
    "McpServerConfig",
    "ModelConfig",
    "OidcConfig",
    "Prices",
    "PricingConfig",
    "ProviderConfig",
    "QuotaConfig",
    "Rate",
    "RedisConfig",
    "RoutingConfig",
    "ServerConfig",
    "SessionsConfig",
    "StaticKey",
    "TelemetryConfig",
    "TierLimits",
    "config_path",
    "environment",
    "interpolate",
    "load",
    "metrics_dir",
    "parse",
    "responses_bridged",
]


def config_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """-c wins, then $GATEWAY_CONFIG, then ./config.yaml."""
    environ = os.environ if environ is None else environ
    return explicit or environ.get("GATEWAY_CONFIG") or "config.yaml"


def load(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file; raises ConfigError with one clear line."""
    environ = os.environ if environ is None else environ
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(top)"
        reason = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: {where}: {reason}") from None
    return parse(data, path, environ)


def environment(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The process environment, read in this module only."""
    return os.environ if environ is None else environ


# prometheus-client picks its value storage when it is first imported, from this variable:
# with it set, every metric lives in per-process files that any worker can sum at scrape time.
# So the supervisor must put it in each worker's environment before the worker starts, and
# the worker reads it back here to know where to collect from.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The directory shared by `serve --workers N` for metrics, or None in a single process."""
    return environment(environ).get(METRICS_DIR_ENV) or None
