"""End-to-end quotas (SPEC 4.4) through the official SDK, on both limiter backends.
Exact RPM admission, daily tokens, x-ratelimit-* headers, /v1/ai/usage and quota overrides."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
import openai
import pytest

from gateway.accounting.tokens import estimate_prompt_tokens, estimate_tokens
from tests.support.clients import call, sdk
from tests.support.databases import delete_redis_keys
from tests.support.gateway import (
    ADMIN_KEY,
    OTHER_KEY,
    USER_KEY,
    RunningGateway,
    base_config,
    start_gateway,
)
from tests.support.upstream import FakeUpstream, wait_for

HELLO = [{"role": "user", "content": "hi"}]
# The fake upstream's usage for every answer, streamed or not: 11 prompt + 3 completion.
PROMPT, COMPLETION = 11, 3
PER_ANSWER = PROMPT + COMPLETION
TOKENS_ONLY_KEY = "sk-test-user-c"
PRO_KEY = "sk-test-user-d"
REQUEST_HEADERS = ("limit-requests", "remaining-requests", "reset-requests")
TOKEN_HEADERS = ("limit-tokens", "remaining-tokens", "reset-tokens")
# OpenAI's reset strings, as Go prints durations: `120ms`, `1s`, `1.5s`, `6m0s`, `2h3m4.5s`.
DURATION = re.compile(r"(?:(\d+)h(?=\d+m))?(?:(\d+)m(?=[\d.]+s$))?(?:(\d+(?:\.\d+)?)s|(\d+)ms)")


def seconds(text: str) -> float:
    """Parse an OpenAI reset string; fails the test on any other format."""
    match = DURATION.fullmatch(text)
    assert match, f"not an OpenAI duration: {text!r}"
    hours, minutes, secs, millis = match.groups()
    if millis is not None:
        assert 0 < int(millis) < 1000, text
        return int(millis) / 1000
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs)


def to_midnight() -> float:
    return 86400 - time.time() % 86400


@pytest.fixture(autouse=True)
def not_near_midnight() -> None:
    """Daily counters reset at UTC midnight; a test spanning it would see two days."""
    if to_midnight() < 120:
        pytest.skip("too close to UTC midnight for daily-quota arithmetic")


def quota_config(upstream: FakeUpstream, tmp_path, backend: str, *, rpm: int, tpd: int) -> dict:
    """base_config with alice on tier `limited` (rpm, tpd); bob unlimited; carol tokens only;
    dave on `pro` (requests only)."""
    config = base_config(upstream.base_url, tmp_path, redis=backend)
    config["redis"]["prefix"] = f"gwtest-quota-{uuid.uuid4().hex[:12]}"
    config["quota"]["tiers"].update(
        {
            "limited": {"rpm": rpm, "tpd": tpd},
            "unlimited": {"rpm": 0, "tpd": 0},
            "tokens-only": {"rpm": 0, "tpd": 500},
        }
    )
    config["auth"]["keys"] = [
        {"key": USER_KEY, "user": "alice", "tier": "limited"},
        {"key": OTHER_KEY, "user": "bob", "tier": "unlimited"},
        {"key": TOKENS_ONLY_KEY, "user": "carol", "tier": "tokens-only"},
        {"key": PRO_KEY, "user": "dave", "tier": "pro"},
    ]
    return config


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[[dict], Awaitable[RunningGateway]]]:
    """Start gateways from config mappings; close them, then delete their Redis keys."""
    started: list[RunningGateway] = []

    async def start(mapping: dict) -> RunningGateway:
        running = await start_gateway(mapping)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.close()
    prefixes = {r.config.redis.prefix for r in started if r.config.redis.url.startswith("redis")}
    if prefixes:
        await delete_redis_keys(prefixes)


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive, as the SDK gives them
    code: str | None = None
    text: str = ""

    def rl(self, name: str) -> str | None:
        return self.headers.get(f"x-ratelimit-{name}")


async def chat(
    client: openai.AsyncOpenAI, model: str = "fake-model", stream: bool = False, **extra
) -> Reply:
    """One chat request; the answer (a stream read to its end) or the error, with headers."""
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=extra.pop("messages", HELLO), stream=stream, **extra
        )
    except openai.APIStatusError as err:
        return Reply(err.status_code, err.response.headers, err.code)
    answer = raw.parse()
    if stream:
        text = "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])
    else:
        text = answer.choices[0].message.content
    return Reply(raw.status_code, raw.headers, None, text)


async def usage(gateway: RunningGateway, key: str = USER_KEY) -> dict:
    async with aiohttp.ClientSession() as http:
        status, headers, body = await call(http, "GET", f"{gateway.base_url}/ai/usage", key)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    return body


async def put_quota(gateway: RunningGateway, uid: str, body: dict) -> dict:
    url = f"{gateway.url}/admin/users/{uid}/quota"
    async with aiohttp.ClientSession() as http:
        status, headers, effective = await call(http, "PUT", url, ADMIN_KEY, body)
    assert status == 200, effective
    assert headers["Content-Type"].startswith("application/json")
    return effective


async def test_concurrent_requests_admit_exactly_rpm(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=10, tpd=0))
    async with sdk(gateway) as client:
        replies = await asyncio.gather(*(chat(client) for _ in range(30)))
    admitted = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status != 200]
    assert len(admitted) == 10
    # Each admission took its own token: the remaining counts are 9, 8, ..., 0.
    assert sorted(int(r.rl("remaining-requests")) for r in admitted) == list(range(10))
    assert {(r.status, r.code) for r in refused} == {(429, "rate_limit_exceeded")}
    for r in refused:
        assert r.rl("limit-requests") == "10" and r.rl("remaining-requests") == "0"
        assert 1 <= int(r.headers["retry-after"]) <= 6  # one token refills in 6 s


async def test_sdk_raises_rate_limit_error(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=1, tpd=0))
    async with sdk(gateway) as client:
        first = await chat(client)
        with pytest.raises(openai.RateLimitError) as err:
            await client.chat.completions.create(model="fake-model", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as err_stream:
            await client.chat.completions.create(model="fake-model", messages=HELLO, stream=True)
    # A fresh bucket of 1 that just gave its token is full again in exactly one minute.
    assert first.status == 200 and first.rl("reset-requests") == "1m0s"
    for e in (err.value, err_stream.value):
        assert e.code == "rate_limit_exceeded" and e.type == "rate_limit_error"
        assert e.status_code == 429 and 1 <= int(e.response.headers["retry-after"]) <= 60


async def test_daily_tokens_across_stream_and_non_stream(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=100, tpd=40))
    async with sdk(gateway) as client:
        first = await chat(client)
        second = await chat(client, stream=True)
        third = await chat(client)
        # 3 x 14 = 42 >= 40: the day's quota is used up, whatever the next request's shape.
        refused = [await chat(client, stream=True), await chat(client)]
        with pytest.raises(openai.RateLimitError) as err:
            await client.chat.completions.create(model="fake-model", messages=HELLO)
    assert [r.status for r in (first, second, third)] == [200, 200, 200]
    assert second.text == "Hello from upstream"
    assert [r.rl("remaining-tokens") for r in (first, second, third)] == ["40", "26", "12"]
    assert err.value.code == "daily_token_quota_exceeded"
    for r in refused:
        assert (r.status, r.code) == (429, "daily_token_quota_exceeded")
        assert r.rl("limit-tokens") == "40" and r.rl("remaining-tokens") == "0"
        # Retry at midnight: whole seconds, at least 1.
        assert abs(int(r.headers["retry-after"]) - to_midnight()) <= 5
        assert abs(seconds(r.rl("reset-tokens")) - to_midnight()) <= 5
    assert len(upstream.received) == 3, "refused requests never reach upstream"
    state = await usage(gateway)
    assert state["tokens"] == {
        "limit": 40,
        "used": 3 * PER_ANSWER,
        "remaining": 0,
        "reset": state["tokens"]["reset"],
    }


async def test_client_disconnect_mid_stream_is_charged(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=100, tpd=10000))
    pieces = [f" word{i}" for i in range(60)]
    upstream.behaviour.pieces = pieces
    upstream.behaviour.chunk_delay_s = 0.05
    upstream.behaviour.split = 100  # about one event per write
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="fake-model", messages=HELLO, stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
    assert await wait_for(lambda: upstream.cancelled == 1, timeout_s=5)

    async def charged() -> dict | None:
        state = await usage(gateway)
        return state if state["tokens"]["used"] and state["by_model"] else None

    state = None
    for _ in range(50):
        if state := await charged():
            break
        await asyncio.sleep(0.1)
    assert state is not None, "a stream the client closed must still be charged"
    [row] = state["by_model"]
    # Upstream never sent usage, so the gateway estimated what was generated before the close.
    assert row["requests"] == 1 and row["prompt_tokens"] == estimate_prompt_tokens(HELLO)
    assert 0 < row["completion_tokens"] < estimate_tokens("".join(pieces))
    assert state["tokens"]["used"] == row["prompt_tokens"] + row["completion_tokens"]
    assert state["tokens"]["remaining"] == 10000 - state["tokens"]["used"]


async def test_ratelimit_headers_on_success_4xx_and_429(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=5, tpd=1000))
    seen: list[tuple[int, Reply]] = []  # (tokens taken so far, reply)
    async with sdk(gateway) as client:
        started = time.monotonic()
        seen.append((1, await chat(client)))
        seen.append((1, await chat(client, model="no-such-model")))  # 404: takes nothing
        seen.append((1, await chat(client, messages=[])))  # 400: takes nothing
        seen.append((2, await chat(client, stream=True)))
        upstream.behaviour.status = 400  # upstream 4xx after admission: its token is spent
        seen.append((3, await chat(client)))
        upstream.behaviour.status = 200
        seen.append((4, await chat(client)))
        seen.append((5, await chat(client, stream=True)))
        seen.append((5, await chat(client)))  # 429
        elapsed = time.monotonic() - started
    statuses = [(r.status, r.code) for _, r in seen]
    assert seen[0][1].rl("reset-requests") == "12s"  # a fresh bucket, exactly one token short
    assert statuses == [
        (200, None),
        (404, "model_not_found"),
        (400, "invalid_value"),  # empty messages
        (200, None),
        (400, "bad"),
        (200, None),
        (200, None),
        (429, "rate_limit_exceeded"),
    ]
    # Tokens charged before each reply: answers are 14, the upstream 400 carries no usage.
    used_before = [0, 14, 14, 14, 28, 28, 42, 56]
    for (taken, r), used in zip(seen, used_before, strict=True):
        assert r.rl("limit-requests") == "5"
        assert r.rl("remaining-requests") == str(5 - taken)
        # The bucket is full again `taken` x 12 s after the first request, less what refilled.
        reset = seconds(r.rl("reset-requests"))
        assert taken * 12 - elapsed - 0.002 <= reset <= taken * 12 + 0.001, r.rl("reset-requests")
        assert r.rl("limit-tokens") == "1000"
        assert r.rl("remaining-tokens") == str(1000 - used)
        assert abs(seconds(r.rl("reset-tokens")) - to_midnight()) <= 5
        assert ("retry-after" in r.headers) == (r.status == 429)
        assert r.headers.get("x-request-id")
    refused = seen[-1][1]
    # One token refills in 12 s: Retry-After is that, in whole seconds.
    assert 12 - elapsed - 1 <= int(refused.headers["retry-after"]) <= 12


async def test_unlimited_quota_omits_its_headers(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=5, tpd=1000))
    async with (
        sdk(gateway, OTHER_KEY) as bob,
        sdk(gateway, TOKENS_ONLY_KEY) as carol,
        sdk(gateway, PRO_KEY) as dave,
    ):
        unlimited = [await chat(bob), await chat(bob, model="no-such-model")]
        tokens_only = [await chat(carol), await chat(carol, stream=True)]
        requests_only = [await chat(dave), await chat(dave, messages=[])]
    for r in unlimited:
        assert not [h for h in r.headers if h.startswith("x-ratelimit-")], r.headers
    assert [r.status for r in unlimited] == [200, 404]
    for r in tokens_only:
        assert all(r.rl(h) is None for h in REQUEST_HEADERS)
        assert r.rl("limit-tokens") == "500"
    assert [r.rl("remaining-tokens") for r in tokens_only] == ["500", "486"]
    for r in requests_only:
        assert all(r.rl(h) is None for h in TOKEN_HEADERS)
        assert r.rl("limit-requests") == "1000"
    assert [r.rl("remaining-requests") for r in requests_only] == ["999", "999"]
    assert requests_only[0].rl("reset-requests") == "60ms"  # one token of 1000 a minute


async def test_usage_endpoint_after_known_traffic(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=10, tpd=1000))
    started = time.monotonic()
    async with sdk(gateway) as client:
        replies = [await chat(client), await chat(client, stream=True), await chat(client)]
        refused = await chat(client, model="no-such-model")
    state = await usage(gateway)
    elapsed = time.monotonic() - started
    assert [r.status for r in replies] == [200, 200, 200] and refused.status == 404
    assert state["object"] == "ai.usage" and state["user"] == "alice"
    assert state["tier"] == "limited"
    assert state["requests"]["limit"] == 10 and state["requests"]["remaining"] == 7
    assert 3 * 6 - elapsed - 0.002 <= seconds(state["requests"]["reset"]) <= 3 * 6 + 0.001
    assert state["tokens"]["limit"] == 1000
    assert state["tokens"]["used"] == 3 * PER_ANSWER
    assert state["tokens"]["remaining"] == 1000 - 3 * PER_ANSWER
    assert abs(seconds(state["tokens"]["reset"]) - to_midnight()) <= 5
    by_model = {row["model"]: row for row in state["by_model"]}
    assert by_model["fake-model"] == {
        "model": "fake-model",
        "requests": 3,
        "prompt_tokens": 3 * PROMPT,
        "completion_tokens": 3 * COMPLETION,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cache_savings_usd": "0.000000000",
        "cache_hits": 0,
        "cache_saved_tokens": 0,
        "cache_saved_usd": "0.000000000",
        "cost_usd": by_model["fake-model"]["cost_usd"],
    }
    # input 1.5, output 2.0 USD per million tokens.
    assert float(by_model["fake-model"]["cost_usd"]) == pytest.approx((33 * 1.5 + 9 * 2.0) / 1e6)
    assert by_model["no-such-model"]["requests"] == 1
    assert by_model["no-such-model"]["prompt_tokens"] == 0
    async with sdk(gateway, OTHER_KEY) as bob:
        await chat(bob)
    bob_state = await usage(gateway, OTHER_KEY)
    assert bob_state["requests"] == {"limit": None, "remaining": None, "reset": None}
    assert bob_state["tokens"]["limit"] is None and bob_state["tokens"]["remaining"] is None
    assert bob_state["tokens"]["used"] == PER_ANSWER


async def test_admin_override_takes_effect_at_once(backend, upstream, tmp_path, gateways):
    gateway = await gateways(quota_config(upstream, tmp_path, backend, rpm=10, tpd=1000))
    async with sdk(gateway) as client:
        before = await chat(client)
        changed = await put_quota(gateway, "alice", {"rpm": 2, "tpd": 50})
        after = [await chat(client), await chat(client), await chat(client)]
        reset = await put_quota(gateway, "alice", {"tier": "unlimited"})
        free = await chat(client)
    assert before.rl("limit-requests") == "10" and before.rl("limit-tokens") == "1000"
    assert changed["effective"] == {"rpm": 2, "tpd": 50}
    # The bucket had 9 tokens; the new capacity caps it at 2.
    assert [(r.status, r.rl("remaining-requests")) for r in after] == [
        (200, "1"),
        (200, "0"),
        (429, "0"),
    ]
    assert [r.rl("remaining-tokens") for r in after] == ["36", "22", "8"]
    assert all(r.rl("limit-tokens") == "50" for r in after)
    assert reset["effective"] == {"rpm": 0, "tpd": 0}
    assert free.status == 200 and free.rl("limit-requests") is None


async def test_override_reaches_a_second_instance_sharing_postgres_and_redis(
    postgres_url, upstream, tmp_path, gateways
):
    # postgres_url is set up first, so the gateways are closed before the database is dropped.
    config = quota_config(upstream, tmp_path, "redis", rpm=10, tpd=1000)
    config["database"]["url"] = postgres_url
    config["auth"]["cache_refresh_s"] = 0.2
    first = await gateways(config)
    second = await gateways(config)
    async with sdk(first) as on_first, sdk(second) as on_second:
        assert (await chat(on_first)).rl("remaining-requests") == "9"
        await first.services.recorder.drain()
        probe = await chat(on_second, model="no-such-model")  # 404s peek, take nothing
        assert probe.rl("limit-requests") == "10" and probe.rl("remaining-requests") == "9"
        assert probe.rl("remaining-tokens") == str(1000 - PER_ANSWER)  # shared counter

        await put_quota(first, "alice", {"rpm": 2, "tpd": 100})
        assert (await chat(on_first, model="no-such-model")).rl("limit-requests") == "2"
        deadline = time.monotonic() + 5  # SPEC: on every instance within 5 seconds
        while time.monotonic() < deadline:
            probe = await chat(on_second, model="no-such-model")
            if probe.rl("limit-requests") == "2":
                break
            await asyncio.sleep(0.05)
        assert probe.rl("limit-requests") == "2", "the override never reached instance 2"
        assert probe.rl("limit-tokens") == "100"

        # One bucket for both instances, capped at the new capacity of 2.
        replies = []
        for client in (on_second, on_first, on_second, on_first):
            replies.append(await chat(client))
            # Tokens are charged just after each answer; let that land before the next request.
            await asyncio.gather(first.services.recorder.drain(), second.services.recorder.drain())
    assert [(r.status, r.rl("remaining-requests")) for r in replies] == [
        (200, "1"),
        (200, "0"),
        (429, "0"),
        (429, "0"),
    ]
    assert [r.rl("remaining-tokens") for r in replies] == ["86", "72", "58", "58"]


def test_duration_parser_accepts_only_openai_formats() -> None:
    assert seconds("120ms") == 0.12 and seconds("6m0s") == 360 and seconds("1.5s") == 1.5
    assert seconds("2h3m4.5s") == 7384.5
    for bad in ("1000ms", "6m", "1h2s", "0.5", ""):
        with pytest.raises(AssertionError):
            seconds(bad)
