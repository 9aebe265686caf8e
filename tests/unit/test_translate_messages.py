"""The Anthropic front door's translator: Messages requests -> chat bodies, chat answers and
chunk streams -> Anthropic messages and events, checked field by field and by the anthropic SDK."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import orjson
import pytest
from aiohttp import web
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from gateway.accounting.tokens import estimate_prompt_tokens, estimate_tokens
from gateway.errors import InvalidRequest, ProviderError
from gateway.translate.messages import (
    ChatToMessagesStream,
    anthropic_error_type,
    chat_to_message,
    error_body,
    estimate_input_tokens,
    messages_to_chat,
    openai_error_to_anthropic,
    validate_messages_request,
)

MODEL = "claude-gw"
MSG_ID = "msg_0123"
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)


def request(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    body.update(fields)
    return body


def refused(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat(body)
    return caught.value


# --- validate_messages_request ---------------------------------------------------------------


def test_a_minimal_request_is_valid() -> None:
    validate_messages_request(request())
    validate_messages_request(request(stream=True, system=[{"type": "text", "text": "Be brief"}]))
    validate_messages_request(request(max_tokens=64.0))


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"model": None}, "model", "missing_required_parameter"),
        ({"model": ""}, "model", "invalid_type"),
        ({"model": 7}, "model", "invalid_type"),
        ({"max_tokens": None}, "max_tokens", "missing_required_parameter"),
        ({"max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"max_tokens": -5}, "max_tokens", "invalid_value"),
        ({"max_tokens": "100"}, "max_tokens", "invalid_type"),
        ({"max_tokens": True}, "max_tokens", "invalid_type"),
        ({"max_tokens": 1.5}, "max_tokens", "invalid_type"),
        ({"messages": None}, "messages", "missing_required_parameter"),
        ({"messages": []}, "messages", "invalid_value"),
        ({"messages": "Hi"}, "messages", "invalid_type"),
        ({"messages": ["Hi"]}, "messages[0]", "invalid_type"),
        ({"stream": "yes"}, "stream", "invalid_type"),
    ],
)
def test_invalid_requests_name_the_field(change: dict[str, Any], param: str, code: str) -> None:
    body = request()
    for key, value in change.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    with pytest.raises(InvalidRequest) as caught:
        validate_messages_request(body)
    assert (caught.value.param, caught.value.code, caught.value.status) == (param, code, 400)


# What a relay leaves to the provider, and a translation must understand.
UNTRANSLATABLE = [
    ({"messages": [{"role": "critic", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
    (
        {"messages": [{"role": "user", "content": [{"text": "no type"}]}]},
        "messages[0].content[0]",
        "invalid_type",
    ),
    ({"system": 5}, "system", "invalid_type"),
    ({"system": [{"type": "image"}]}, "system[0]", "invalid_type"),
    ({"system": [{"type": "text", "text": 1}]}, "system[0]", "invalid_type"),
    (
        {"messages": [{"role": "system", "content": [{"type": "image"}]}]},
        "messages[0].content[0].type",
        "invalid_value",
    ),
]


@pytest.mark.parametrize(("change", "param", "code"), UNTRANSLATABLE)
def test_relays_leave_roles_and_blocks_to_the_provider_translations_name_them(
    change: dict[str, Any], param: str, code: str
) -> None:
    body = request() | change
    validate_messages_request(body)  # relayed: the provider judges
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat(body)
    assert (caught.value.param, caught.value.code, caught.value.status) == (param, code, 400)
    if "role" in param and "critic" in str(change):
        assert "critic" in caught.value.message


def test_a_system_message_inside_messages_keeps_its_place() -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": [{"type": "text", "text": "Plan mode."}]},
        {"role": "assistant", "content": "Ok"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Go"},
    ]
    chat = messages_to_chat(request(system="You are a CLI.", messages=messages))
    assert chat["messages"] == [
        {"role": "system", "content": "You are a CLI."},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Plan mode."},
        {"role": "assistant", "content": "Ok"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Go"},
    ]


def test_count_tokens_requests_need_no_max_tokens() -> None:
    body = request()
    del body["max_tokens"]
    validate_messages_request(body, count_tokens=True)
    with pytest.raises(InvalidRequest):
        validate_messages_request(body)


# --- messages_to_chat: messages --------------------------------------------------------------


def test_minimal_request() -> None:
    assert messages_to_chat(request(system="Be brief")) == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hi"},
        ],
        "max_tokens": 100,
    }


def test_system_text_blocks_become_one_first_system_message() -> None:
    system = [
        {"type": "text", "text": "You are a CLI."},
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
    ]
    chat = messages_to_chat(request(system=system))
    assert chat["messages"][0] == {"role": "system", "content": "You are a CLI.\n\nBe brief."}
    assert messages_to_chat(request(system=[]))["messages"][0]["role"] == "user"


def test_user_blocks_become_parts() -> None:
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
    ]
    chat = messages_to_chat(request(messages=[{"role": "user", "content": content}]))
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            ],
        }
    ]


def test_a_lone_text_block_becomes_plain_content() -> None:
    block = {"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}
    chat = messages_to_chat(request(messages=[{"role": "user", "content": [block]}]))
    assert chat["messages"] == [{"role": "user", "content": "Hello"}]


def test_tool_use_and_tool_results_round() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two calls.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xyz"},
                {"type": "text", "text": "Checking "},
                {"type": "text", "text": "both."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here you go."},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "city missing"},
                        {"type": "text", "text": "try again"},
                    ],
                },
            ],
        },
    ]
    chat = messages_to_chat(request(messages=messages))
    assert chat["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking both.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: city missing\ntry again"},
        {"role": "user", "content": "Here you go."},
    ]


def test_assistant_with_only_tool_calls_has_null_content() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
    ]
    chat = messages_to_chat(request(messages=messages))
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "t", "content": ""}


def test_images_in_a_tool_result_move_to_the_user_message_after_the_tool_messages() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j"},
    }
    result = {
        "type": "tool_result",
        "tool_use_id": "t",
        "content": [{"type": "text", "text": "screenshot:"}, image],
    }
    messages = [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "shot"}]},
        {"role": "user", "content": [result, {"type": "text", "text": "What changed?"}]},
    ]
    chat = messages_to_chat(request(messages=messages))
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t", "content": "screenshot:"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j"}},
                {"type": "text", "text": "What changed?"},
            ],
        },
    ]


def test_consecutive_turns_of_one_role_are_merged_tool_results_first() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f"}]},
        {"role": "user", "content": "note"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
        {"role": "assistant", "content": "A"},
        {"role": "assistant", "content": "B"},
    ]
    chat = messages_to_chat(request(messages=messages))
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t", "content": "ok"},
        {"role": "user", "content": "note"},
        {"role": "assistant", "content": "AB"},
    ]


def test_an_assistant_turn_of_only_thinking_is_dropped() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": ""}]},
        {"role": "user", "content": "b"},
    ]
    chat = messages_to_chat(request(messages=messages))
    assert chat["messages"] == [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [{"role": "user", "content": [{"type": "text", "text": "read"}, {"type": "document"}]}],
            "messages[0].content[1].type",
        ),
        ([{"role": "user", "content": [{"type": "search_result"}]}], "messages[0].content[0].type"),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [{"type": "image"}]},
            ],
            "messages[1].content[0].type",
        ),
        (
            [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f"}]}],
            "messages[0].content[0].type",
        ),
        (
            [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}],
            "messages[0].content[0].source.type",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "document"}],
                        }
                    ],
                }
            ],
            "messages[0].content[0].content[0].type",
        ),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text"),
        (
            [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}],
            "messages[0].content[0].tool_use_id",
        ),
        (
            [
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}],
                },
            ],
            "messages[1].content[0].input",
        ),
    ],
)
def test_blocks_chat_cannot_carry_are_refused(messages: list[Any], param: str) -> None:
    error = refused(request(messages=messages))
    assert error.param == param and error.status == 400


# --- messages_to_chat: other fields ----------------------------------------------------------


def test_sampling_and_metadata_fields() -> None:
    chat = messages_to_chat(
        request(
            max_tokens=64.0,
            stop_sequences=["\n\nHuman:", "END"],
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            thinking={"type": "enabled", "budget_tokens": 2048},
            metadata={"user_id": "u-42"},
            service_tier="auto",
            stream=True,
        )
    )
    assert chat == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "stop": ["\n\nHuman:", "END"],
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u-42",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert type(chat["max_tokens"]) is int


def test_stream_false_and_empty_stop_sequences_are_left_out() -> None:
    chat = messages_to_chat(request(stream=False, stop_sequences=[], metadata={}))
    assert set(chat) == {"model", "messages", "max_tokens"}


def test_structured_output_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    chat = messages_to_chat(
        request(
            output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"}
        )
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert "reasoning_effort" not in chat


WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def test_tools_become_functions() -> None:
    tools = [
        {"name": "weather", "description": "Weather now", "input_schema": WEATHER_SCHEMA},
        {"type": "custom", "name": "noop", "input_schema": {"type": "object"}, "strict": True},
    ]
    chat = messages_to_chat(request(tools=tools))
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather now",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {
            "type": "function",
            "function": {"name": "noop", "parameters": {"type": "object"}, "strict": True},
        },
    ]
    assert "tool_choice" not in chat and "parallel_tool_calls" not in chat


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        (
            {"type": "tool", "name": "weather"},
            {"type": "function", "function": {"name": "weather"}},
            None,
        ),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        (
            {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
            {"type": "function", "function": {"name": "weather"}},
            False,
        ),
        ({"type": "auto", "disable_parallel_tool_use": False}, "auto", None),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool | None) -> None:
    tools = [{"name": "weather", "input_schema": WEATHER_SCHEMA}]
    chat = messages_to_chat(request(tools=tools, tool_choice=choice))
    assert chat["tool_choice"] == expected
    assert chat.get("parallel_tool_calls") == parallel


def test_tool_choice_without_tools_is_not_sent() -> None:
    chat = messages_to_chat(request(tool_choice={"type": "any", "disable_parallel_tool_use": True}))
    assert "tool_choice" not in chat and "parallel_tool_calls" not in chat


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {
                "tools": [
                    {"name": "a", "input_schema": {}},
                    {"type": "bash_20250124", "name": "bash"},
                ]
            },
            "tools[1].type",
        ),
        ({"tools": [{"name": "a"}]}, "tools[0].input_schema"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"tools": {"name": "a"}}, "tools"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"temperature": "hot"}, "temperature"),
        ({"metadata": {"user_id": 5}}, "metadata.user_id"),
        ({"output_config": {"format": {"type": "regex"}}}, "output_config.format"),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
    ],
)
def test_fields_chat_cannot_express_are_refused(fields: dict[str, Any], param: str) -> None:
    assert refused(request(**fields)).param == param


# --- chat_to_message -------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str | None = "stop", usage: Any = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def to_message(body: bytes, **kwargs: Any) -> dict[str, Any]:
    raw = chat_to_message(body, MODEL, MSG_ID, **kwargs)
    Message.model_validate_json(raw)  # the anthropic SDK's own type accepts it
    result: dict[str, Any] = orjson.loads(raw)
    return result


def test_a_text_answer_with_cached_usage() -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 9,
        "total_tokens": 129,
        "prompt_tokens_details": {"cached_tokens": 100},
    }
    assert to_message(completion({"content": "Hello!"}, usage=usage)) == {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100,
            "output_tokens": 9,
        },
    }


def test_reasoning_text_and_tool_calls() -> None:
    message = {
        "reasoning_content": "Use the tool.",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "weather", "arguments": "{oops"},
            },
            {"id": "call_3", "type": "function", "function": {"name": "clock", "arguments": ""}},
            {"id": "call_4", "type": "function", "function": {"name": "list", "arguments": "[1]"}},
        ],
    }
    answer = to_message(
        completion(message, "tool_calls", {"prompt_tokens": 5, "completion_tokens": 7})
    )
    assert answer["content"] == [
        {"type": "thinking", "thinking": "Use the tool.", "signature": ""},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {}},
        {"type": "tool_use", "id": "call_3", "name": "clock", "input": {}},
        {"type": "tool_use", "id": "call_4", "name": "list", "input": {}},
    ]
    assert answer["stop_reason"] == "tool_use"
    assert answer["usage"]["input_tokens"] == 5 and answer["usage"]["output_tokens"] == 7


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("something_new", "end_turn"),
    ],
)
def test_finish_reasons(finish: str | None, stop_reason: str) -> None:
    answer = to_message(completion({"content": "x"}, finish))
    assert (answer["stop_reason"], answer["stop_sequence"]) == (stop_reason, None)


def test_stop_with_tool_calls_is_tool_use() -> None:
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert (
        to_message(completion({"content": None, "tool_calls": calls}))["stop_reason"] == "tool_use"
    )
    truncated = to_message(completion({"tool_calls": calls}, "length"))
    assert truncated["stop_reason"] == "max_tokens"


def test_legacy_function_call_and_missing_ids() -> None:
    answer = to_message(
        completion({"function_call": {"name": "f", "arguments": '{"a": 1}'}}, "function_call")
    )
    assert answer["content"] == [
        {"type": "tool_use", "id": f"toolu_{MSG_ID}_0", "name": "f", "input": {"a": 1}}
    ]


def test_refusal_and_empty_content() -> None:
    answer = to_message(completion({"content": None, "refusal": "I can't help."}, "content_filter"))
    assert answer["content"] == [{"type": "text", "text": "I can't help."}]
    assert answer["stop_reason"] == "refusal"
    assert to_message(completion({"content": ""}))["content"] == []


def test_without_upstream_usage_tokens_are_estimated() -> None:
    answer = to_message(completion({"content": "abcdefgh"}), input_tokens_estimate=33)
    assert answer["usage"] == {
        "input_tokens": 33,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 2,
    }


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"choices": []}', b'{"object": "x"}'])
def test_an_answer_that_is_not_a_completion_is_a_provider_error(body: bytes) -> None:
    with pytest.raises(ProviderError):
        chat_to_message(body, MODEL, MSG_ID)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_types_by_status(status: int, kind: str) -> None:
    assert anthropic_error_type(status) == kind


def test_error_body_shape() -> None:
    raw = error_body(429, "Slow down.")
    assert orjson.loads(raw) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Slow down."},
    }
    parsed = ErrorResponse.model_validate_json(error_body(401, "Bad key.", request_id="req_1"))
    assert (parsed.error.type, parsed.error.message, parsed.request_id) == (
        "authentication_error",
        "Bad key.",
        "req_1",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"message": "Unknown model", "type": "invalid_request_error"}}',
            "Unknown model",
        ),
        (b'{"error": "quota gone"}', "quota gone"),
        (b'{"message": "bad field"}', "bad field"),
        (b"Bad Request\n", "Bad Request"),
        (b"", "upstream returned HTTP 400"),
    ],
)
def test_openai_error_bodies_become_anthropic(body: bytes, message: str) -> None:
    assert orjson.loads(openai_error_to_anthropic(400, body)) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
    }


# --- estimate_input_tokens -------------------------------------------------------------------


def test_input_estimate_counts_system_messages_and_tools() -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "system": "You are terse. " * 10,
        "messages": [{"role": "user", "content": "How warm is Paris today?"}],
    }
    base = estimate_input_tokens(body)
    assert base == estimate_prompt_tokens(
        [{"content": "You are terse. " * 10}, {"content": "How warm is Paris today?"}]
    )
    tools = [{"name": "weather", "input_schema": WEATHER_SCHEMA}]
    assert estimate_input_tokens({**body, "tools": tools}) == base + estimate_tokens(
        orjson.dumps(tools).decode()
    )
    image = {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}
    with_image = {**body, "messages": [{"role": "user", "content": [image]}]}
    without = {**body, "messages": [{"role": "user", "content": []}]}
    assert estimate_input_tokens(with_image) == estimate_input_tokens(without) + 1600


def test_input_estimate_counts_tool_traffic_and_never_fails() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"q": "x" * 400}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t", "content": "y" * 400}],
        },
    ]
    small = estimate_input_tokens({"messages": messages[:1]})
    assert estimate_input_tokens({"messages": messages}) >= small + 200
    assert estimate_input_tokens({"messages": "junk", "system": 5, "tools": "x"}) > 0
    assert estimate_input_tokens({"messages": [None, {"content": [None, {"type": 3}]}]}) > 0


# --- ChatToMessagesStream --------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }
    body.update(extra)
    return b"data: " + orjson.dumps(body) + b"\n\n"


def usage_chunk(prompt: int, completion: int, cached: int | None = None) -> bytes:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def tool_chunk(index: int, call_id: str | None, name: str | None, arguments: str) -> bytes:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        call.update(id=call_id, type="function")
    if name is not None:
        call["function"]["name"] = name
    return chunk({"tool_calls": [call]})


DONE = b"data: [DONE]\n\n"
ESTIMATE = 11


def translate(raw: bytes, estimate: int = ESTIMATE) -> bytes:
    stream = ChatToMessagesStream(MODEL, MSG_ID, estimate)
    return stream.feed(raw) + stream.close()


def parse(out: bytes) -> list[dict[str, Any]]:
    """Anthropic events as dicts; each `event:` names its data's type and is a valid SDK event."""
    events: list[dict[str, Any]] = []
    for block in out.split(b"\n\n")[:-1]:
        head, data = block.split(b"\n")
        assert head.startswith(b"event: ") and data.startswith(b"data: ")
        event = orjson.loads(data[6:])
        assert head[7:].decode() == event["type"]
        if event["type"] == "error":
            ErrorResponse.model_validate(event)
        else:
            STREAM_EVENT.validate_python(event)
        events.append(event)
    assert out.endswith(b"\n\n") or not out
    return events


