"""End-to-end routing resilience: several fake upstreams behind one gateway, driven by the SDK.
Dead, slow and failing deployments, fallbacks, no retry after the first byte, cooldowns on a
controlled clock, and the request log naming the deployment that served and its attempts."""

from __future__ import annotations

import asyncio
import random
import socket
import sqlite3

import aiohttp
import openai
import orjson
import pytest

from tests.support.clients import bearer, raw_chat, sdk
from tests.support.gateway import ADMIN_KEY, base_config, refused_port, start_gateway
from tests.support.upstream import FakeUpstream, wait_for

HELLO = [{"role": "user", "content": "hi"}]


def provider(url: str, read_timeout_s: float = 2.0) -> dict:
    return {
        "type": "openai", "base_url": url, "api_key": "sk-up", "read_timeout_s": read_timeout_s,
        "timeout_s": 10, "connect_timeout_s": 1,
    }  # fmt: skip


class Clock:
    """A monotonic clock the test moves by hand (installed as services.clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fleet:
    """Named fake upstreams, each a provider of the same name; one gateway in front."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.fakes: dict[str, FakeUpstream] = {}
        self.providers: dict[str, dict] = {}
        self.gateway = None
        self.clock = Clock()
        self.refusing: list[socket.socket] = []  # the dead providers' ports, held closed

    async def fake(self, name: str, read_timeout_s: float = 2.0, **behaviour) -> FakeUpstream:
        fake = await FakeUpstream().start()
        fake.behaviour.text = f"answer from {name}"
        fake.behaviour.pieces = ["answer", " from", f" {name}"]
        for key, value in behaviour.items():
            setattr(fake.behaviour, key, value)
        self.fakes[name] = fake
        self.providers[name] = provider(fake.base_url, read_timeout_s)
        return fake

    def dead(self, name: str) -> None:
        """A provider whose port refuses connections."""
        port, holder = refused_port()
        self.refusing.append(holder)
        self.providers[name] = provider(f"http://127.0.0.1:{port}/v1")

    async def start(self, models: dict, **routing):
        cfg = base_config("http://127.0.0.1:9/v1", self.tmp_path)
        cfg["providers"].update(self.providers)
        cfg["models"].update(models)
        cfg["routing"].update(routing)
        self.gateway = await start_gateway(cfg)
        self.gateway.services.clock = self.clock
        self.gateway.services.router.rng = random.Random(11)
        return self.gateway

    def sdk(self) -> openai.AsyncOpenAI:
        return sdk(self.gateway)

    def received(self, name: str) -> int:
        return len(self.fakes[name].received)

    async def log_rows(self) -> dict[str, dict]:
        """ai_request_log rows by request id, once the writer has committed them."""
        assert await self.gateway.services.writer.flush(timeout_s=5)
        db = sqlite3.connect(f"{self.tmp_path}/gateway.db")
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute(
                "SELECT request_id, provider, upstream_model, attempts, status, status_code,"
                " error FROM ai_request_log"
            ).fetchall()
        finally:
            db.close()
        return {r["request_id"]: dict(r) for r in rows}

    async def close(self) -> None:
        if self.gateway is not None:
            await self.gateway.close()
        for fake in self.fakes.values():
            await fake.close()
        for holder in self.refusing:
            holder.close()


@pytest.fixture
async def fleet(tmp_path):
    f = Fleet(tmp_path)
    yield f
    await f.close()


def deployments(*names: str, weights: tuple[int, ...] | None = None) -> list[dict]:
    weights = weights or (1,) * len(names)
    return [
        {"provider": n, "model": f"{n}-model", "weight": w}
        for n, w in zip(names, weights, strict=True)
    ]


async def ask(sdk: openai.AsyncOpenAI, model: str, stream: bool, request_id: str | None = None):
    """The answer's text and the model the upstream named, streamed or not."""
    headers = {"X-Request-Id": request_id} if request_id else None
    if not stream:
        reply = await sdk.chat.completions.create(
            model=model, messages=HELLO, extra_headers=headers
        )
        return reply.choices[0].message.content, reply.model
    chunks = await sdk.chat.completions.create(
        model=model, messages=HELLO, stream=True, extra_headers=headers
    )
    got = [c async for c in chunks]
    return "".join(c.choices[0].delta.content or "" for c in got if c.choices), got[0].model


async def raw_stream(gateway, model: str) -> tuple[int, bytes]:
    status, _, got = await raw_chat(gateway, {"model": model, "messages": HELLO, "stream": True})
    return status, got


