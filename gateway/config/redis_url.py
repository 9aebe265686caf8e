"""What `redis.url` names: one server, a Redis Cluster or a Sentinel-watched master. Pure parsing
(no redis import), shared by the config check and by gateway/redis_clients.py, which connects.

Forms:
    memory://                                       no Redis: limits per process
    redis://..., rediss://..., unix://...           one server, as redis-py reads the URL
    redis+cluster://[user:pass@]host:port[,host:port...][/]
                                                    startup nodes of a Redis Cluster (db 0 only)
    redis+sentinel://[user:pass@]host:port[,host:port...]/<service_name>[/<db>]
                                                    sentinels, and the master they watch
The port may be left out (6379 for cluster nodes, 26379 for sentinels); an IPv6 host is written
in brackets. The user and password (percent-encoded) are the data nodes'; sentinels are asked
without a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

CLUSTER = "redis+cluster://"
SENTINEL = "redis+sentinel://"
SINGLE = ("redis://", "rediss://", "unix://")
MEMORY = "memory://"
SCHEMES = (MEMORY, *SINGLE, CLUSTER, SENTINEL)
_DEFAULT_PORT = {"cluster": 6379, "sentinel": 26379}

Kind = Literal["memory", "single", "cluster", "sentinel"]


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed `redis.url`. `url` is the original; `nodes` are cluster startup nodes or
    sentinels; `service` and `db` are Sentinel's."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """The target `url` names; ValueError says what is wrong with it."""
    if url.startswith(MEMORY):
        return RedisTarget("memory", url)
    if url.startswith(SINGLE):
        return RedisTarget("single", url)
    if url.startswith(CLUSTER):
        kind: Kind = "cluster"
        rest = url[len(CLUSTER) :]
    elif url.startswith(SENTINEL):
        kind = "sentinel"
        rest = url[len(SENTINEL) :]
    else:
        raise ValueError(f"must start with {', '.join(SCHEMES[:-1])} or {SCHEMES[-1]}")
    if "?" in rest or "#" in rest:
        raise ValueError("takes no query or fragment")
    netloc, _, path = rest.partition("/")
    username, password = None, None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None
    nodes = tuple(_node(part, _DEFAULT_PORT[kind]) for part in netloc.split(","))
    segments = [s for s in path.split("/") if s] if path else []
    if kind == "cluster":
        if segments not in ([], ["0"]):
            raise ValueError("a Redis Cluster has only database 0: nothing may follow the nodes")
        return RedisTarget(kind, url, nodes, username=username, password=password)
    if not segments or len(segments) > 2:
        raise ValueError("must name the master: redis+sentinel://host:port/<service_name>[/db]")
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise ValueError(f"database must be a number, got {segments[1]!r}")
        db = int(segments[1])
    service = unquote(segments[0])
    return RedisTarget(kind, url, nodes, service, db, username, password)


def _node(text: str, default_port: int) -> tuple[str, int]:
    """`host[:port]` or `[v6]:port` as (host, port)."""
    if not text:
        raise ValueError("needs at least one host:port, and no empty one between commas")
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or not host or (tail and not tail.startswith(":")):
            raise ValueError(f"bad host {text!r}")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = text.partition(":")
        if not host or ":" in port_text:
            raise ValueError(f"bad host {text!r} (write an IPv6 address in brackets)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)
