"""Traces (SPEC 15) as a real OTLP/HTTP receiver gets them: server and attempt spans, their links,
the GenAI attributes, W3C context in and out, for every proxied API; content only when asked."""

from __future__ import annotations

import ast
import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from gateway.tracing.otlp import OtlpTracer
from gateway.web.keys import TRACER
from tests.support.clients import bearer
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.front_door import PROVIDER_KEY, UPSTREAM_ID, front_door_config
from tests.support.gateway import USER_KEY, RunningGateway, start_gateway
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.upstream import FakeUpstream

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
CLIENT_PARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
PROMPT = "What is the secret word of the llama?"
SECRETS = (USER_KEY, PROVIDER_KEY, "sk-upstream-secret")

Reply = tuple[int, CIMultiDict[str], bytes]


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    r = await OtlpReceiver().start()
    yield r
    await r.close()


def traced_config(
    claude: FakeAnthropic, upstream: FakeUpstream, tmp_path: Path, endpoint: str, **telemetry: Any
) -> dict[str, Any]:
    config = front_door_config(claude.base_url, upstream.base_url, tmp_path)
    config["telemetry"] = {"otlp_endpoint": endpoint, "service_name": "gw-test", **telemetry}
    config["models"]["retried"] = {
        "deployments": [{"provider": "fake", "model": "upstream-model"}],
        "fallbacks": ["fake-model"],
    }
    return config


