"""SIGHUP on a real `gateway serve` (one process and two workers): a good file adds a model on
every worker, a bad file is refused with one log line and the old config keeps serving."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from .procs import chat, config_mapping, fresh_connections, model_ids, write_config

REFUSED = "config reload refused, keeping the running config"


async def _all_see(gateway, http, model: str, present: bool, timeout_s: float = 10.0) -> None:
    """Wait until 8 requests in a row (spread over workers) agree on whether `model` exists."""
    deadline = time.monotonic() + timeout_s
    streak = 0
    while streak < 8:
        assert time.monotonic() < deadline, f"{model} present={present} not seen everywhere"
        seen = model in await model_ids(http, gateway)
        streak = streak + 1 if seen == present else 0
        if not streak:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
async def test_sighup_applies_a_good_file_and_refuses_a_bad_one(serve, tmp_path, workers):
    gateway = await serve(workers)
    mapping = config_mapping(tmp_path, gateway.port)
    async with fresh_connections() as http:
        await _all_see(gateway, http, "echo-2", present=False)

        mapping["models"]["echo-2"] = {"provider": "echo", "model": "echo"}
        write_config(gateway.config_path, mapping)
        gateway.send(signal.SIGHUP)
        await _all_see(gateway, http, "echo-2", present=True)
        for _ in range(6):
            status, body = await chat(http, gateway, "after reload", model="echo-2")
            assert status == 200 and body["choices"][0]["message"]["content"] == "after reload"

        gateway.config_path.write_text(
            gateway.config_path.read_text() + "\nmodelz: {}\n", encoding="utf-8"
        )
        gateway.send(signal.SIGHUP)
        refused = await gateway.wait_record(lambda r: r.get("msg") == REFUSED)
        assert "modelz: unknown key" in refused["reason"], refused
        await asyncio.sleep(0.5)  # any worker that wrongly re-read it would have said so by now
        assert len(gateway.logged(REFUSED)) == 1
        await _all_see(gateway, http, "echo-2", present=True)
        assert (await chat(http, gateway, model="echo-2"))[0] == 200


async def test_sighup_ignores_server_changes_until_restart(serve, tmp_path):
    gateway = await serve(2)
    mapping = config_mapping(tmp_path, gateway.port)
    mapping["server"]["port"] = gateway.port + 1
    mapping["quota"]["tiers"]["pro"]["rpm"] = 50000
    write_config(gateway.config_path, mapping)
    gateway.send(signal.SIGHUP)
    forwarded = await gateway.wait_record(
        lambda r: r.get("msg") == "config reload forwarded to workers"
    )
    assert forwarded["ignored"] == ["server"]
    assert len(forwarded["workers"]) == 2
    await gateway.wait_record(lambda r: len(gateway.logged("config reloaded")) == 2)
    async with fresh_connections() as http:
        assert (await chat(http, gateway))[0] == 200  # still on the old port
