"""SPEC 14, lenient relays: on a relayed path (Messages to `anthropic`, chat and Responses to
`openai`) roles, blocks and fields the gateway does not read reach the provider unchanged; on a
translated path an unknown role or block is a 400 naming it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest

from tests.support.clients import raw_chat, sdk
from tests.support.front_door import (
    UPSTREAM_ID,
    ToolCallingUpstream,
    claude_sdk,
    front_door_config,
    post,
)
from tests.support.gateway import RunningGateway, start_gateway

# What Claude Code sends now: a system message inside `messages`, among the turns.
CLAUDE_CODE_MESSAGES = [
    {"role": "user", "content": [{"type": "text", "text": "Fix the bug"}]},
    {"role": "system", "content": "<system-reminder>Plan mode is active.</system-reminder>"},
    {"role": "user", "content": [{"type": "text", "text": "Go on"}]},
]


@pytest.fixture
async def upstream() -> AsyncIterator[ToolCallingUpstream]:
    fake = await ToolCallingUpstream().start()
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(claude, upstream, tmp_path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(front_door_config(claude.base_url, upstream.base_url, tmp_path))
    yield running
    await running.close()


async def test_a_system_message_inside_messages_is_relayed_to_anthropic(gateway, claude):
    body = {
        "model": "claude-sonnet",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": CLAUDE_CODE_MESSAGES,
    }
    extra = {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}
    async with claude_sdk(gateway) as client:
        answer = await client.messages.create(**body, extra_body=extra)
        assert answer.content[0].text == "Hello from Claude"
        async with client.messages.stream(**body, extra_body=extra) as stream:
            assert await stream.get_final_text() == "Hello from Claude"
    sent, streamed = claude.received
    assert sent.body == {**body, **extra, "model": UPSTREAM_ID}
    assert streamed.body == {**body, **extra, "model": UPSTREAM_ID, "stream": True}


async def test_unknown_roles_and_blocks_are_relayed_to_anthropic_and_named_elsewhere(
    gateway, claude, upstream
):
    messages = [
        {"role": "user", "content": [{"type": "hologram", "data": "..."}]},
        {"role": "critic", "content": "Be harsher."},
    ]
    status, _, _ = await post(gateway, {"model": "claude-sonnet", "max_tokens": 9,
                                        "messages": messages})  # fmt: skip
    assert status == 200
    assert claude.received[-1].body["messages"] == messages
    async with claude_sdk(gateway) as client:
        for bad, named in [
            (messages[:1], "`hologram`"),
            ([{"role": "user", "content": "Hi"}, messages[1]], "`messages[1].role`"),
        ]:
            with pytest.raises(anthropic.BadRequestError) as refused:
                await client.messages.create(model="fake-model", max_tokens=9, messages=bad)
            assert refused.value.type == "invalid_request_error"
            assert named in refused.value.message
    assert upstream.received == []


async def test_the_system_message_keeps_its_place_when_translated_to_chat(gateway, upstream):
    async with claude_sdk(gateway) as client:
        answer = await client.messages.create(
            model="fake-model", max_tokens=9, system="You are Claude Code.",
            messages=CLAUDE_CODE_MESSAGES,
        )  # fmt: skip
    assert answer.content[0].text == "Hello from upstream"
    assert upstream.received[-1].body["messages"] == [
        {"role": "system", "content": "You are Claude Code."},
        {"role": "user", "content": "Fix the bug"},
        {"role": "system", "content": CLAUDE_CODE_MESSAGES[1]["content"]},
        {"role": "user", "content": "Go on"},
    ]


async def test_chat_roles_are_the_providers_business_on_a_relay(gateway, upstream, claude):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "critic", "content": "Be harsher.", "weight": 2},
    ]
    status, _, _ = await raw_chat(gateway, {"model": "fake-model", "messages": messages})
    assert status == 200 and upstream.received[-1].body["messages"] == messages
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model="claude-sonnet", messages=messages)
    assert refused.value.body["param"] == "messages[1].role"
    assert "critic" in refused.value.message
    assert claude.received == []


async def test_responses_fields_and_tools_are_the_providers_business_on_a_relay(gateway, upstream):
    body = {
        "model": "fake-model",
        "input": [{"type": "message", "role": "developer", "content": "Be terse."},
                  {"type": "hologram", "data": "..."}],
        "tools": [{"type": "namespace", "name": "multi_agent", "tools": []},
                  {"type": "web_search"}],
        "prompt_cache_key": "abc",
    }  # fmt: skip
    async with sdk(gateway) as client:
        await client.responses.create(**body)
    assert upstream.received[-1].body == {**body, "model": "upstream-model"}


async def test_a_developer_message_mid_conversation_joins_anthropics_system_in_order(
    gateway, claude
):
    async with sdk(gateway) as client:
        await client.responses.create(
            model="claude-sonnet",
            instructions="You are Codex.",
            input=[
                {"role": "user", "content": "Fix it"},
                {"role": "developer", "content": "Approval mode: never."},
                {"role": "user", "content": "Go"},
            ],
        )
    sent = claude.received[-1].body
    assert sent["system"] == "You are Codex.\n\nApproval mode: never."
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Fix it"},
                                     {"type": "text", "text": "Go"}]},
    ]  # fmt: skip


async def test_an_unknown_responses_role_is_relayed_or_named(gateway, upstream, claude):
    body = {"model": "fake-model", "input": [{"type": "message", "role": "critic",
                                              "content": "Harsher."}]}  # fmt: skip
    async with sdk(gateway) as client:
        await client.responses.create(**body)
        assert upstream.received[-1].body["input"] == body["input"]
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(**{**body, "model": "claude-sonnet"})
    assert refused.value.body["param"] == "input[0].role"
    assert "`critic`" in refused.value.message
    assert claude.received == []