def message_start(estimate: int = ESTIMATE) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": MSG_ID,
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": estimate,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        },
    }


def start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, kind: str, value: str) -> dict[str, Any]:
    field = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": kind, field[kind]: value},
    }


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage,
    }


MESSAGE_STOP = {"type": "message_stop"}
TEXT = {"type": "text", "text": ""}
THINKING = {"type": "thinking", "thinking": "", "signature": ""}


def tool(call_id: str, name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": {}}


TEXT_STREAM = (
    chunk({"role": "assistant", "content": ""})
    + b": keep-alive\n\n"
    + chunk({"content": "Hello"})
    + chunk({"content": " world 你好"})
    + chunk({}, "stop")
    + usage_chunk(12, 4, cached=2)
    + DONE
)


def test_text_only() -> None:
    assert parse(translate(TEXT_STREAM)) == [
        message_start(),
        start(0, TEXT),
        delta(0, "text_delta", "Hello"),
        delta(0, "text_delta", " world 你好"),
        stop(0),
        message_delta(
            "end_turn", {"input_tokens": 10, "cache_read_input_tokens": 2, "output_tokens": 4}
        ),
        MESSAGE_STOP,
    ]


TOOLS_STREAM = (
    chunk({"role": "assistant", "content": "Checking both."})
    + tool_chunk(0, "call_a", "weather", "")
    + tool_chunk(0, None, None, '{"city": ')
    + tool_chunk(0, None, None, '"Paris"}')
    + tool_chunk(1, "call_b", "weather", '{"ci')
    + tool_chunk(1, None, None, 'ty": "Rome"}')
    + chunk({}, "tool_calls")
    + usage_chunk(50, 30)
    + DONE
)


def test_text_then_two_parallel_tool_calls() -> None:
    assert parse(translate(TOOLS_STREAM)) == [
        message_start(),
        start(0, TEXT),
        delta(0, "text_delta", "Checking both."),
        stop(0),
        start(1, tool("call_a", "weather")),
        delta(1, "input_json_delta", '{"city": '),
        delta(1, "input_json_delta", '"Paris"}'),
        stop(1),
        start(2, tool("call_b", "weather")),
        delta(2, "input_json_delta", '{"ci'),
        delta(2, "input_json_delta", 'ty": "Rome"}'),
        stop(2),
        message_delta(
            "tool_use", {"input_tokens": 50, "cache_read_input_tokens": 0, "output_tokens": 30}
        ),
        MESSAGE_STOP,
    ]


REASONING_STREAM = (
    chunk({"role": "assistant", "reasoning_content": "Think"})
    + chunk({"reasoning_content": "ing."})
    + chunk({"content": "Answer."})
    + chunk({}, "length")
    + usage_chunk(3, 8)
    + DONE
)


def test_reasoning_then_text() -> None:
    assert parse(translate(REASONING_STREAM)) == [
        message_start(),
        start(0, THINKING),
        delta(0, "thinking_delta", "Think"),
        delta(0, "thinking_delta", "ing."),
        stop(0),
        start(1, TEXT),
        delta(1, "text_delta", "Answer."),
        stop(1),
        message_delta(
            "max_tokens", {"input_tokens": 3, "cache_read_input_tokens": 0, "output_tokens": 8}
        ),
        MESSAGE_STOP,
    ]


def test_the_message_ends_when_the_usage_chunk_after_the_finish_arrives() -> None:
    stream = ChatToMessagesStream(MODEL, MSG_ID, ESTIMATE)
    before = parse(stream.feed(chunk({"content": "Hi"}) + chunk({}, "stop")))
    assert [e["type"] for e in before][-1] == "content_block_stop"
    after = parse(stream.feed(usage_chunk(7, 1)))
    assert after == [
        message_delta(
            "end_turn", {"input_tokens": 7, "cache_read_input_tokens": 0, "output_tokens": 1}
        ),
        MESSAGE_STOP,
    ]
    assert stream.feed(DONE) == b"" and stream.close() == b""


def test_usage_in_the_finish_chunk_ends_the_message_at_once() -> None:
    stream = ChatToMessagesStream(MODEL, MSG_ID, ESTIMATE)
    usage = {"prompt_tokens": 4, "completion_tokens": 2}
    events = parse(stream.feed(chunk({"content": "Hi"}, "stop", usage=usage)))
    assert events[-2:] == [
        message_delta(
            "end_turn", {"input_tokens": 4, "cache_read_input_tokens": 0, "output_tokens": 2}
        ),
        MESSAGE_STOP,
    ]


def test_usage_before_the_finish_waits_for_done() -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 1}
    stream = ChatToMessagesStream(MODEL, MSG_ID, ESTIMATE)
    first = parse(stream.feed(chunk({"content": "Hi"}, usage=usage) + chunk({}, "stop")))
    assert "message_delta" not in [e["type"] for e in first]
    assert parse(stream.feed(DONE))[0]["usage"]["input_tokens"] == 4


