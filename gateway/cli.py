"""The `gateway` command: serve, migrate, keys (create/list/revoke) and check-config.
Bad configuration ends with one readable line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from . import logs
from .auth import hash_key, new_key
from .config import Config, ConfigError, Deployment, ProviderConfig, config_path, load
from .store import ApiKey, Store, StoreUnavailable
from .store.backends import open_store
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
        line += f"  price in/out per 1M: {model.input_price}/{model.output_price}"
        lines.append(line)
    r = config.routing
    lines.append(
        f"routing: up to {max(1, r.max_attempts)} attempts, backoff {r.backoff_base_s}s doubling"
        f" to {r.backoff_max_s}s, cooldown {r.cooldown_s}s after"
        f" {max(1, r.cooldown_failures)} failures in a row"
    )
    return lines


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


async def _keys_create(config: Config, args: argparse.Namespace) -> int:
    key = new_key()
    now = datetime.now(UTC)
    row = ApiKey(
        id="", key_hash=hash_key(key), key_prefix=key[:12], uid=args.user, name=args.name,
        tier=args.tier, status="active", created_at=now, last_used_at=None,
    )  # fmt: skip
    saved = await _with_store(config, lambda store: store.create_key(row))
    print(f"created key id={saved.id} prefix={saved.key_prefix} user={saved.uid}", file=sys.stderr)
    print(key)
    return 0


async def _keys_list(config: Config, args: argparse.Namespace) -> int:
    for k in await _with_store(config, lambda store: store.list_keys(args.user)):
        used = k.last_used_at.isoformat() if k.last_used_at else "-"
        print(f"{k.id}\t{k.key_prefix}\t{k.uid}\t{k.tier or '-'}\t{k.status}\t{k.name}\t{used}")
    return 0


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
    except StoreUnavailable as error:
        print(f"gateway: database unavailable: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"gateway: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
