"""Reload inside a running app (gateway/reload.py): what swaps, what waits for a restart, what is
refused, and that a stream in flight outlives the upstream client it started on."""

from __future__ import annotations

import asyncio
import copy
import logging

import aiohttp
import pytest
import yaml

from gateway.config import parse
from gateway.proxy.upstream import build_upstreams
from gateway.web.lifecycle import RELOADER, InFlight
from gateway.web.reload import Reloader, rebuild_upstreams
from tests.support.clients import post_chat
from tests.support.gateway import USER_KEY
from tests.support.upstream import wait_for

HELLO = [{"role": "user", "content": "hi"}]
NEW_KEY = "sk-test-reloaded-key"


@pytest.fixture
def root_level():
    """Reloads set the root logger's level: put it back afterwards."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


async def _chat(http, gateway, key: str, model: str = "echo") -> aiohttp.ClientResponse:
    async with post_chat(http, gateway, {"model": model, "messages": HELLO}, key) as resp:
        await resp.read()
        return resp


def _fields(caplog, message: str) -> dict:
    records = [r for r in caplog.records if r.getMessage() == message]
    assert records, f"no log record {message!r}"
    return records[-1].fields


async def test_reload_swaps_models_keys_tiers_sessions_and_level(
    gateway, gateway_config, root_level
):
    mapping = copy.deepcopy(gateway_config)
    mapping["models"]["echo-2"] = {"provider": "echo", "model": "echo"}
    mapping["auth"]["keys"] = [{"key": NEW_KEY, "user": "dave", "tier": "gold"}]
    mapping["quota"]["tiers"]["gold"] = {"rpm": 7, "tpd": 700}
    mapping["sessions"] = {"history_max_tokens": 100, "history_max_messages": 3}
    mapping["logging"] = {"level": "WARNING"}
    assert gateway.runner.app[RELOADER].apply(parse(mapping, "test-config", {}))

    async with aiohttp.ClientSession() as http:
        assert (await _chat(http, gateway, USER_KEY)).status == 401
        resp = await _chat(http, gateway, NEW_KEY, model="echo-2")
        assert resp.status == 200
        assert resp.headers["x-ratelimit-limit-requests"] == "7"
        assert resp.headers["x-ratelimit-limit-tokens"] == "700"
    s = gateway.services
    assert s.config.sessions.history_max_messages == 3
    assert "echo-2" in s.router.models
    assert logging.getLogger().level == logging.WARNING


async def test_reload_keeps_server_database_and_redis_until_restart(
    gateway, gateway_config, caplog, tmp_path
):
    before = gateway.services.config
    mapping = copy.deepcopy(gateway_config)
    mapping["server"]["max_body_bytes"] = 2048
    mapping["database"]["url"] = f"sqlite:///{tmp_path}/other.db"
    mapping["redis"]["url"] = "redis://127.0.0.1:1/0"
    with caplog.at_level(logging.INFO):
        assert gateway.runner.app[RELOADER].apply(parse(mapping, "test-config", {}))
    assert _fields(caplog, "config reload: changes that need a restart were ignored") == {
        "ignored": ["server", "database", "redis"]
    }
    after = gateway.services.config
    assert (after.server, after.database, after.redis) == (
        before.server,
        before.database,
        before.redis,
    )


async def test_bad_file_or_level_is_refused_and_config_stays(
    gateway, gateway_config, caplog, tmp_path
):
    s = gateway.services
    before = (s.config, s.router, s.upstreams)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  echo: {provider: nowhere}\n", encoding="utf-8")
    reloader = Reloader(s, str(bad), InFlight().settled)
    with caplog.at_level(logging.INFO):
        assert reloader.reload() is False
        mapping = copy.deepcopy(gateway_config)
        mapping["logging"] = {"level": "LOUD"}
        bad.write_text(yaml.safe_dump(mapping), encoding="utf-8")
        assert reloader.reload() is False
    reasons = [
        r.fields["reason"]
        for r in caplog.records
        if r.getMessage() == "config reload refused, keeping the running config"
    ]
    assert len(reasons) == 2
    assert "models.echo.provider: unknown provider 'nowhere'" in reasons[0]
    assert "logging.level: must be one of DEBUG" in reasons[1]
    assert (s.config, s.router, s.upstreams) == before


async def test_stream_in_flight_outlives_its_replaced_upstream_client(
    gateway, gateway_config, upstream
):
    upstream.behaviour.chunk_delay_s = 0.15
    upstream.behaviour.split = 60
    s = gateway.services
    old = s.upstreams["fake"]
    closed = []
    original_close = old.close

    async def spy_close() -> None:
        closed.append(True)
        await original_close()

    old.close = spy_close
    mapping = copy.deepcopy(gateway_config)
    mapping["providers"]["fake"]["read_timeout_s"] = 3  # a changed provider: a new client
    body = {
        "model": "fake-model",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},  # so the relayed bytes equal upstream's
    }
    async with aiohttp.ClientSession() as http, post_chat(http, gateway, body) as resp:
        received = await resp.content.readany()
        assert gateway.runner.app[RELOADER].apply(parse(mapping, "test-config", {}))
        assert s.upstreams["fake"] is not old
        assert s.upstreams["echo"] is not None
        await asyncio.sleep(0.3)
        assert not closed, "closed while a request begun before the reload was streaming"
        received += await resp.read()
        assert (await _chat(http, gateway, USER_KEY, model="fake-model")).status == 200
    assert received == upstream.streamed[0]
    assert await wait_for(lambda: bool(closed), timeout_s=5)


def test_rebuild_upstreams_keeps_unchanged_replaces_changed_lingers_removed():
    before = parse(
        {
            "providers": {
                "a": {"type": "echo"},
                "b": {"type": "echo", "chunk_delay_s": 0.1},
                "c": {"type": "echo"},
            }
        },
        "before",
        {},
    ).providers
    after = parse(
        {"providers": {"a": {"type": "echo"}, "b": {"type": "echo", "chunk_delay_s": 0.2}}},
        "after",
        {},
    ).providers
    old = build_upstreams(before)
    new, retired = rebuild_upstreams(old, before, after)
    assert new["a"] is old["a"]
    assert new["b"] is not old["b"] and new["b"].provider.chunk_delay_s == 0.2
    assert new["c"] is old["c"]  # until the requests that planned with it have ended
    assert retired == {"b": old["b"], "c": old["c"]}


async def test_inflight_settled_waits_only_for_older_requests():
    tracker = InFlight()
    first, second = tracker.begin(), tracker.begin()
    waiter = asyncio.create_task(tracker.settled(5, every_s=0.01))
    await asyncio.sleep(0.05)
    later = tracker.begin()  # begun after the call: not waited for
    tracker.end(first)
    await asyncio.sleep(0.05)
    assert not waiter.done()
    tracker.end(second)
    assert await asyncio.wait_for(waiter, 1) is True
    assert tracker.count == 1
    tracker.end(later)
    assert await tracker.settled(0.05) is True
    blocker = tracker.begin()
    assert await tracker.settled(0.05, every_s=0.01) is False
    tracker.end(blocker)
