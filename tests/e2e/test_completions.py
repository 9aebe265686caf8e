"""POST /v1/completions (legacy text completions) through the openai SDK (SPEC 8): relayed byte
for byte to `openai` providers, streamed with the usage-only event only when the client asked for
it, refused for other provider types, and logged with upstream's tokens."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import openai
import pytest

from tests.support.clients import bearer
from tests.support.gateway import USER_KEY
from tests.support.logrows import log_rows, rows_when

PROMPT = "Say hello"
PRICE = (11 * Decimal("1.5") + 3 * Decimal("2.0")) / 10**6  # the fake's 11 + 3 tokens


def without_usage_event(stream: bytes) -> bytes:
    """The stream minus its usage-only event (`"choices":[]`), as a client that did not ask for
    usage must see it."""
    events = stream.split(b"\n\n")
    return b"\n\n".join(e for e in events if b'"choices":[]' not in e)


async def raw_stream(gateway, body: dict) -> bytes:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/v1/completions", json=body, headers=bearer(USER_KEY)) as resp,
    ):
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        return await resp.read()


def assert_logged_with_upstream_tokens(row: dict, stream: bool) -> None:
    assert (row["endpoint"], row["status"], row["stream"]) == ("completions", "ok", int(stream))
    assert (row["provider"], row["upstream_model"]) == ("fake", "upstream-model")
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (11, 3, 0)
    assert Decimal(row["cost_usd"]) == PRICE


async def test_non_stream_is_the_upstream_body(client, gateway, upstream):
    raw = await client.completions.with_raw_response.create(
        model="fake-model", prompt=PROMPT, max_tokens=5, temperature=0
    )
    assert raw.content == upstream.answered[-1]
    sent = upstream.received[-1]
    assert sent.path == "/v1/completions"
    assert sent.body == {"model": "upstream-model", "prompt": PROMPT, "max_tokens": 5,
                         "temperature": 0}  # fmt: skip
    assert sent.headers["Authorization"] == "Bearer sk-upstream-secret"
    answer = raw.parse()
    assert answer.choices[0].text == "Hello from upstream" and answer.usage.total_tokens == 14
    [row] = await log_rows(gateway)
    assert_logged_with_upstream_tokens(row, stream=False)


async def test_stream_without_include_usage_drops_the_usage_event(client, gateway, upstream):
    stream = await client.completions.create(model="fake-model", prompt=PROMPT, stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks) == "Hello from upstream"
    assert all(c.choices and c.usage is None for c in chunks)
    # The gateway asked upstream for usage to bill the request, and kept it to itself.
    assert upstream.received[-1].body["stream_options"] == {"include_usage": True}
    assert b'"choices":[]' in upstream.streamed[-1]

    body = {"model": "fake-model", "prompt": PROMPT, "stream": True}
    assert await raw_stream(gateway, body) == without_usage_event(upstream.streamed[-1])
    rows = await rows_when(gateway, 2)
    assert len(rows) == 2
    for row in rows:
        assert_logged_with_upstream_tokens(row, stream=True)


async def test_stream_with_include_usage_is_the_upstream_stream(client, gateway, upstream):
    stream = await client.completions.create(
        model="fake-model", prompt=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    *text_chunks, last = chunks
    assert "".join(c.choices[0].text for c in text_chunks) == "Hello from upstream"
    assert last.choices == [] and last.usage.prompt_tokens == 11
    assert last.usage.completion_tokens == 3

    body = {
        "model": "fake-model", "prompt": PROMPT, "stream": True,
        "stream_options": {"include_usage": True},
    }  # fmt: skip
    assert await raw_stream(gateway, body) == upstream.streamed[-1]
    rows = await rows_when(gateway, 2)
    assert len(rows) == 2
    for row in rows:
        assert_logged_with_upstream_tokens(row, stream=True)


@pytest.mark.parametrize("stream", [False, True])
async def test_echo_is_not_a_completions_model(client, gateway, stream):
    with pytest.raises(openai.BadRequestError) as refused:
        await client.completions.create(model="echo", prompt=PROMPT, stream=stream)
    assert refused.value.code == "model_not_supported"
    [row] = await log_rows(gateway)
    assert (row["endpoint"], row["status"], row["status_code"]) == ("completions", "rejected", 400)