def test_no_usage_at_all_estimates_output_at_done() -> None:
    events = parse(translate(chunk({"content": "abcdefgh"}) + chunk({}, "stop") + DONE))
    assert events[-2:] == [message_delta("end_turn", {"output_tokens": 2}), MESSAGE_STOP]
    assert events[0] == message_start()


def test_finish_then_close_without_done_still_completes() -> None:
    events = parse(translate(chunk({"content": "Hi"}) + chunk({}, "stop")))
    assert events[-2:] == [message_delta("end_turn", {"output_tokens": 1}), MESSAGE_STOP]


def test_an_upstream_error_event_becomes_an_anthropic_error_and_ends_the_stream() -> None:
    stream = ChatToMessagesStream(MODEL, MSG_ID, ESTIMATE)
    error = b'data: {"error": {"message": "upstream broke", "type": "server_error"}}\n\n'
    events = parse(stream.feed(chunk({"content": "Hi"}) + error + chunk({"content": "more"})))
    assert events == [
        message_start(),
        start(0, TEXT),
        delta(0, "text_delta", "Hi"),
        {"type": "error", "error": {"type": "api_error", "message": "upstream broke"}},
    ]
    assert stream.feed(chunk({}, "stop") + DONE) == b""
    assert stream.close() == b""


def test_an_early_end_is_an_error_event() -> None:
    events = parse(translate(chunk({"content": "Hi"}) + tool_chunk(0, "c", "f", '{"a"')))
    assert events[-1] == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The upstream stream ended before the answer was complete.",
        },
    }
    assert "message_stop" not in [e["type"] for e in events]
    assert [e["type"] for e in parse(translate(b""))] == ["error"]


