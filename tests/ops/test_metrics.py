"""SPEC section 6 metrics after known traffic through the in-process gateway: every counter and
histogram moves by exactly what was sent, gauges return to rest, no user or key label appears."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest

from tests.support.clients import post_chat
from tests.support.gateway import USER_KEY, start_gateway
from tests.support.upstream import wait_for

from . import scrape as prom

FREE_KEY = "sk-test-free-user"
HELLO = [{"role": "user", "content": "hi"}]
# A histogram shows in a scrape by its samples (`_bucket` and the others), not by its base name.
SPEC_SAMPLES = {f"{m}_bucket" if m in prom.SPEC_HISTOGRAMS else m for m in prom.SPEC_METRICS}


async def _post(http, gateway, body: dict, key: str = USER_KEY) -> tuple[int, bytes]:
    async with post_chat(http, gateway, body, key) as resp:
        return resp.status, await resp.read()


@pytest.fixture
async def traffic_gateway(gateway_config):
    keys = gateway_config["auth"]["keys"] + [{"key": FREE_KEY, "user": "carol", "tier": "free"}]
    running = await start_gateway(gateway_config, auth={**gateway_config["auth"], "keys": keys})
    yield running
    await running.close()


async def test_counters_and_histograms_move_by_the_traffic_sent(traffic_gateway, upstream):
    gw = traffic_gateway
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            assert (await _post(http, gw, {"model": "fake-model", "messages": HELLO}))[0] == 200
        for _ in range(2):
            body = {"model": "fake-model", "messages": HELLO, "stream": True}
            assert (await _post(http, gw, body))[0] == 200
        upstream.behaviour.status = 500
        sent_before = len(upstream.received)
        assert (await _post(http, gw, {"model": "fake-model", "messages": HELLO}))[0] == 502
        failed_attempts = len(upstream.received) - sent_before  # routing may retry
        upstream.behaviour.status = 200
        statuses = [
            (await _post(http, gw, {"model": "echo", "messages": HELLO}, FREE_KEY))[0]
            for _ in range(6)
        ]  # the free tier allows 5 a minute
        assert statuses == [200] * 5 + [429]
        text = await prom.fetch(http, gw)

    v = prom.value
    ok = {"model": "fake-model", "provider": "fake", "status": "ok"}
    assert v(text, "gateway_requests_total", **ok, stream="false") == 3
    assert v(text, "gateway_requests_total", **ok, stream="true") == 2
    assert v(text, "gateway_requests_total", model="fake-model", status="upstream_error") == 1
    assert v(text, "gateway_requests_total", model="echo", provider="echo", status="ok") == 5
    assert v(text, "gateway_requests_total", model="echo", status="rejected") == 1
    assert v(text, "gateway_request_duration_seconds_count", model="fake-model") == 6
    assert v(text, "gateway_request_duration_seconds_count", stream="true") == 2
    assert v(text, "gateway_request_duration_seconds_bucket", model="fake-model", le="+Inf") == 6
    assert v(text, "gateway_time_to_first_token_seconds_count", model="fake-model") == 2
    # The fake upstream reports 11 prompt and 3 completion tokens per answer (5 answers).
    assert v(text, "gateway_tokens_total", model="fake-model", kind="prompt") == 55
    assert v(text, "gateway_tokens_total", model="fake-model", kind="completion") == 15
    per_answer = (11 * Decimal("1.5") + 3 * Decimal("2.0")) / 1_000_000
    assert v(text, "gateway_cost_usd_total", model="fake-model") == pytest.approx(
        float(5 * per_answer), rel=1e-9
    )
    assert failed_attempts >= 1
    assert v(text, "gateway_upstream_errors_total", provider="fake") == failed_attempts
    assert v(text, "gateway_rate_limited_total", limit="rpm") == 1
    assert v(text, "gateway_rate_limited_total", limit="tpd") == 0
    assert v(text, "gateway_active_streams") == 0
    assert v(text, "gateway_persist_failures_total") == 0
    assert prom.names(text) >= SPEC_SAMPLES
    labels = {label for _, got, _ in prom.samples(text) for label in got}
    assert not labels & {"user", "uid", "key", "key_id", "api_key"}


async def test_active_streams_and_queue_depth_gauges(gateway, upstream):
    upstream.behaviour.chunk_delay_s = 0.2
    upstream.behaviour.split = 150
    body = {"model": "fake-model", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as http, post_chat(http, gateway, body) as resp:
        await resp.content.readany()
        during = await prom.fetch(http, gateway)
        await resp.read()
        assert prom.value(during, "gateway_active_streams") == 1
        writer = gateway.services.writer
        assert await wait_for(lambda: writer.depth == 0)
        after = await prom.fetch(http, gateway)
    assert prom.value(after, "gateway_active_streams") == 0
    assert prom.value(after, "gateway_persist_queue_depth") == 0
