"""The `gateway` command: serve, migrate, keys (create with scopes/list/revoke), check-config.
Bad configuration ends with one readable line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from .. import logs
from ..access import governance_fields as fields
from ..access.auth import hash_key, new_key
from ..config import (
    Config,
    ConfigError,
    Deployment,
    OidcConfig,
    ProviderConfig,
    config_path,
    load,
)
from ..errors import InvalidRequest
from ..routing import deployment_prices, describe_prices
from ..store import ApiKey, Store, StoreUnavailable
from ..store.backends import open_store
from ..store.base import BUDGET_PERIODS
from .supervisor import run

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="OpenAI-compatible AI gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument(
            "-c", "--config", help="config file (default $GATEWAY_CONFIG or ./config.yaml)"
        )
        return p

    serve = command("serve", "run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    command("migrate", "apply schema.sql to the configured database")
    command("check-config", "validate the config and print the routing table")
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key and print it (last line)")
    create.add_argument("-c", "--config")
    create.add_argument("--user", required=True)
    create.add_argument("--tier")
    create.add_argument("--name", default="")
    create.add_argument("--models", help="models the key may use: a,b,prefix/* (default: all)")
    create.add_argument(
        "--mcp-tools", help="MCP tools the key may call: a__t,server__* (default: all)"
    )
    create.add_argument("--expires", help="expiry: 2026-12-31 (00:00 UTC) or an RFC 3339 date-time")
    create.add_argument("--rpm", type=int, help="the key's own requests per minute")
    create.add_argument("--tpd", type=int, help="the key's own tokens per UTC day")
    create.add_argument("--budget", help="the key's budget in USD, e.g. 25 or 12.50")
    create.add_argument("--period", choices=BUDGET_PERIODS, help="the budget's period")
    create.add_argument("--team", help="the id of an existing team")
    listing = keys.add_parser("list", help="list keys")
    listing.add_argument("-c", "--config")
    listing.add_argument("--user")
    revoke = keys.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("-c", "--config")
    revoke.add_argument("key")
    return parser


def routing_table(config: Config) -> list[str]:
    """One line per public model: deployments (weight, provider type, availability), fallbacks,
    prices; then one line for the retry and cooldown policy."""
    lines = []
    for model in config.models.values():
        deployments = ", ".join(
            _deployment(config.providers[d.provider], d, len(model.deployments) > 1)
            for d in model.deployments
        )
        line = f"{model.name:<28} -> {deployments}"
        if model.fallbacks:
            line += f"  fallbacks: {', '.join(model.fallbacks)}"
        if model.cache is not None:
            c = model.cache
            line += f"  cache: ttl {c.ttl_s:g}s, entries up to {c.max_entry_bytes} bytes"
        lines.append(line)
    for model, d, prices in deployment_prices(config):
        lines.append(f"  price per 1M {model.name} {d.provider}: {describe_prices(prices)}")
    r = config.routing
    lines.append(
        f"routing: up to {max(1, r.max_attempts)} attempts, backoff {r.backoff_base_s}s doubling"
        f" to {r.backoff_max_s}s, cooldown {r.cooldown_s}s after"
        f" {max(1, r.cooldown_failures)} failures in a row"
    )
    if config.auth.oidc is not None:
        lines.append(console_signin_line(config.auth.oidc))
    for server in config.mcp_servers.values():
        where = server.url or " ".join((server.command, *server.args))
        lines.append(f"mcp server {server.name:<17} -> {server.transport} {where}")
    return lines


def console_signin_line(o: OidcConfig) -> str:
    """auth.oidc as check-config shows it: everything but the client secret."""
    roles = "; ".join(f"{role}={','.join(values)}" for role, values in o.roles.items())
    secret = "set" if o.client_secret else "none (public client)"
    return (
        f"console sign-in: issuer {o.issuer}, client_id {o.client_id}, client_secret {secret},"
        f" scopes {' '.join(o.scopes)}, role_claim {o.role_claim}, roles {roles or '-'},"
        f" team_claim {o.team_claim or '-'}, session {o.session_ttl_s:g}s"
    )


def _deployment(provider: ProviderConfig, d: Deployment, weighted: bool) -> str:
    """`provider:model x3 (type)`, with `, not configured` when the provider has no api_key."""
    text = f"{d.provider}:{d.model or '<from name>'}" + (f" x{d.weight}" if weighted else "")
    return f"{text} ({provider.type}{'' if provider.configured else ', not configured'})"


async def _with_store(config: Config, action: Callable[[Store], Awaitable[T]]) -> T:
    """Run `action` on the configured store, its schema applied, and close it."""
    store = await open_store(config.database.url)
    try:
        await store.migrate()
        return await action(store)
    finally:
        await store.close()


def _listed(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",")]


def _key_scopes(args: argparse.Namespace) -> dict[str, Any]:
    """The scope options as ApiKey fields, checked as the admin API checks them."""
    models = None if args.models is None else [m.strip() for m in args.models.split(",")]
    scopes = {
        "models": fields.models(models, "--models"),
        "expires_at": fields.moment(args.expires, "--expires", lenient=True),
        "rpm": fields.limit(args.rpm, "--rpm", fields.RPM_MAX),
        "tpd": fields.limit(args.tpd, "--tpd", fields.TPD_MAX),
        "max_budget_usd": fields.budget(args.budget, "--budget"),
        "budget_period": args.period,
        "team": fields.team_id(args.team, "--team"),
        "mcp_tools": fields.mcp_tools(_listed(args.mcp_tools), "--mcp-tools"),
    }
    fields.check_budget(scopes["max_budget_usd"], scopes["budget_period"], "--period")
    return scopes


async def _keys_create(config: Config, args: argparse.Namespace) -> int:
    key = new_key()
    now = datetime.now(UTC)
    row = ApiKey(
        id="", key_hash=hash_key(key), key_prefix=key[:12], uid=args.user, name=args.name,
        tier=args.tier, status="active", created_at=now, last_used_at=None, **_key_scopes(args),
    )  # fmt: skip

    async def create(store: Store) -> ApiKey:
        if row.team is not None:
            team = await store.get_team(row.team)
            if team is None or team.status != "active":
                raise InvalidRequest(f"`--team`: no team `{row.team}`.", param="--team")
        return await store.create_key(row)

    saved = await _with_store(config, create)
    print(f"created key id={saved.id} prefix={saved.key_prefix} user={saved.uid}", file=sys.stderr)
    print(key)
    return 0


async def _keys_list(config: Config, args: argparse.Namespace) -> int:
    for k in await _with_store(config, lambda store: store.list_keys(args.user)):
        used = k.last_used_at.isoformat() if k.last_used_at else "-"
        print(
            f"{k.id}\t{k.key_prefix}\t{k.uid}\t{k.tier or '-'}\t{k.status}\t{k.name}\t{used}\t"
            + "\t".join(_scope_columns(k))
        )
    return 0


def _scope_columns(k: ApiKey) -> list[str]:
    """models, expires, rpm, tpd, budget/period, team and MCP tools of a key; `-` for what is
    not set (`*` for every model or tool)."""
    budget = (
        f"{fields.money_text(k.max_budget_usd)}/{k.budget_period}"
        if k.max_budget_usd is not None
        else "-"
    )
    return [
        ",".join(k.models) if k.models is not None else "*",
        k.expires_at.isoformat() if k.expires_at else "-",
        "-" if k.rpm is None else str(k.rpm),
        "-" if k.tpd is None else str(k.tpd),
        budget,
        k.team or "-",
        ",".join(k.mcp_tools) if k.mcp_tools is not None else "*",
    ]


async def _keys_revoke(config: Config, args: argparse.Namespace) -> int:
    count = await _with_store(config, lambda store: store.revoke_key(args.key))
    if not count:
        print(f"gateway: no active key matches {args.key!r}", file=sys.stderr)
        return 1
    print(f"revoked {count} key(s)")
    return 0


async def _nothing(store: Store) -> None:
    return None


async def _migrate(config: Config, args: argparse.Namespace) -> int:
    await _with_store(config, _nothing)  # opening the store applies the schema
    print(f"schema applied to {config.database.url.split('@')[-1]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load(config_path(args.config))
        if args.command != "serve":
            logs.configure("WARNING")
        if args.command == "check-config":
            print(f"{config.source}: ok")
            print("\n".join(routing_table(config)))
            return 0
        if args.command == "serve":
            return run(config, args.host, args.port, args.workers)
        action = {
            "migrate": _migrate,
            "create": _keys_create,
            "list": _keys_list,
            "revoke": _keys_revoke,
        }[args.action if args.command == "keys" else args.command]
        return asyncio.run(action(config, args))
    except ConfigError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    except InvalidRequest as error:  # a bad option value (keys create)
        print(f"gateway: {error.message}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"gateway: database unavailable: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"gateway: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
