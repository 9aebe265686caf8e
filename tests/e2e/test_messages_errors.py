"""The Anthropic front door's failures through the official `anthropic` SDK: errors in Anthropic's
shape with SPEC 4's statuses (refused early, upstream 4xx/5xx, broken streams), and a failing
`anthropic` deployment falling back to an OpenAI-compatible one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest

from tests.support import fake_anthropic
from tests.support.fake_anthropic import stream_bytes
from tests.support.front_door import (
    HI,
    TIGHT_KEY,
    UPSTREAM_ID,
    anthropic_error,
    claude_sdk,
    events,
    front_door_config,
    post,
)
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.logrows import log_rows


@pytest.fixture
async def gateway(claude, upstream, tmp_path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(front_door_config(claude.base_url, upstream.base_url, tmp_path))
    yield running
    await running.close()


# --- errors in Anthropic's shape ----------------------------------------------------------------


async def test_bad_key_and_unknown_model(gateway, claude):
    async with claude_sdk(gateway, "sk-gw-not-a-key") as client:
        with pytest.raises(anthropic.AuthenticationError) as bad_key:
            await client.messages.create(model="claude-sonnet", max_tokens=9, messages=HI)
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.count_tokens(model="claude-sonnet", messages=HI)
    assert (bad_key.value.status_code, bad_key.value.type) == (401, "authentication_error")
    body = {"model": "claude-sonnet", "max_tokens": 9, "messages": HI}
    status, headers, raw = await post(gateway, body, key="sk-gw-not-a-key")
    assert status == 401 and headers["X-Request-Id"]
    anthropic_error(raw, "authentication_error")
    async with claude_sdk(gateway) as client:
        with pytest.raises(anthropic.NotFoundError) as unknown:
            await client.messages.create(model="claude-nine", max_tokens=9, messages=HI)
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.count_tokens(model="claude-nine", messages=HI)
    assert (unknown.value.status_code, unknown.value.type) == (404, "not_found_error")
    assert "claude-nine" in unknown.value.message
    assert claude.received == []


@pytest.mark.parametrize("model", ["claude-sonnet", "fake-model"])
async def test_bad_input_is_refused_before_anything_happens(gateway, claude, upstream, model):
    bad_bodies = [
        {"model": model, "messages": HI},  # no max_tokens
        {"model": model, "max_tokens": 9, "messages": {"role": "user", "content": "Hi"}},
        {"model": model, "max_tokens": 9, "messages": HI, "stream": "yes"},
        {"model": model, "max_tokens": 0, "messages": HI},
    ]
    async with claude_sdk(gateway, TIGHT_KEY) as client:
        for body in bad_bodies:
            with pytest.raises(anthropic.BadRequestError) as refused:
                await client.post("/v1/messages", body=body, cast_to=object)
            assert refused.value.type == "invalid_request_error"
        with pytest.raises(anthropic.BadRequestError):
            count = {"model": model, "messages": "Hi"}
            await client.post("/v1/messages/count_tokens", body=count, cast_to=object)
        status, _, raw = await post(gateway, b'{"model": "' + model.encode(), key=TIGHT_KEY)
        assert status == 400
        anthropic_error(raw, "invalid_request_error")
        assert claude.received == [] and upstream.received == []
        # The tier's one request a minute is still there.
        answer = await client.messages.create(model=model, max_tokens=9, messages=HI)
        assert answer.content[0].text.startswith("Hello from")
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model=model, max_tokens=9, messages=HI)
    assert (limited.value.status_code, limited.value.type) == (429, "rate_limit_error")
    assert int(limited.value.response.headers["Retry-After"]) >= 1
    rows = await log_rows(gateway)
    assert [r["status"] for r in rows] == ["rejected"] * 5 + ["ok", "rejected"]
    assert {r["endpoint"] for r in rows} == {"messages"}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_anthropic_4xx_is_passed_through_as_is(gateway, claude, stream):
    claude.script.status = 400
    claude.script.error_message = "messages.1: roles must alternate"
    body = {"model": "claude-sonnet", "max_tokens": 9, "messages": HI, "stream": stream}
    status, headers, raw = await post(gateway, body)
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert raw == fake_anthropic.error_body(400, "messages.1: roles must alternate")
    claude.script.status, claude.script.error_type = 403, "permission_error"
    async with claude_sdk(gateway) as client:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await client.messages.create(model="claude-sonnet", max_tokens=9, messages=HI)
    assert denied.value.type == "permission_error"
    assert denied.value.body["request_id"] == "req_fake_error"
    rows = await log_rows(gateway)
    assert [(r["status"], r["status_code"]) for r in rows] == [
        ("upstream_error", 400), ("upstream_error", 403)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "invalid_request_error"), (404, "not_found_error")]
)
async def test_an_openai_4xx_is_converted_to_anthropics_shape(gateway, upstream, status, kind):
    upstream.behaviour.status = status
    for stream in (False, True):
        body = {"model": "fake-model", "max_tokens": 9, "messages": HI, "stream": stream}
        got, _, raw = await post(gateway, body)
        assert got == status
        assert anthropic_error(raw, kind) == "bad thing"


@pytest.mark.parametrize("model", ["claude-sonnet", "fake-model"])
async def test_an_upstream_5xx_is_a_502_api_error(gateway, claude, upstream, model):
    claude.script.status = 500
    upstream.behaviour.status = 500
    async with claude_sdk(gateway) as client:
        with pytest.raises(anthropic.InternalServerError) as failed:
            await client.messages.create(model=model, max_tokens=9, messages=HI)
        with pytest.raises(anthropic.InternalServerError):
            async with client.messages.stream(model=model, max_tokens=9, messages=HI) as stream:
                await stream.get_final_message()
    assert (failed.value.status_code, failed.value.type) == (502, "api_error")
    rows = await log_rows(gateway)
    assert [(r["status"], r["status_code"]) for r in rows] == [("upstream_error", 502)] * 2


async def test_an_anthropic_stream_cut_mid_event_ends_with_one_error_event(gateway, claude):
    whole = stream_bytes(UPSTREAM_ID, claude.script)
    claude.script.close_after_bytes = whole.index(b" from") + 2  # inside a text delta
    body = {"model": "claude-sonnet", "max_tokens": 9, "messages": HI, "stream": True}
    status, _, raw = await post(gateway, body)
    cut = claude.streamed[-1]
    complete = cut[: cut.rindex(b"\n\n") + 2]  # the events that arrived whole
    assert status == 200 and raw.startswith(complete)
    [(name, error)] = events(raw[len(complete) :])
    assert name == "error" and error["type"] == "error"
    assert error["error"]["type"] == "api_error"
    async with (
        claude_sdk(gateway) as client,
        client.messages.stream(model="claude-sonnet", max_tokens=9, messages=HI) as stream,
    ):
        pieces = []
        with pytest.raises(anthropic.APIStatusError) as broken:
            async for text in stream.text_stream:
                pieces.append(text)
    assert pieces == ["Hello"] and broken.value.body["error"]["type"] == "api_error"
    rows = await log_rows(gateway)
    assert [(r["status"], r["usage_estimated"]) for r in rows] == [("upstream_error", 1)] * 2


async def test_an_upstream_error_event_is_relayed_as_sent(gateway, claude):
    claude.script.error_after_events = 4
    body = {"model": "claude-sonnet", "max_tokens": 9, "messages": HI, "stream": True}
    _, _, raw = await post(gateway, body)
    assert raw == claude.streamed[-1] and events(raw)[-1][0] == "error"
    [row] = await log_rows(gateway)
    assert row["status"] == "upstream_error"


async def test_a_translated_stream_cut_ends_with_one_error_event(gateway, upstream):
    upstream.behaviour.split = 7
    upstream.behaviour.close_after_bytes = 400
    body = {"model": "fake-model", "max_tokens": 9, "messages": HI, "stream": True}
    status, _, raw = await post(gateway, body)
    names = [name for name, _ in events(raw)]
    assert status == 200 and names[0] == "message_start"
    assert names[-1] == "error" and names.count("error") == 1
    assert "message_stop" not in names
    assert events(raw)[-1][1]["error"]["type"] == "api_error"
    [row] = await log_rows(gateway)
    assert row["status"] == "upstream_error"


# --- mixed deployments --------------------------------------------------------------------------


async def test_an_overloaded_anthropic_deployment_falls_back_to_openai(gateway, claude, upstream):
    claude.script.status = 529
    async with claude_sdk(gateway) as client:
        answer = await client.messages.create(model="claude-or-fake", max_tokens=9, messages=HI)
        async with client.messages.stream(
            model="claude-or-fake", max_tokens=9, messages=HI
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
    assert answer.content[0].text == "Hello from upstream" and answer.type == "message"
    assert answer.model == "claude-or-fake" and answer.stop_reason == "end_turn"
    assert text == "Hello from upstream"
    assert {r.path for r in claude.received} == {"/v1/messages"} and len(claude.received) >= 2
    assert [r.body["model"] for r in upstream.received] == ["upstream-model"] * 2
    rows = await log_rows(gateway)
    assert [(r["provider"], r["status"], r["endpoint"]) for r in rows] == [
        ("fake", "ok", "messages")
    ] * 2
    assert all(r["attempts"] >= 2 for r in rows)