# --- one deployment down --------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_dead_deployment_is_invisible_to_clients(fleet, stream):
    await fleet.fake("live")
    fleet.dead("dead")
    await fleet.start({"pair": {"deployments": deployments("live", "dead")}})
    async with fleet.sdk() as sdk:
        for batch in range(4):  # 40 requests, 10 at a time
            answers = await asyncio.gather(*(ask(sdk, "pair", stream) for _ in range(10)))
            assert answers == [("answer from live", "live-model")] * 10, batch
    assert fleet.received("live") == 40
    rows = list((await fleet.log_rows()).values())
    assert len(rows) == 40
    assert {(r["provider"], r["upstream_model"], r["status"]) for r in rows} == {
        ("live", "live-model", "ok")
    }
    retried = sum(r["attempts"] - 1 for r in rows)
    assert 1 <= retried < 20, "the dead one was tried, then cooled down (3 failures by default)"
    health = fleet.gateway.services.router.snapshot(fleet.clock())
    assert health["dead/dead-model"]["state"] == "cooling_down"
    assert health["dead/dead-model"]["last_error"] == "connect"
    assert health["live/live-model"]["state"] == "healthy"
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{fleet.gateway.url}/admin/routes", headers=bearer(ADMIN_KEY)) as resp,
    ):
        view = await resp.json()
    pair = next(m for m in view["data"] if m["model"] == "pair")
    states = {d["deployment"]: d["state"] for d in pair["deployments"]}
    assert states == {"live/live-model": "healthy", "dead/dead-model": "cooling_down"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_slow_deployment_is_retried_elsewhere(fleet, stream):
    await fleet.fake("slow", read_timeout_s=0.3, hang_s=1.0)
    await fleet.fake("fast")
    await fleet.start({"m": {"deployments": deployments("slow", "fast", weights=(1000, 1))}})
    async with fleet.sdk() as sdk:
        assert await ask(sdk, "m", stream, "req-slow") == ("answer from fast", "fast-model")
    assert fleet.received("slow") == 1 and fleet.received("fast") == 1
    row = (await fleet.log_rows())["req-slow"]
    assert (row["provider"], row["upstream_model"], row["attempts"]) == ("fast", "fast-model", 2)


async def test_a_timed_out_deployment_is_not_retried_by_the_same_request(fleet):
    await fleet.fake("slow", read_timeout_s=0.3, hang_s=1.0)
    await fleet.start({"m": {"provider": "slow", "model": "slow-model"}}, max_attempts=4)
    async with fleet.sdk() as sdk:
        with pytest.raises(openai.APIStatusError) as err:
            await ask(sdk, "m", False, "req-504")
    assert err.value.status_code == 504 and err.value.code == "provider_timeout"
    assert fleet.received("slow") == 1
    row = (await fleet.log_rows())["req-504"]
    assert (row["status"], row["status_code"], row["attempts"]) == ("upstream_error", 504, 1)


@pytest.mark.parametrize("status", [503, 500, 429])
async def test_a_failing_then_recovering_deployment_is_retried(fleet, status):
    await fleet.fake("flaky", status=status, fail_times=2)
    await fleet.start({"m": {"provider": "flaky", "model": "flaky-model"}})
    async with fleet.sdk() as sdk:
        assert await ask(sdk, "m", True, "req-flaky") == ("answer from flaky", "flaky-model")
    assert fleet.received("flaky") == 3
    row = (await fleet.log_rows())["req-flaky"]
    assert (row["provider"], row["attempts"], row["status"]) == ("flaky", 3, "ok")


async def test_503_on_one_deployment_moves_to_the_other(fleet):
    await fleet.fake("broken", status=503)
    await fleet.fake("fine")
    await fleet.start(
        {"m": {"deployments": deployments("broken", "fine", weights=(1000, 1))}},
        cooldown_failures=100,
    )
    async with fleet.sdk() as sdk:
        for _ in range(5):
            assert await ask(sdk, "m", False) == ("answer from fine", "fine-model")
    assert fleet.received("broken") == 5 and fleet.received("fine") == 5


async def test_upstream_400_is_returned_at_once_without_retry_or_fallback(fleet):
    await fleet.fake("picky", status=400)
    await fleet.fake("spare")
    await fleet.start(
        {
            "m": {"provider": "picky", "model": "picky-model", "fallbacks": ["spare-m"]},
            "spare-m": {"provider": "spare", "model": "spare-model"},
        }
    )
    async with fleet.sdk() as sdk:
        with pytest.raises(openai.BadRequestError) as err:
            await ask(sdk, "m", True, "req-400")
    assert err.value.code == "bad" and err.value.body["message"] == "bad thing"
    assert fleet.received("picky") == 1 and fleet.received("spare") == 0
    row = (await fleet.log_rows())["req-400"]
    assert (row["status_code"], row["attempts"], row["provider"]) == (400, 1, "picky")
    snap = fleet.gateway.services.router.snapshot(fleet.clock())
    assert snap["picky/picky-model"]["consecutive_failures"] == 0, (
        "a 400 is not the upstream's fault"
    )


async def test_upstream_429_everywhere_ends_as_the_upstream_429(fleet):
    await fleet.fake("busy", status=429)
    await fleet.start({"m": {"provider": "busy", "model": "busy-model"}}, max_attempts=3)
    async with fleet.sdk() as sdk:
        with pytest.raises(openai.RateLimitError) as err:
            await ask(sdk, "m", False)
    assert err.value.code == "bad"
    assert err.value.response.headers["Retry-After"] == "1"  # upstream sent none: at least 1
    assert fleet.received("busy") == 3


# --- fallbacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_all_deployments_down_falls_back_in_order(fleet, stream):
    for name in ("d1", "d2", "f1"):
        await fleet.fake(name, status=503)
    await fleet.fake("f2")
    models = {
        "primary": {"deployments": deployments("d1", "d2"), "fallbacks": ["fb-one", "fb-two"]},
        "fb-one": {"provider": "f1", "model": "f1-model"},
        "fb-two": {"provider": "f2", "model": "f2-model"},
    }
    await fleet.start(models, max_attempts=4)
    async with fleet.sdk() as sdk:
        assert await ask(sdk, "primary", stream, "req-fb") == ("answer from f2", "f2-model")
    got = {name: fleet.fakes[name].received for name in ("d1", "d2", "f1", "f2")}
    assert {name: len(r) for name, r in got.items()} == {"d1": 1, "d2": 1, "f1": 1, "f2": 1}
    assert max(got["d1"][0].at, got["d2"][0].at) < got["f1"][0].at < got["f2"][0].at
    assert got["f2"][0].body["model"] == "f2-model"
    row = (await fleet.log_rows())["req-fb"]
    assert (row["provider"], row["upstream_model"], row["attempts"]) == ("f2", "f2-model", 4)


async def test_max_attempts_leaves_room_for_fallbacks(fleet):
    for name in ("d1", "d2", "d3"):
        await fleet.fake(name, status=502)
    await fleet.fake("f1")
    models = {
        "primary": {"deployments": deployments("d1", "d2", "d3"), "fallbacks": ["fb"]},
        "fb": {"provider": "f1", "model": "f1-model"},
    }
    await fleet.start(models, max_attempts=2)
    async with fleet.sdk() as sdk:
        assert await ask(sdk, "primary", False, "req-cap") == ("answer from f1", "f1-model")
    assert sum(fleet.received(n) for n in ("d1", "d2", "d3")) == 1
    assert (await fleet.log_rows())["req-cap"]["attempts"] == 2


async def test_everything_failing_gives_the_last_failure(fleet):
    await fleet.fake("d1", status=503)
    await fleet.fake("f1", status=500)
    models = {
        "primary": {"provider": "d1", "model": "d1-model", "fallbacks": ["fb"]},
        "fb": {"provider": "f1", "model": "f1-model"},
    }
    await fleet.start(models, max_attempts=2)
    async with fleet.sdk() as sdk:
        with pytest.raises(openai.InternalServerError) as err:
            await ask(sdk, "primary", True, "req-all")
    assert err.value.status_code == 502 and err.value.code == "provider_error"
    assert "f1" in err.value.message
    row = (await fleet.log_rows())["req-all"]
    assert (row["status"], row["status_code"], row["attempts"]) == ("upstream_error", 502, 2)
    assert (row["provider"], row["upstream_model"]) == ("f1", "f1-model")


async def test_wildcard_prefix_routes_to_its_provider(fleet):
    await fleet.fake("ds")
    await fleet.start({"ds/*": {"provider": "ds"}, "ds/pinned": {"provider": "ds", "model": "p"}})
    async with fleet.sdk() as sdk:
        await ask(sdk, "ds/deepseek-reasoner", False, "req-wild")
        await ask(sdk, "ds/pinned", True)
    assert [r.body["model"] for r in fleet.fakes["ds"].received] == ["deepseek-reasoner", "p"]
    row = (await fleet.log_rows())["req-wild"]
    assert (row["provider"], row["upstream_model"]) == ("ds", "deepseek-reasoner")


# --- never after the first byte -------------------------------------------------------------


async def test_no_retry_once_the_stream_has_begun(fleet):
    await fleet.fake("b1", close_after_bytes=250)  # the first event whole, then half of one
    await fleet.fake("b2", close_after_bytes=250)
    await fleet.fake("spare")
    models = {
        "m": {"deployments": deployments("b1", "b2"), "fallbacks": ["spare-m"]},
        "spare-m": {"provider": "spare", "model": "spare-model"},
    }
    await fleet.start(models)
    status, got = await raw_stream(fleet.gateway, "m")
    assert status == 200
    served = [n for n in ("b1", "b2") if fleet.received(n)]
    assert len(served) == 1, "the other deployment received nothing"
    assert fleet.received("spare") == 0, "nor did the fallback"
    sent = fleet.fakes[served[0]].streamed[-1]
    whole_events = sent[: sent.rfind(b"\n\n") + 2]
    assert whole_events and got.startswith(whole_events), "the client got upstream's bytes"
    errors = [e for e in got.split(b"\n\n") if e.startswith(b'data: {"error"')]
    assert len(errors) == 1 and got.endswith(errors[0] + b"\n\n")
    assert orjson.loads(errors[0][6:])["error"]["code"] == "stream_error"
    rows = list((await fleet.log_rows()).values())
    assert [(r["provider"], r["attempts"], r["status"]) for r in rows] == [
        (served[0], 1, "upstream_error")
    ]


# --- cooldown -------------------------------------------------------------------------------


def gauge(text: str, deployment: str) -> float | None:
    prefix = f'gateway_deployment_cooling_down{{deployment="{deployment}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


async def metrics_text(gateway) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/metrics") as resp:
        return await resp.text()


async def test_cooldown_skips_a_failing_deployment_then_half_open_probes_it(fleet):
    sick = await fleet.fake("sick", status=503)
    await fleet.fake("well")
    await fleet.start(
        {"m": {"deployments": deployments("sick", "well")}},
        cooldown_failures=2, cooldown_s=30,
    )  # fmt: skip
    snapshot = fleet.gateway.services.router.snapshot
    async with fleet.sdk() as sdk:
        for _ in range(60):  # each request tries `sick` first half of the time
            assert (await ask(sdk, "m", False))[0] == "answer from well"
            if fleet.received("sick") == 2:
                break
        assert fleet.received("sick") == 2
        assert snapshot(fleet.clock())["sick/sick-model"]["state"] == "cooling_down"
        assert gauge(await metrics_text(fleet.gateway), "sick/sick-model") == 1.0

        fleet.clock.now += 29.9
        for _ in range(20):
            await ask(sdk, "m", True)
        assert fleet.received("sick") == 2, "skipped while cooling down"

        fleet.clock.now += 0.1  # half-open: the next request probes it first; it still fails
        assert (await ask(sdk, "m", False, "req-probe-1"))[0] == "answer from well"
        assert fleet.received("sick") == 3
        assert snapshot(fleet.clock())["sick/sick-model"]["state"] == "cooling_down"
        for _ in range(10):
            await ask(sdk, "m", False)
        assert fleet.received("sick") == 3, "a failed probe reopens the cooldown"

        fleet.clock.now += 30
        sick.behaviour.status = 200  # recovered: the probe succeeds and closes it
        assert await ask(sdk, "m", False, "req-probe-2") == ("answer from sick", "sick-model")
        assert snapshot(fleet.clock())["sick/sick-model"]["state"] == "healthy"
        assert gauge(await metrics_text(fleet.gateway), "sick/sick-model") == 0.0
        for _ in range(30):
            await ask(sdk, "m", False)
        assert 5 < fleet.received("sick") - 4 < 25, "back in the weighted rotation"
    rows = await fleet.log_rows()
    assert (rows["req-probe-1"]["provider"], rows["req-probe-1"]["attempts"]) == ("well", 2)
    assert (rows["req-probe-2"]["provider"], rows["req-probe-2"]["attempts"]) == ("sick", 1)


async def test_only_one_request_probes_a_half_open_deployment(fleet):
    sick = await fleet.fake("sick", hang_s=0.5)  # answers, slowly: the probe is in flight a while
    await fleet.fake("well")
    await fleet.start(
        {"m": {"deployments": deployments("sick", "well")}},
        cooldown_failures=1, cooldown_s=30,
    )  # fmt: skip
    fleet.gateway.services.router.health.failure("sick/sick-model", fleet.clock(), "http_503")
    fleet.clock.now += 30
    async with fleet.sdk() as sdk:
        probe = asyncio.create_task(ask(sdk, "m", False))
        assert await wait_for(lambda: fleet.received("sick") == 1)
        others = await asyncio.gather(*(ask(sdk, "m", False) for _ in range(10)))
        assert others == [("answer from well", "well-model")] * 10
        assert await probe == ("answer from sick", "sick-model")
    assert len(sick.received) == 1
