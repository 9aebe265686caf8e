"""The response cache's pure parts and its memory backend: what is cacheable, what the digest
sees, entries in and out, expiry and eviction on an injected clock, the guard around Redis, and
the `cache:` settings of config.yaml."""

from __future__ import annotations

import pytest

from gateway.cache import Entry, GuardedCache, MemoryCache, Mode, cache_key, cacheable, mode_of
from gateway.config import CacheConfig, ConfigError, parse

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def key(body=BODY, endpoint="chat", stream=False, scope="u:alice") -> str:
    return cache_key("gw", endpoint, stream, scope, body)


def test_only_temperature_zero_is_cacheable_and_embeddings_need_none():
    assert cacheable("chat", BODY) and cacheable("responses", {**BODY, "temperature": 0.0})
    assert not cacheable("chat", {**BODY, "temperature": 0.2})
    assert not cacheable("chat", {k: v for k, v in BODY.items() if k != "temperature"})
    assert not cacheable("chat", {**BODY, "temperature": False})
    assert cacheable("embeddings", {"model": "e", "input": "x"})
    assert not cacheable("embeddings", {"model": "e", "input": "x", "temperature": 1})


@pytest.mark.parametrize(
    "field", ["session_id", "previous_response_id", "conversation", "background"]
)
def test_answers_that_depend_on_state_are_not_cacheable(field):
    assert not cacheable("chat", {**BODY, field: "x"})


def test_the_digest_ignores_field_order_and_fields_that_cannot_change_the_answer():
    reordered = dict(reversed(list(BODY.items())))
    noise = {"user": "u", "metadata": {"a": 1}, "stream_options": {"include_usage": True}}
    assert key() == key(reordered) == key({**BODY, **noise, "stream": True})


@pytest.mark.parametrize(
    "change",
    [
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"tool_choice": "required"},
        {"response_format": {"type": "json_object"}},
        {"max_tokens": 5},
        {"stop": ["\n"]},
        {"seed": 1},
        {"model": "other"},
        {"unknown_new_field": 1},
    ],
)
def test_every_other_field_changes_the_digest(change):
    assert key({**BODY, **change}) != key()


def test_endpoint_form_and_scope_change_the_digest_and_the_scope_is_the_hash_tag():
    keys = {key(), key(endpoint="responses"), key(stream=True), key(scope="t:squad")}
    assert len(keys) == 4
    tag = key().split("{")[1].split("}")[0]
    assert key(BODY | {"seed": 3}).split("{")[1].split("}")[0] == tag
    assert key(scope="u:bob").split("{")[1].split("}")[0] != tag
    assert key().startswith("gw:cache:{")


def test_modes_of_the_request_header():
    assert mode_of(None) is Mode.USE and mode_of("true") is Mode.USE
    for value in ("false", "bypass", "FALSE", " no "):
        assert mode_of(value) is Mode.BYPASS
    assert mode_of("Refresh") is Mode.REFRESH


def test_an_entry_round_trips_and_garbage_is_a_miss():
    entry = Entry(1700000000.5, 200, "application/json", (11, 3, 0, 0, 0, 0, 0), b'{"a":1}')
    assert Entry.decode(entry.encode()) == entry
    assert Entry.decode(b"") is None and Entry.decode(b"GWC1\x00\x00\x00\xffxx") is None
    assert Entry.decode(b"not an entry at all") is None
    assert entry.age_s(1700000010.5) == 10


async def test_memory_entries_expire_on_the_clock_and_the_oldest_go_first():
    now = [100.0]
    cache = MemoryCache(max_bytes=10, clock=lambda: now[0])
    await cache.put("a", b"12345", ttl_s=5)
    await cache.put("b", b"12345", ttl_s=50)
    assert await cache.get("a") == b"12345"
    await cache.put("c", b"123", ttl_s=50)  # over 10 bytes: the least recently used goes
    assert await cache.get("b") is None and await cache.get("a") == b"12345"
    now[0] += 5
    assert await cache.get("a") is None and await cache.get("c") == b"123"
    await cache.put("huge", b"x" * 11, ttl_s=50)  # larger than the whole cache: not kept
    assert await cache.get("huge") is None and cache.size == 3


class Flaky:
    def __init__(self) -> None:
        self.down = True
        self.calls = 0
        self.kept: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.down:
            raise ConnectionError("Connection refused")
        return self.kept.get(key)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("Connection refused")
        self.kept[key] = value


async def test_the_guard_turns_failures_into_misses_and_waits_before_asking_again(caplog):
    now, errors, inner = [0.0], [], Flaky()
    guard = GuardedCache(inner, retry_s=5, on_error=lambda: errors.append(1), clock=lambda: now[0])
    assert await guard.get("k") is None
    await guard.put("k", b"v", 10)  # skipped: Redis is being left alone
    assert await guard.get("k") is None
    assert (inner.calls, len(errors)) == (1, 1)
    assert "response cache unavailable" in caplog.text
    inner.down = False
    now[0] += 5
    await guard.put("k", b"v", 10)
    assert await guard.get("k") == b"v" and guard.down_until is None


def test_config_cache_default_per_model_override_and_off():
    config = parse(
        {
            "providers": {"echo": {"type": "echo"}},
            "cache": {"ttl_s": 600, "max_entry_bytes": 4096},
            "models": {
                "a": {"provider": "echo"},
                "b": {"provider": "echo", "cache": {"ttl_s": 60, "max_entry_bytes": 2048}},
                "c": {"provider": "echo", "cache": False},
                "d": {"provider": "echo", "cache": True},
                "e": {"provider": "echo", "cache": {"ttl_s": 5}},
            },
        },
        "f.yaml",
        {},
    )
    m = config.models
    assert m["a"].cache == config.cache == CacheConfig(ttl_s=600, max_entry_bytes=4096)
    assert m["b"].cache == CacheConfig(ttl_s=60, max_entry_bytes=2048)
    assert m["c"].cache is None and m["d"].cache == config.cache
    assert m["e"].cache == CacheConfig(ttl_s=5, max_entry_bytes=4096)  # the rest from the top
    plain = parse({"providers": {"echo": {"type": "echo"}}, "models": {"a": {"provider": "echo"}}},
                  "f.yaml", {})  # fmt: skip
    assert plain.cache is None and plain.models["a"].cache is None


@pytest.mark.parametrize(
    "cache, where",
    [({"ttl_s": 0}, "cache.ttl_s"), ({"max_entry_bytes": 0}, "cache.max_entry_bytes"),
     ({"ttl": 5}, "cache.ttl")],
)  # fmt: skip
def test_bad_cache_settings_are_one_line_errors(cache, where):
    with pytest.raises(ConfigError) as caught:
        parse({"cache": cache}, "f.yaml", {})
    assert f"f.yaml: {where}" in str(caught.value)