def test_an_unterminated_last_event_is_read_at_close() -> None:
    events = parse(translate(chunk({"content": "Hi"}, "stop") + b"data: [DONE]"))
    assert events[-1] == MESSAGE_STOP


def test_done_without_a_finish_reason_is_a_clean_end() -> None:
    events = parse(translate(chunk({"content": "Hi"}) + DONE))
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_a_tool_name_that_comes_late_holds_the_arguments_until_it_does() -> None:
    raw = (
        tool_chunk(0, "call_x", None, '{"q"')
        + tool_chunk(0, None, "search", ': "a"}')
        + chunk({}, "tool_calls")
        + DONE
    )
    assert parse(translate(raw))[1:4] == [
        start(0, tool("call_x", "search")),
        delta(0, "input_json_delta", '{"q": "a"}'),
        stop(0),
    ]


def test_calls_that_reuse_index_zero_with_new_ids_are_separate_blocks() -> None:
    raw = (
        tool_chunk(0, "call_1", "f", "{}")
        + tool_chunk(0, "call_2", "g", '{"b": 2}')
        + chunk({}, "stop")
        + DONE
    )
    events = parse(translate(raw))
    assert [e["content_block"] for e in events if e["type"] == "content_block_start"] == [
        tool("call_1", "f"),
        tool("call_2", "g"),
    ]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_other_choices_and_unreadable_events_are_ignored() -> None:
    other = chunk({"content": "second choice"})
    other = other.replace(b'"index":0', b'"index":1')
    raw = chunk({"content": "Hi"}) + other + b"data: {not json\n\n" + chunk({}, "stop") + DONE
    texts = [
        e["delta"]["text"] for e in parse(translate(raw)) if e["type"] == "content_block_delta"
    ]
    assert texts == ["Hi"]