@pytest.fixture
async def gateway(claude, upstream, receiver, tmp_path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(traced_config(claude, upstream, tmp_path, receiver.url))
    yield running
    await running.close()


async def send(
    gateway: RunningGateway, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Reply:
    sent = {**bearer(USER_KEY), **(headers or {})}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}{path}", json=body, headers=sent) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


async def flush(gateway: RunningGateway) -> None:
    """Export every span the gateway holds now."""
    tracer = gateway.runner.app[TRACER]
    assert isinstance(tracer, OtlpTracer)
    await tracer.flush()


async def trace_of(
    gateway: RunningGateway, receiver: OtlpReceiver, headers: CIMultiDict[str]
) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
    await flush(gateway)
    return receiver.trace(headers["X-Request-Id"])


def assert_no_secret(spans: list[ReceivedSpan], *texts: str) -> None:
    for span in spans:
        for name, value in span.attributes.items():
            for text in (*SECRETS, *texts):
                assert text not in str(value), f"{span.name}: {name} holds {text!r}"


def assert_links(server: ReceivedSpan, attempts: list[ReceivedSpan]) -> None:
    assert server.kind == "server" and server.service == "gw-test"
    for attempt in attempts:
        assert attempt.kind == "client"
        assert attempt.trace_id == server.trace_id and attempt.parent_id == server.span_id


def server_timing(headers: CIMultiDict[str]) -> dict[str, float]:
    parts = [p.strip().split(";dur=") for p in headers["Server-Timing"].split(",")]
    return {name: float(ms) for name, ms in parts}


async def test_chat_json_spans_with_the_clients_parent(gateway, upstream, receiver):
    body = {"model": "fake-model", "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 50, "temperature": 0.5}  # fmt: skip
    status, headers, _ = await send(
        gateway, "/v1/chat/completions", body, {"traceparent": CLIENT_PARENT}
    )
    assert status == 200
    server, attempts = await trace_of(gateway, receiver, headers)
    assert_links(server, attempts)
    assert (server.trace_id, server.parent_id) == (CLIENT_TRACE, CLIENT_SPAN)
    assert server.name == "chat fake-model"
    a = server.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "fake-model"
    assert a["gen_ai.response.model"] == "upstream-model"
    assert a["gen_ai.response.id"] == "chatcmpl-fake"
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["gen_ai.request.max_tokens"] == 50 and a["gen_ai.request.temperature"] == 0.5
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (11, 3)
    assert a["gateway.user"] == "alice" and a["gateway.attempts"] == 1
    assert a["gateway.cost_usd"] == pytest.approx((11 * 1.5 + 3 * 2.0) / 1e6)
    assert a["gateway.cached_tokens"] == 0 and a["http.response.status_code"] == 200
    assert "error.type" not in a
    [attempt] = attempts
    assert attempt.name == "chat upstream-model"
    assert attempt.attributes["server.address"] == "127.0.0.1"
    assert attempt.attributes["http.response.status_code"] == 200
    assert attempt.attributes["gateway.retry"] == 0
    assert attempt.is_parent_in(upstream.received[-1].headers["traceparent"])
    assert_no_secret([server, attempt], PROMPT, "Hello from upstream")
    assert set(server_timing(headers)) == {"gateway", "upstream"}


async def test_chat_stream_has_a_first_byte_event_and_timing_in_its_headers(
    gateway, upstream, receiver
):
    upstream.behaviour.split, upstream.behaviour.chunk_delay_s = 40, 0.005  # finish comes late
    body = {"model": "fake-model", "messages": [{"role": "user", "content": PROMPT}],
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    status, headers, raw = await send(gateway, "/v1/chat/completions", body)
    assert status == 200 and raw.endswith(b"data: [DONE]\n\n")
    timing = server_timing(headers)
    assert timing["upstream"] > 0 and timing["gateway"] >= 0
    server, attempts = await trace_of(gateway, receiver, headers)
    assert_links(server, attempts)
    assert server.parent_id == "" and server.name == "chat fake-model"
    assert "gateway.first_byte" in server.events
    assert server.attributes["gen_ai.usage.output_tokens"] == 3
    assert server.attributes["gen_ai.response.id"] == "chatcmpl-fake"
    assert server.attributes["gen_ai.response.finish_reasons"] == ["stop"]  # from its last event
    [attempt] = attempts
    assert attempt.attributes["http.response.status_code"] == 200
    assert attempt.is_parent_in(upstream.received[-1].headers["traceparent"])
    assert_no_secret([server, attempt], PROMPT, "Hello from upstream")


async def test_sampling_keeps_the_clients_choice_and_else_the_ratio(
    claude, upstream, receiver, tmp_path
):
    gateway = await start_gateway(
        traced_config(claude, upstream, tmp_path, receiver.url, sample_ratio=0.0)
    )
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    try:
        # No parent: the ratio (0) leaves it out, yet the upstream still learns of the trace.
        status, _, _ = await send(gateway, "/v1/chat/completions", body)
        version, trace_id, _, flags = upstream.received[-1].headers["traceparent"].split("-")
        assert (status, version, flags) == (200, "00", "00") and int(trace_id, 16)
        # A parent the client did not sample: left out, its trace carried on.
        unsampled = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"}
        await send(gateway, "/v1/chat/completions", body, unsampled)
        _, trace_id, span_id, flags = upstream.received[-1].headers["traceparent"].split("-")
        assert (trace_id, flags) == (CLIENT_TRACE, "00") and span_id != CLIENT_SPAN
        # A sampled parent wins over the ratio; its tracestate goes on, upstream and on the span.
        sampled = {"traceparent": CLIENT_PARENT, "tracestate": "vendor=abc,other=1"}
        _, headers, _ = await send(gateway, "/v1/chat/completions", body, sampled)
        assert upstream.received[-1].headers["tracestate"] == "vendor=abc,other=1"
        await flush(gateway)
        assert len(receiver.spans) == 2  # only the sampled request's server and client spans
        server, [attempt] = receiver.trace(headers["X-Request-Id"])
        assert (server.trace_id, server.parent_id) == (CLIENT_TRACE, CLIENT_SPAN)
        assert server.trace_state == attempt.trace_state == "vendor=abc,other=1"
        assert attempt.is_parent_in(upstream.received[-1].headers["traceparent"])
    finally:
        await gateway.close()


async def test_a_retried_request_has_one_client_span_per_attempt(gateway, upstream, receiver):
    upstream.behaviour.status, upstream.behaviour.fail_times = 500, 1
    body = {"model": "retried", "messages": [{"role": "user", "content": "hi"}]}
    status, headers, _ = await send(gateway, "/v1/chat/completions", body)
    assert status == 200
    server, attempts = await trace_of(gateway, receiver, headers)
    assert_links(server, attempts)
    assert server.attributes["gateway.attempts"] == 2
    first, second = attempts
    assert [first.attributes["gateway.retry"], second.attributes["gateway.retry"]] == [0, 1]
    assert first.attributes["http.response.status_code"] == 500
    assert first.attributes["error.type"] == "http_500" and first.status_code == 2
    assert second.attributes["http.response.status_code"] == 200
    sent = [r.headers["traceparent"] for r in upstream.received[-2:]]
    assert first.is_parent_in(sent[0]) and second.is_parent_in(sent[1])


async def test_a_stream_broken_mid_answer_marks_its_attempt(gateway, upstream, receiver):
    upstream.behaviour.close_after_bytes = 60
    body = {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    status, headers, raw = await send(gateway, "/v1/chat/completions", body)
    assert status == 200 and b'"error"' in raw
    server, [attempt] = await trace_of(gateway, receiver, headers)
    assert attempt.attributes["error.type"] == "mid_stream" and attempt.status_code == 2
    assert server.attributes["error.type"] == "provider_error"


async def test_a_translated_provider(gateway, claude, receiver):
    body = {"model": "claude-sonnet", "messages": [{"role": "user", "content": PROMPT}]}
    status, headers, _ = await send(gateway, "/v1/chat/completions", body)
    assert status == 200
    server, [attempt] = await trace_of(gateway, receiver, headers)
    assert_links(server, [attempt])
    assert server.attributes["gen_ai.provider.name"] == "anthropic"
    assert attempt.name == f"chat {UPSTREAM_ID}"
    assert attempt.attributes["gen_ai.request.model"] == UPSTREAM_ID
    assert attempt.is_parent_in(claude.received[-1].headers["traceparent"])
    assert_no_secret([server, attempt], PROMPT)


async def test_embeddings(gateway, upstream, receiver):
    body = {"model": "fake-model", "input": [PROMPT]}
    status, headers, _ = await send(gateway, "/v1/embeddings", body)
    assert status == 200
    server, [attempt] = await trace_of(gateway, receiver, headers)
    assert_links(server, [attempt])
    assert server.name == "embeddings fake-model"
    assert server.attributes["gen_ai.operation.name"] == "embeddings"
    assert server.attributes["gen_ai.usage.input_tokens"] == 5
    assert attempt.is_parent_in(upstream.received[-1].headers["traceparent"])
    assert_no_secret([server, attempt], PROMPT)


@pytest.mark.parametrize("stream", [False, True])
async def test_responses(gateway, upstream, receiver, stream):
    body = {"model": "fake-model", "input": PROMPT, "stream": stream}
    status, headers, _ = await send(gateway, "/v1/responses", body)
    assert status == 200 and "Server-Timing" in headers
    server, [attempt] = await trace_of(gateway, receiver, headers)
    assert_links(server, [attempt])
    assert server.name == "chat fake-model"
    assert server.attributes["url.path"] == "/v1/responses"
    assert server.attributes["gen_ai.response.id"].startswith("resp_")
    assert attempt.is_parent_in(upstream.received[-1].headers["traceparent"])
    assert_no_secret([server, attempt], PROMPT)


async def test_a_stored_response_read_upstream_is_an_attempt(gateway, upstream, receiver):
    status, _, raw = await send(gateway, "/v1/responses", {"model": "fake-model", "input": "hi"})
    assert status == 200
    response_id = orjson.loads(raw)["id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.url}/v1/responses/{response_id}", headers=bearer(USER_KEY)) as resp,
    ):
        assert resp.status == 200
        headers = CIMultiDict(resp.headers)
    server, [attempt] = await trace_of(gateway, receiver, headers)
    assert_links(server, [attempt])
    assert upstream.received[-1].method == "GET"
    assert attempt.is_parent_in(upstream.received[-1].headers["traceparent"])
    assert attempt.attributes["http.response.status_code"] == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_the_anthropic_front_door(gateway, claude, receiver, stream):
    body = {"model": "claude-sonnet", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    sent = {"anthropic-version": "2023-06-01", "traceparent": CLIENT_PARENT}
    status, headers, _ = await send(gateway, "/v1/messages", body, sent)
    assert status == 200 and "Server-Timing" in headers
    server, [attempt] = await trace_of(gateway, receiver, headers)
    assert_links(server, [attempt])
    assert server.parent_id == CLIENT_SPAN
    assert server.name == "chat claude-sonnet"
    assert server.attributes["url.path"] == "/v1/messages"
    assert server.attributes["gen_ai.provider.name"] == "anthropic"
    assert server.attributes["gen_ai.request.max_tokens"] == 64
    assert attempt.is_parent_in(claude.received[-1].headers["traceparent"])
    assert_no_secret([server, attempt], PROMPT)


async def test_a_refused_request_is_an_error_span(gateway, receiver):
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    status, headers, _ = await send(gateway, "/v1/chat/completions", body)
    assert status == 404 and "Server-Timing" in headers
    server, attempts = await trace_of(gateway, receiver, headers)
    assert attempts == []
    assert server.attributes["http.response.status_code"] == 404
    assert server.attributes["error.type"]


async def test_a_request_refused_at_the_door_is_a_span_too(gateway, receiver):
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/v1/chat/completions", json=body,
                  headers={"Authorization": "Bearer sk-not-a-key"}) as resp,
    ):  # fmt: skip
        assert resp.status == 401 and "Server-Timing" in resp.headers
        server, attempts = await trace_of(gateway, receiver, CIMultiDict(resp.headers))
    assert attempts == [] and server.attributes["http.response.status_code"] == 401
    assert server.attributes["error.type"] == "invalid_api_key"
    assert_no_secret([server], "sk-not-a-key")


async def test_capture_content_attaches_prompt_and_answer_but_never_a_key(
    claude, upstream, receiver, tmp_path
):
    config = traced_config(claude, upstream, tmp_path, receiver.url, capture_content=True)
    gateway = await start_gateway(config)
    try:
        for stream in (False, True):
            body = {"model": "fake-model", "stream": stream,
                    "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
            status, headers, _ = await send(gateway, "/v1/chat/completions", body)
            assert status == 200
            server, attempts = await trace_of(gateway, receiver, headers)
            messages = orjson.loads(server.attributes["gen_ai.input.messages"])
            assert messages == [{"role": "user", "content": PROMPT}]
            answer = orjson.loads(server.attributes["gen_ai.output.messages"])
            assert answer[0]["parts"][0]["content"] == "Hello from upstream"
            for span in [server, *attempts]:
                assert not any(s in str(v) for v in span.attributes.values() for s in SECRETS)
    finally:
        await gateway.close()


OFF_PROBE = """
import asyncio, sys
from aiohttp.test_utils import TestClient, TestServer
from gateway.config import parse
from gateway.web.app import create_app

async def main(folder):
    config = parse({
        "database": {"url": f"sqlite:///{folder}/g.db", "spill_path": f"{folder}/spill"},
        "auth": {"keys": [{"key": "sk-k", "user": "u"}]},
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
    }, "t", {})
    timings = []
    async with TestClient(TestServer(create_app(config))) as client:
        for stream, key in ((False, "sk-k"), (True, "sk-k"), (False, "sk-wrong")):
            body = {"model": "echo", "stream": stream,
                    "messages": [{"role": "user", "content": "x"}]}
            resp = await client.post("/v1/chat/completions", json=body,
                                     headers={"Authorization": f"Bearer {key}"})
            await resp.read()
            timings.append((resp.status, resp.headers.get("Server-Timing", "")))
    print(timings)
    print(sorted(m for m in sys.modules if m.startswith(
        ("gateway.tracing.otlp", "gateway.tracing.exporter", "gateway.tracing.wire",
         "opentelemetry.trace.propagation.tracecontext"))))

asyncio.run(main(sys.argv[1]))
"""


async def test_tracing_off_runs_no_tracing_code_and_still_times_every_response(tmp_path):
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OFF_PROBE, str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(done.communicate(), timeout=60)
    assert done.returncode == 0, err.decode()
    timings, loaded = out.decode().strip().splitlines()
    assert loaded == "[]"
    statuses = [(200, True), (200, True), (401, True)]
    assert [(s, t.startswith("gateway;dur=") and ", upstream;dur=" in t)
            for s, t in ast.literal_eval(timings)] == statuses  # fmt: skip


def failures(gateway: RunningGateway, reason: str) -> float:
    value = gateway.services.metrics.registry.get_sample_value(
        "gateway_trace_export_failures_total", {"reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize("collector", ["down", "500", "slow"])
async def test_a_failing_collector_costs_requests_nothing(
    claude, upstream, receiver, tmp_path, collector
):
    if collector == "slow":
        receiver.delay_s = 3.0  # longer than the export timeout
    else:
        receiver.status = 500
    endpoint = "http://127.0.0.1:9/v1/traces" if collector == "down" else receiver.url
    config = traced_config(claude, upstream, tmp_path, endpoint, export_timeout_s=0.5)
    gateway = await start_gateway(config)
    try:
        for stream in (False, True, False):
            body = {"model": "fake-model", "stream": stream,
                    "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
            status, headers, raw = await asyncio.wait_for(
                send(gateway, "/v1/chat/completions", body), timeout=5
            )
            assert status == 200 and raw and "Server-Timing" in headers
        await flush(gateway)
        assert failures(gateway, "export") >= 3
        assert receiver.spans == []
        if collector != "down":
            assert receiver.requests >= 1
    finally:
        await gateway.close()
