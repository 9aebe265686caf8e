"""Sessions end to end through the OpenAI SDK: history prepended, turns appended, owner-only access.
Runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import openai
import pytest

from tests.support.clients import sdk
from tests.support.gateway import USER_KEY, gateway_on


@pytest.fixture
async def gateway(gateway_config, database):
    """The suite's gateway, on each database in turn."""
    async with gateway_on(gateway_config, database) as running:
        yield running


async def _session(gateway, key: str, **body) -> dict:
    async with sdk(gateway, key) as client:
        return await client.post("/ai/sessions", body=body, cast_to=object)


async def test_chat_in_session_prepends_history_and_appends_turns(gateway, client, upstream):
    session = await _session(gateway, USER_KEY, title="trip")
    sid = session["id"]
    assert session["object"] == "ai.session" and session["message_count"] == 0

    await client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "first"}],
        extra_body={"session_id": sid},
    )
    upstream.behaviour.pieces = ["second", " answer"]
    stream = await client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "again"}],
        stream=True,
        extra_body={"session_id": sid},
    )
    async for _ in stream:
        pass
    sent = upstream.received[-1].body
    assert "session_id" not in sent
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Hello from upstream"},
        {"role": "user", "content": "again"},
    ]
    page = await client.get(f"/ai/sessions/{sid}/messages", cast_to=object)
    roles = [(m["role"], m["content"]) for m in page["data"]]
    assert roles == [
        ("user", "first"),
        ("assistant", "Hello from upstream"),
        ("user", "again"),
        ("assistant", "second answer"),
    ]
    assert page["has_more"] is False
    got = await client.get(f"/ai/sessions/{sid}", cast_to=object)
    assert got["message_count"] == 4
    assert got["total_tokens"] == sum(m["tokens"] for m in page["data"])
    assert got["updated_at"] >= session["updated_at"]


async def test_messages_page_newest_first_and_before_cursor(gateway, client, upstream):
    sid = (await _session(gateway, USER_KEY))["id"]
    for i in range(3):
        await client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": f"m{i}"}],
            extra_body={"session_id": sid},
        )
    page = await client.get(f"/ai/sessions/{sid}/messages?limit=2", cast_to=object)
    assert [m["content"] for m in page["data"]] == ["m2", "Hello from upstream"]
    assert page["has_more"] is True
    older = await client.get(
        f"/ai/sessions/{sid}/messages?limit=2&before={page['data'][0]['id']}", cast_to=object
    )
    assert [m["content"] for m in older["data"]] == ["m1", "Hello from upstream"]


async def test_other_user_cannot_read_change_or_chat_into_session(
    gateway, client, other_client, upstream
):
    sid = (await _session(gateway, USER_KEY, title="mine"))["id"]
    for call in (
        other_client.get(f"/ai/sessions/{sid}", cast_to=object),
        other_client.get(f"/ai/sessions/{sid}/messages", cast_to=object),
        other_client.patch(f"/ai/sessions/{sid}", body={"title": "x"}, cast_to=object),
        other_client.delete(f"/ai/sessions/{sid}", cast_to=object),
        other_client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"session_id": sid},
        ),
    ):
        with pytest.raises(openai.NotFoundError) as err:
            await call
        assert err.value.code == "session_not_found"
    assert upstream.received == []
    theirs = await other_client.get("/ai/sessions", cast_to=object)
    assert theirs["data"] == []
    mine = await client.get(f"/ai/sessions/{sid}", cast_to=object)
    assert mine["title"] == "mine"


async def test_session_crud_and_listing(gateway, client):
    ids = [(await _session(gateway, USER_KEY, title=f"s{i}"))["id"] for i in range(3)]
    patched = await client.patch(
        f"/ai/sessions/{ids[0]}", body={"status": "archived"}, cast_to=object
    )
    assert patched["status"] == "archived"
    listed = await client.get("/ai/sessions?limit=2", cast_to=object)
    assert [s["id"] for s in listed["data"]] == [ids[0], ids[2]]  # newest updated first
    assert listed["has_more"] is True
    rest = await client.get(f"/ai/sessions?limit=2&after={ids[2]}", cast_to=object)
    assert [s["id"] for s in rest["data"]] == [ids[1]] and rest["has_more"] is False
    archived = await client.get("/ai/sessions?status=archived", cast_to=object)
    assert [s["id"] for s in archived["data"]] == [ids[0]]
    await client.delete(f"/ai/sessions/{ids[1]}", cast_to=object)
    with pytest.raises(openai.NotFoundError):
        await client.get(f"/ai/sessions/{ids[1]}", cast_to=object)
    with pytest.raises(openai.BadRequestError) as err:
        await client.get("/ai/sessions?limit=0", cast_to=object)
    assert err.value.param == "limit"
    with pytest.raises(openai.BadRequestError) as err:
        await client.patch(f"/ai/sessions/{ids[0]}", body={"status": "gone"}, cast_to=object)
    assert err.value.param == "status"


async def test_request_log_rows_have_tokens_and_cost(gateway, client, upstream):
    await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}]
    )
    stream = await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    async for _ in stream:
        pass
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    s = gateway.services
    assert await s.writer.flush(5)
    rows = await s.store.usage("alice", datetime.now(UTC).date())
    by_model = {r["model"]: r for r in rows}
    fake = by_model["fake-model"]
    assert fake["requests"] == 2
    assert fake["prompt_tokens"] == 22 and fake["completion_tokens"] == 6
    # 22 * 1.5 + 6 * 2.0 = 45 USD per million tokens -> 0.000045
    assert str(fake["cost_usd"]).rstrip("0") == "0.000045"
    assert await s.store.count_request_logs() == 3