FULL_STREAM = (
    REASONING_STREAM.replace(chunk({}, "length") + usage_chunk(3, 8) + DONE, b"")
    + b": keep-alive\r\n\r\n"
    + TOOLS_STREAM.replace(b"Checking both.", "Vérifions 你好.".encode())
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(FULL_STREAM)), max_size=30))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    stream = ChatToMessagesStream(MODEL, MSG_ID, ESTIMATE)
    bounds = [0, *sorted(cuts), len(FULL_STREAM)]
    out = b"".join(stream.feed(FULL_STREAM[a:b]) for a, b in itertools.pairwise(bounds))
    assert out + stream.close() == translate(FULL_STREAM)


def test_the_whole_stream_is_valid() -> None:
    events = parse(translate(FULL_STREAM))
    assert [e["type"] for e in events].count("content_block_start") == 4
    assert events[-1] == MESSAGE_STOP


# --- through the anthropic SDK ---------------------------------------------------------------

Serve = Callable[..., None]  # serve(body, status=200, content_type="text/event-stream")


@pytest.fixture
async def sdk(aiohttp_server: Any) -> AsyncIterator[tuple[anthropic.AsyncAnthropic, Serve]]:
    """An AsyncAnthropic client whose /v1/messages answers with the bytes handed to ``serve``."""
    reply: dict[str, Any] = {}

    async def messages(request: web.Request) -> web.StreamResponse:
        reply["request"] = await request.json()
        response = web.StreamResponse(
            status=reply["status"], headers={"Content-Type": reply["content_type"]}
        )
        await response.prepare(request)
        await response.write(reply["body"])
        await response.write_eof()
        return response

    def serve(body: bytes, status: int = 200, content_type: str = "text/event-stream") -> None:
        reply.update(body=body, status=status, content_type=content_type)

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = anthropic.AsyncAnthropic(
        base_url=str(server.make_url("")), api_key="sk-test", max_retries=0
    )
    async with client:
        yield client, serve


