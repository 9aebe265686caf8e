"""`gateway serve --workers N` as a real process: metrics summed over workers, a killed worker
replaced, and SIGTERM draining a slow stream to the end before a clean exit."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3

import aiohttp
import orjson
import pytest

from tests.support.clients import post_chat
from tests.support.gateway import free_port

from . import scrape as prom
from .procs import KEY, WORDS, chat, fresh_connections

REQUESTS_TOTAL = "gateway_requests_total"


async def test_metrics_from_any_worker_sum_all_workers(serve):
    gateway = await serve(2)
    k = 40
    async with fresh_connections() as http:
        for i in range(k):
            status, body = await chat(http, gateway, f"hello {i}")
            assert status == 200, body
        totals = [
            prom.value(await prom.fetch(http, gateway), REQUESTS_TOTAL, status="ok")
            for _ in range(12)
        ]
    assert totals == [k] * 12
    assert len(set(gateway.listening_pids())) == 2


async def test_killed_worker_is_replaced_and_requests_keep_succeeding(serve):
    gateway = await serve(2)
    first = gateway.listening_pids()
    async with fresh_connections() as http:
        for _ in range(10):
            assert (await chat(http, gateway))[0] == 200
        victim = first[0]
        os.kill(victim, signal.SIGKILL)
        died = await gateway.wait_record(
            lambda r: r.get("msg") == "worker died, restarting" and r.get("pid") == victim
        )
        assert died["exit_code"] == -9 and died["signal"] == "SIGKILL"
        replacement = await gateway.wait_record(
            lambda r: r.get("msg") == "listening" and r.get("pid") not in first
        )
        assert replacement["pid"] != victim
        for _ in range(20):
            status, body = await chat(http, gateway)
            assert status == 200, body
        text = await prom.fetch(http, gateway)
    # The dead worker's counts stay in the sum; only its live gauges are dropped.
    assert prom.value(text, REQUESTS_TOTAL, status="ok") == 30
    assert prom.value(text, "gateway_active_streams") == 0


def _sse_text(body: bytes) -> str:
    text = ""
    for block in body.split(b"\n\n"):
        if block.startswith(b"data: {"):
            event = orjson.loads(block[6:])
            for choice in event.get("choices", []):
                text += choice["delta"].get("content") or ""
    return text


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains_a_slow_stream_then_exits_zero(serve, tmp_path, workers):
    gateway = await serve(
        workers, providers={"echo": {"type": "echo", "chunk_delay_s": 0.3}}
    )  # about 8 events x 0.3 s: SIGTERM lands mid-stream
    body = {"model": "echo", "stream": True, "messages": [{"role": "user", "content": WORDS}]}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        post_chat(http, gateway, body, KEY) as resp,
    ):
        assert resp.status == 200
        received = await resp.content.readany()
        gateway.send(signal.SIGTERM)
        await gateway.wait_record(lambda r: r.get("msg") == "draining")
        await asyncio.sleep(0.3)
        with pytest.raises(aiohttp.ClientConnectionError):  # no longer accepting
            async with aiohttp.ClientSession() as other:
                await other.get(f"{gateway.url}/healthz")
        received += await asyncio.wait_for(resp.read(), 20)
    assert _sse_text(received) == WORDS
    assert received.endswith(b"data: [DONE]\n\n")
    assert await gateway.wait_exit(30) == 0
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        rows = db.execute("SELECT status, stream, completion_tokens FROM ai_request_log").fetchall()
    assert len(rows) == 1
    status, stream, completion_tokens = rows[0]
    assert status == "ok" and stream in (1, True) and completion_tokens > 0


async def test_crash_looping_worker_is_restarted_with_growing_backoff(serve):
    # A database nobody listens on makes every worker exit 1 during startup.
    looping = await serve(
        2, wait=False, database={"url": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    )
    await looping.wait_record(
        lambda r: len(looping.logged("worker died, restarting", worker=0)) >= 3, 30
    )
    deaths = looping.logged("worker died, restarting", worker=0)
    assert [d["restart_in_s"] for d in deaths[:3]] == [0.5, 1.0, 2.0]
    assert all(d["exit_code"] == 1 for d in deaths)
    assert [d["crash_loop"] for d in deaths[:3]] == [False, True, True]
    looping.send(signal.SIGTERM)
    await looping.wait_exit(20)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False


async def test_workers_stop_when_their_supervisor_is_killed(serve):
    gateway = await serve(2)
    workers = gateway.listening_pids()
    gateway.send(signal.SIGKILL)
    await gateway.wait_record(
        lambda r: len(gateway.logged("supervisor is gone, stopping")) == 2, timeout_s=10
    )
    deadline = asyncio.get_running_loop().time() + 10
    while any(_alive(pid) for pid in workers):
        assert asyncio.get_running_loop().time() < deadline, "orphaned workers kept running"
        await asyncio.sleep(0.1)
