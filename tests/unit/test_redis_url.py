"""`redis.url` forms: one server, a Redis Cluster, a Sentinel-watched master; what the config
accepts and how it says what is wrong."""

from __future__ import annotations

import re

import pytest

from gateway.config import ConfigError, parse
from gateway.config.redis_url import RedisTarget, parse_redis_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", RedisTarget("memory", "memory://")),
        ("redis://:pw@h:6380/2", RedisTarget("single", "redis://:pw@h:6380/2")),
        ("unix:///run/redis.sock", RedisTarget("single", "unix:///run/redis.sock")),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,node-c",
            RedisTarget(
                "cluster",
                "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,node-c",
                (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("node-c", 6379)),
            ),
        ),
        (
            "redis+cluster://gw:s%40cret@[::1]:7000/",
            RedisTarget(
                "cluster",
                "redis+cluster://gw:s%40cret@[::1]:7000/",
                (("::1", 7000),),
                username="gw",
                password="s@cret",
            ),
        ),
        (
            "redis+sentinel://:pw@s1:26380,s2/mymaster/3",
            RedisTarget(
                "sentinel",
                "redis+sentinel://:pw@s1:26380,s2/mymaster/3",
                (("s1", 26380), ("s2", 26379)),
                service="mymaster",
                db=3,
                password="pw",
            ),
        ),
        (
            "redis+sentinel://s1:26379/mymaster",
            RedisTarget(
                "sentinel", "redis+sentinel://s1:26379/mymaster", (("s1", 26379),), "mymaster"
            ),
        ),
    ],
)
def test_each_form_is_read(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://r", "must start with memory://, redis://, rediss://, unix://, redis+cluster://"),
        ("redis+cluster://", "needs at least one host:port"),
        ("redis+cluster://a:1,,b:2", "needs at least one host:port"),
        ("redis+cluster://a:1/2", "only database 0"),
        ("redis+cluster://a:http", "bad port"),
        ("redis+cluster://a:70000", "bad port"),
        ("redis+cluster://::1:7000", "IPv6 address in brackets"),
        ("redis+cluster://a:1?ssl=true", "no query"),
        ("redis+sentinel://s1:26379", "must name the master"),
        ("redis+sentinel://s1:26379/m/x", "database must be a number"),
        ("redis+sentinel://s1:26379/m/0/extra", "must name the master"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_redis_url(url)


def test_the_config_accepts_cluster_and_sentinel_urls_and_refuses_bad_ones() -> None:
    for url in ("redis+cluster://a:7000,b:7001", "redis+sentinel://s:26379/gw/0"):
        assert parse({"redis": {"url": url}}, "f.yaml", {}).redis.url == url
    with pytest.raises(ConfigError, match=re.escape("f.yaml: redis.url: must name the master")):
        parse({"redis": {"url": "redis+sentinel://s:26379"}}, "f.yaml", {})