async def final_message(client: anthropic.AsyncAnthropic) -> Message:
    async with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        return await stream.get_final_message()


async def test_sdk_accumulates_text_and_parallel_tool_calls(sdk: Any) -> None:
    client, serve = sdk
    serve(translate(TOOLS_STREAM))
    message = await final_message(client)
    assert (message.id, message.model, message.stop_reason) == (MSG_ID, MODEL, "tool_use")
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "weather", "input": {"city": "Rome"}},
    ]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (50, 30)


async def test_sdk_accumulates_thinking_and_text(sdk: Any) -> None:
    client, serve = sdk
    serve(translate(REASONING_STREAM))
    message = await final_message(client)
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "thinking", "thinking": "Thinking.", "signature": ""},
        {"type": "text", "text": "Answer."},
    ]
    assert message.stop_reason == "max_tokens"


async def test_sdk_keeps_the_estimate_when_no_usage_comes(sdk: Any) -> None:
    client, serve = sdk
    serve(translate(chunk({"content": "abcdefgh"}) + chunk({}, "stop") + DONE, estimate=21))
    message = await final_message(client)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 2)
    assert message.content[0].type == "text" and message.content[0].text == "abcdefgh"


async def test_sdk_raises_on_the_error_event(sdk: Any) -> None:
    client, serve = sdk
    error = b'data: {"error": {"message": "upstream broke"}}\n\n'
    serve(translate(chunk({"content": "Hi"}) + error))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await final_message(client)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream broke"},
    }


async def test_sdk_reads_a_whole_message(sdk: Any) -> None:
    client, serve = sdk
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]
    body = completion(
        {"content": "Sure.", "tool_calls": calls},
        "tool_calls",
        {"prompt_tokens": 9, "completion_tokens": 4},
    )
    serve(chat_to_message(body, MODEL, MSG_ID), content_type="application/json")
    message = await client.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[1].type == "tool_use" and message.content[1].input == {"a": 1}
    assert (message.stop_reason, message.usage.input_tokens) == ("tool_use", 9)


async def test_sdk_maps_error_bodies_to_its_exceptions(sdk: Any) -> None:
    client, serve = sdk
    serve(error_body(429, "Slow down."), status=429, content_type="application/json")
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        )
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Slow down."},
    }
