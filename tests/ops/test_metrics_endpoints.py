"""SPEC 8 in the metrics: every `gateway_requests_total` sample names its `endpoint`, and after
known traffic on chat, embeddings, completions and responses each endpoint counts exactly its
own requests (answered, streamed, bridged or refused)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import openai
import pytest

from . import scrape as prom

HELLO = [{"role": "user", "content": "hi"}]


async def test_requests_total_counts_each_endpoint(client, gateway):
    await client.chat.completions.create(model="fake-model", messages=HELLO)
    await client.embeddings.create(model="fake-model", input="hi")
    await client.embeddings.create(model="echo", input=["a", "b"])
    for _ in range(2):
        await client.completions.create(model="fake-model", prompt="hi")
    with pytest.raises(openai.BadRequestError):
        await client.completions.create(model="echo", prompt="hi")  # not a completions model
    await client.responses.create(model="fake-model", input="hi")
    async with client.responses.stream(model="fake-model", input="hi") as stream:
        await stream.get_final_response()
    await client.responses.create(model="echo", input="hi")  # bridged through chat

    # A stream is counted just after its last byte: scrape until all 9 are in (bounded).
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 5
        text = await prom.fetch(http, gateway)
        while prom.value(text, "gateway_requests_total") < 9 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            text = await prom.fetch(http, gateway)
    assert prom.value(text, "gateway_requests_total") == 9

    def requests(**labels: str) -> float:
        return prom.value(text, "gateway_requests_total", **labels)

    assert all("endpoint" in labels for name, labels, _ in prom.samples(text)
               if name == "gateway_requests_total")  # fmt: skip
    assert requests(endpoint="chat") == 1
    assert requests(endpoint="embeddings", model="fake-model", provider="fake", status="ok") == 1
    assert requests(endpoint="embeddings", model="echo", provider="echo", status="ok") == 1
    assert requests(endpoint="completions", model="fake-model", status="ok") == 2
    assert requests(endpoint="completions", model="echo", status="rejected") == 1
    assert requests(endpoint="responses", model="fake-model", stream="false") == 1
    assert requests(endpoint="responses", model="fake-model", stream="true", status="ok") == 1
    assert requests(endpoint="responses", model="echo", provider="echo", status="ok") == 1
    assert requests(endpoint="messages") == 0
