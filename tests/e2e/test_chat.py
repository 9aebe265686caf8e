"""End-to-end: the official OpenAI SDK against the gateway against a real fake upstream.
Covers non-stream and stream chat, usage handling, models, and the error mappings of SPEC 4."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest

from tests.support.clients import bearer, post_chat, raw_chat, sdk
from tests.support.gateway import USER_KEY, start_gateway
from tests.support.upstream import sse_stream, wait_for

HELLO = [{"role": "user", "content": "hi"}]


async def test_non_stream_returns_upstream_answer_and_rewrites_model(client, upstream):
    reply = await client.chat.completions.create(model="fake-model", messages=HELLO)
    assert reply.choices[0].message.content == "Hello from upstream"
    assert reply.usage.total_tokens == 14
    sent = upstream.received[-1]
    assert sent.body["model"] == "upstream-model"
    assert sent.body["messages"] == HELLO
    assert "stream_options" not in sent.body


async def test_stream_yields_chunks_and_hides_usage_event_not_asked_for(client, upstream):
    stream = await client.chat.completions.create(model="fake-model", messages=HELLO, stream=True)
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from upstream"
    assert all(c.choices for c in chunks), "the usage-only event must not reach the client"
    assert upstream.received[-1].body["stream_options"] == {"include_usage": True}


async def test_stream_with_usage_asked_passes_usage_event(client):
    stream = await client.chat.completions.create(
        model="fake-model", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 14


@pytest.mark.parametrize(
    "shape",
    [
        {"split": 1},
        {"split": 7, "crlf": True},
        {"split": 13, "keepalive_comments": True},
        {"crlf": True, "keepalive_comments": True},
    ],
)
async def test_relayed_stream_bytes_equal_upstream_bytes_when_usage_asked(gateway, upstream, shape):
    for key, value in shape.items():
        setattr(upstream.behaviour, key, value)
    body = {
        "model": "fake-model",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    status, headers, got = await raw_chat(gateway, body)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert got == upstream.streamed[-1]


async def test_relayed_stream_without_usage_is_upstream_minus_usage_event(gateway, upstream):
    upstream.behaviour.split = 5
    upstream.behaviour.send_usage_only_when_asked = False  # as if the client had asked
    body = {"model": "fake-model", "messages": HELLO, "stream": True}
    _, _, got = await raw_chat(gateway, body)
    b = upstream.behaviour
    expected = sse_stream("upstream-model", b.pieces, None)
    assert got == expected


async def test_usage_inside_content_chunk_is_left_in_place(gateway, upstream):
    upstream.behaviour.usage_in_content = True
    body = {"model": "fake-model", "messages": HELLO, "stream": True}
    _, _, got = await raw_chat(gateway, body)
    assert got == upstream.streamed[-1]
    assert b'"usage":{"prompt_tokens":11' in got


async def test_credentials_never_cross(gateway, upstream):
    body = {"model": "fake-model", "messages": HELLO}
    extra = {"OpenAI-Organization": "org-x", "X-Request-Id": "req-123", "Cookie": "a=b"}
    _, headers, got = await raw_chat(gateway, body, extra)
    sent = upstream.received[-1].headers
    assert sent["Authorization"] == "Bearer sk-upstream-secret"
    assert "OpenAI-Organization" not in sent and "Cookie" not in sent
    assert sent["X-Request-Id"] == "req-123"
    assert headers["X-Request-Id"] == "req-123"
    assert b"sk-upstream-secret" not in got
    assert not any("sk-upstream-secret" in v for v in headers.values())


async def test_session_id_is_not_forwarded_and_unknown_fields_are(client, upstream):
    await client.chat.completions.create(
        model="fake-model", messages=HELLO, temperature=0.3, extra_body={"custom_field": [1, 2]}
    )
    sent = upstream.received[-1].body
    assert sent["temperature"] == 0.3 and sent["custom_field"] == [1, 2]


async def test_models_list_and_get(client):
    listed = await client.models.list()
    ids = {m.id for m in listed.data}
    assert {"fake-model", "echo", "needs-key"} <= ids
    model = await client.models.retrieve("echo")
    assert model.id == "echo" and model.object == "model"
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("nope")
    assert err.value.code == "model_not_found"


async def test_echo_streams_and_answers(client):
    reply = await client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "one two three four five six seven"}]
    )
    assert reply.choices[0].message.content == "one two three four five six seven"
    stream = await client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "one two three four five six seven"}],
        stream=True,
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p or "" for p in pieces) == "one two three four five six seven"
    assert len([p for p in pieces if p]) > 2


# --- error mappings through the SDK -------------------------------------------------------------


async def test_bad_key_is_401(gateway):
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key="sk-wrong", max_retries=0
    ) as bad:
        with pytest.raises(openai.AuthenticationError) as err:
            await bad.chat.completions.create(model="fake-model", messages=HELLO)
    assert err.value.code == "invalid_api_key"


async def test_unknown_model_is_404(client, upstream):
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="nope", messages=HELLO)
    assert err.value.code == "model_not_found" and err.value.param == "model"
    assert upstream.received == []


async def test_bad_fields_are_400_with_param(client, upstream):
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(model="fake-model", messages=[])
    assert err.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model="echo", messages=[{"role": "wizard", "content": "x"}]
        )  # translated: the role must be understood (relayed, it is upstream's business)
    assert err.value.param == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(model="fake-model", messages=HELLO, max_tokens=0)
    assert err.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model="fake-model", messages=HELLO, extra_body={"stream": "yes"}
        )
    assert err.value.param == "stream"
    assert upstream.received == []


async def test_malformed_json_and_oversized_body(gateway):
    headers = {**bearer(USER_KEY), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{gateway.base_url}/chat/completions", data=b"{nope", headers=headers
        ) as resp:
            body = orjson.loads(await resp.read())
            assert resp.status == 400 and body["error"]["type"] == "invalid_request_error"
            assert resp.headers["X-Request-Id"]
        big = orjson.dumps(
            {"model": "fake-model", "messages": [{"role": "user", "content": "x" * 70000}]}
        )
        async with http.post(
            f"{gateway.base_url}/chat/completions", data=big, headers=headers
        ) as resp:
            body = orjson.loads(await resp.read())
            assert resp.status == 413 and body["error"]["code"] == "request_too_large"


async def test_unconfigured_provider_is_503(client):
    with pytest.raises(openai.InternalServerError) as err:
        await client.chat.completions.create(model="needs-key", messages=HELLO)
    assert err.value.status_code == 503 and err.value.code == "provider_not_configured"


async def test_upstream_4xx_passes_through(client, upstream):
    upstream.behaviour.status = 422
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await client.chat.completions.create(model="fake-model", messages=HELLO)
    assert err.value.code == "bad" and err.value.body["message"] == "bad thing"
    assert len(upstream.received) == 1, "a 4xx is not retried"


async def test_upstream_5xx_is_502(client, upstream):
    upstream.behaviour.status = 500
    with pytest.raises(openai.InternalServerError) as err:
        await client.chat.completions.create(model="fake-model", messages=HELLO, stream=True)
    assert err.value.status_code == 502 and err.value.code == "provider_error"


async def test_upstream_hang_is_504(client, upstream):
    upstream.behaviour.hang_s = 3  # read_timeout_s is 2
    with pytest.raises(openai.APIStatusError) as err:
        await client.chat.completions.create(model="fake-model", messages=HELLO)
    assert err.value.status_code == 504 and err.value.code == "provider_timeout"


async def test_upstream_unreachable_is_502(gateway_config, tmp_path):
    gateway_config["providers"]["fake"]["base_url"] = "http://127.0.0.1:9/v1"
    running = await start_gateway(gateway_config)
    try:
        async with sdk(running) as client:
            with pytest.raises(openai.InternalServerError) as err:
                await client.chat.completions.create(model="fake-model", messages=HELLO)
        assert err.value.status_code == 502 and err.value.code == "provider_error"
    finally:
        await running.close()


async def test_close_mid_stream_sends_one_error_event(gateway, upstream):
    upstream.behaviour.close_after_bytes = 200
    body = {"model": "fake-model", "messages": HELLO, "stream": True}
    status, _, got = await raw_chat(gateway, body)
    assert status == 200
    events = [e for e in got.split(b"\n\n") if e.startswith(b'data: {"error"')]
    assert len(events) == 1
    assert orjson.loads(events[0][6:])["error"]["code"] == "stream_error"
    assert got.startswith(upstream.streamed[-1][:100])


async def test_client_disconnect_cancels_upstream(gateway, upstream):
    upstream.behaviour.pieces = [f" w{i}" for i in range(50)]
    upstream.behaviour.chunk_delay_s = 0.05
    upstream.behaviour.split = 60
    body = {"model": "fake-model", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as http, post_chat(http, gateway, body) as resp:
        await resp.content.readany()
        resp.close()
    assert await wait_for(lambda: upstream.cancelled == 1, timeout_s=3)
    assert len(upstream.streamed[-1]) < len(
        sse_stream("upstream-model", upstream.behaviour.pieces, None)
    )


async def test_every_response_carries_request_id(gateway):
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/v1/models", "/nope"):
            async with http.get(gateway.url + path) as resp:
                assert resp.headers.get("X-Request-Id")
