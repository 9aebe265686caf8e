"""PostgreSQL outage under live traffic: chats keep succeeding while the database is down, and
every request-log row is written once it is back (none lost, none doubled)."""

from __future__ import annotations

import asyncio

import asyncpg
import openai
import pytest

from tests.support.clients import sdk
from tests.support.gateway import base_config, start_gateway
from tests.support.pgcluster import INITDB, SKIP_REASON

pytestmark = pytest.mark.skipif(not INITDB, reason=SKIP_REASON)
HELLO = [{"role": "user", "content": "still there?"}]


async def _count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM ai_request_log")
    finally:
        await conn.close()


async def _chat(client: openai.AsyncOpenAI, n: int, stream: bool) -> None:
    for _ in range(n):
        if stream:
            chunks = await client.chat.completions.create(model="echo", messages=HELLO, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        else:
            reply = await client.chat.completions.create(model="echo", messages=HELLO)
            text = reply.choices[0].message.content
        assert text == "still there?"


async def test_rows_survive_a_database_outage(private_postgres, upstream, tmp_path):
    mapping = base_config(upstream.base_url, tmp_path)
    mapping["database"]["url"] = private_postgres.url
    running = await start_gateway(mapping)
    try:
        async with sdk(running) as client:
            await _chat(client, 5, stream=False)
            assert await running.services.writer.flush(5)
            assert await _count(private_postgres.url) == 5

            await asyncio.to_thread(private_postgres.stop)
            await _chat(client, 6, stream=False)  # stateless chats still succeed
            await _chat(client, 4, stream=True)
            assert running.services.writer.depth >= 10

            await asyncio.to_thread(private_postgres.start)
            assert await running.services.writer.flush(20), "the writer drains once PG is back"
        assert await _count(private_postgres.url) == 15
    finally:
        await running.close()
