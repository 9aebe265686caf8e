"""The Anthropic translator: chat requests to Messages API bodies, answers and errors back."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.errors import InvalidRequest, ProviderError
from gateway.translate.anthropic import (
    OUTPUT_TOOL,
    anthropic_to_chat,
    chat_to_anthropic,
    error_to_openai,
)

Json = dict[str, Any]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def translate(messages: list[Json], **fields: Any) -> Json:
    return chat_to_anthropic({"model": "claude", "messages": messages, **fields}, "claude-x", None)


def refused(messages: list[Json], **fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        translate(messages, **fields)
    return caught.value


USER_HI = [{"role": "user", "content": "Hi"}]


# --- request: messages --------------------------------------------------------------------------


def test_a_plain_conversation() -> None:
    body = translate(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ]
    )
    assert body == {
        "model": "claude-x",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ],
        "max_tokens": 4096,
    }


def test_system_and_developer_messages_become_system_in_order() -> None:
    body = translate(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Again"},
        ]
    )
    assert body["system"] == "Be brief.\n\nAnswer in French."
    # With the developer message taken out, the two user messages are adjacent: one turn.
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Again"}],
        }
    ]


def test_system_with_cache_control_stays_as_text_blocks() -> None:
    cache = {"type": "ephemeral"}
    body = translate(
        [
            {"role": "system", "content": "Rules."},
            {
                "role": "system",
                "content": [{"type": "text", "text": "A long manual.", "cache_control": cache}],
            },
            *USER_HI,
        ]
    )
    assert body["system"] == [
        {"type": "text", "text": "Rules."},
        {"type": "text", "text": "A long manual.", "cache_control": cache},
    ]


def test_no_system_field_without_system_text() -> None:
    assert "system" not in translate([{"role": "system", "content": ""}, *USER_HI])


def test_system_messages_may_only_hold_text() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    error = refused([{"role": "system", "content": [image]}, *USER_HI])
    assert error.param == "messages[0].content[0]"


def test_adjacent_turns_of_one_role_are_merged() -> None:
    body = translate(
        [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": "four"},
            {"role": "user", "content": "five"},
        ]
    )
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in body["messages"][0]["content"]] == ["one", "two"]
    assert [b["text"] for b in body["messages"][1]["content"]] == ["three", "four"]


def test_empty_messages_are_left_out() -> None:
    body = translate(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": ""}]},
            {"role": "user", "content": "There?"},
        ]
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "There?"}],
        }
    ]


def test_images_from_data_urls_and_web_urls() -> None:
    body = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_an_image_data_url_that_is_not_base64_is_refused() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/svg+xml,%3Csvg%3E"}}
    error = refused([{"role": "user", "content": [part]}])
    assert error.status == 400
    assert error.param == "messages[0].content[0].image_url.url"


def test_content_parts_without_an_anthropic_block_are_refused() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}
    error = refused([{"role": "user", "content": [{"type": "text", "text": "hi"}, audio]}])
    assert error.param == "messages[0].content[1].type"
    assert error.code == "unsupported_parameter"


def test_the_legacy_function_role_is_refused() -> None:
    error = refused([*USER_HI, {"role": "function", "name": "f", "content": "42"}])
    assert error.param == "messages[1].role"


# --- request: tool calls and results ------------------------------------------------------------


def weather_call(call_id: str, arguments: str) -> Json:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }


def test_tool_calls_become_tool_use_and_results_a_user_turn() -> None:
    body = translate(
        [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    weather_call("call_1", '{"city": "Paris"}'),
                    weather_call("call_2", '{"city": "Rome", "days": 2}'),
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "22C"}, {"type": "text", "text": "sunny"}],
            },
        ],
        tools=[WEATHER_TOOL],
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {
                "type": "tool_use",
                "id": "call_2",
                "name": "get_weather",
                "input": {"city": "Rome", "days": 2},
            },
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {
                "type": "tool_result",
                "tool_use_id": "call_2",
                "content": [{"type": "text", "text": "22C"}, {"type": "text", "text": "sunny"}],
            },
        ],
    }
    assert len(body["messages"]) == 3


def test_assistant_text_comes_before_its_tool_use() -> None:
    body = translate(
        [
            *USER_HI,
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [weather_call("call_1", "")],
            },
        ]
    )
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
    ]


def test_tool_results_open_the_user_turn_they_share_with_a_user_message() -> None:
    body = translate(
        [
            *USER_HI,
            {"role": "assistant", "tool_calls": [weather_call("call_1", '{"city": "Oslo"}')]},
            {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
            {"role": "user", "content": "And tomorrow?"},
        ]
    )
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "-3C"},
            {"type": "text", "text": "And tomorrow?"},
        ],
    }


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", "null"])
def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments: str) -> None:
    error = refused(
        [
            *USER_HI,
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [weather_call("c1", "{}"), weather_call("c2", arguments)],
            },
        ]
    )
    assert error.status == 400
    assert error.param == "messages[3].tool_calls[1].function.arguments"


def test_a_tool_message_needs_its_tool_call_id() -> None:
    error = refused([*USER_HI, {"role": "tool", "content": "18C"}])
    assert error.param == "messages[1].tool_call_id"


def test_reasoning_content_sent_back_is_dropped() -> None:
    body = translate(
        [
            *USER_HI,
            {"role": "assistant", "content": "Hello", "reasoning_content": "They said hi."},
            {"role": "user", "content": "Bye"},
        ]
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello"}],
    }


# --- request: parameters ------------------------------------------------------------------------


def test_tools_become_name_description_and_input_schema() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    body = translate(USER_HI, tools=[WEATHER_TOOL, bare])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            False,
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(tool_choice: object, parallel: bool | None, expected: Json) -> None:
    fields: Json = {"tools": [WEATHER_TOOL]}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    assert translate(USER_HI, **fields)["tool_choice"] == expected


def test_tool_choice_without_tools_is_not_sent() -> None:
    body = translate(USER_HI, tool_choice="none", parallel_tool_calls=False)
    assert "tools" not in body and "tool_choice" not in body


def test_tools_that_are_not_functions_are_refused() -> None:
    error = refused(USER_HI, tools=[WEATHER_TOOL, {"type": "custom", "custom": {"name": "x"}}])
    assert error.param == "tools[1].type"


@pytest.mark.parametrize(
    ("stop", "expected"), [("\n\n", ["\n\n"]), (["END", "STOP"], ["END", "STOP"])]
)
def test_stop_becomes_stop_sequences(stop: object, expected: list[str]) -> None:
    assert translate(USER_HI, stop=stop)["stop_sequences"] == expected


def test_sampling_user_and_stream_are_mapped() -> None:
    body = translate(USER_HI, temperature=0.2, top_p=0.9, user="user-7", stream=True)
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["metadata"] == {"user_id": "user-7"}
    assert body["stream"] is True


@pytest.mark.parametrize(
    ("fields", "default", "expected"),
    [
        ({"max_tokens": 100}, 8192, 100),
        ({"max_completion_tokens": 200}, 8192, 200),
        ({"max_completion_tokens": 200, "max_tokens": 100}, None, 200),
        ({"max_tokens": 64.0}, None, 64),
        ({}, 8192, 8192),
        ({}, None, 4096),
    ],
)
def test_max_tokens(fields: Json, default: int | None, expected: int) -> None:
    payload = {"model": "claude", "messages": USER_HI, **fields}
    body = chat_to_anthropic(payload, "claude-x", default)
    assert body["max_tokens"] == expected
    assert isinstance(body["max_tokens"], int)
    assert "max_completion_tokens" not in body


def test_anthropic_native_fields_pass_and_openai_only_fields_are_dropped() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    body = translate(
        USER_HI,
        thinking=thinking,
        top_k=40,
        stream=True,
        stream_options={"include_usage": True},
        frequency_penalty=0.5,
        presence_penalty=0.1,
        seed=7,
        logit_bias={"50256": -100},
        n=1,
        logprobs=False,
        store=True,
        service_tier="auto",
        session_id="s-1",
    )
    assert body == {
        "model": "claude-x",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": 4096,
        "stream": True,
        "thinking": thinking,
        "top_k": 40,
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"top_logprobs": 3}, "top_logprobs")],
)
def test_what_anthropic_cannot_do_is_refused_naming_the_param(fields: Json, param: str) -> None:
    error = refused(USER_HI, **fields)
    assert (error.status, error.param, error.code) == (400, param, "unsupported_parameter")


def test_the_clients_payload_is_left_untouched() -> None:
    payload = {
        "model": "claude",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": {}}]},
            {"role": "user", "content": "a"},
            {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "r"}]},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
        ],
        "tools": [WEATHER_TOOL],
        "parallel_tool_calls": False,
    }
    before = copy.deepcopy(payload)
    chat_to_anthropic(payload, "claude-x", None)
    assert payload == before


# --- answers ------------------------------------------------------------------------------------


def anthropic_answer(content: list[Json], stop_reason: str = "end_turn", **usage: int) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 6, **usage},
        }
    )


def test_an_answer_with_thinking_text_and_a_tool_call() -> None:
    body = anthropic_answer(
        [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
            {"type": "text", "text": "Let me "},
            {"type": "text", "text": "check."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"city": "Zürich", "days": 2},
            },
        ],
        "tool_use",
        cache_creation_input_tokens=100,
        cache_read_input_tokens=2000,
    )
    chat = orjson.loads(anthropic_to_chat(body, "claude-sonnet", 1_700_000_000))
    call = chat["choices"][0]["message"]["tool_calls"][0]
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Zürich", "days": 2}
    call["function"]["arguments"] = "checked above"
    assert chat == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "claude-sonnet",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check.",
                    "reasoning_content": "The user wants weather.",
                    "tool_calls": [
                        {
                            "id": "toolu_01A09q90qw90lq917835lq9",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "checked above"},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 12 + 100 + 2000,
            "completion_tokens": 6,
            "total_tokens": 2118,
            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 100},
        },
    }


def test_content_is_null_when_there_are_only_tool_calls() -> None:
    tool = {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}
    chat = orjson.loads(anthropic_to_chat(anthropic_answer([tool], "tool_use"), "m", 1))
    message = chat["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {"name": "now", "arguments": "{}"}
    assert "reasoning_content" not in message


def test_content_is_an_empty_string_when_there_is_nothing() -> None:
    chat = orjson.loads(anthropic_to_chat(anthropic_answer([], "end_turn"), "m", 1))
    assert chat["choices"][0]["message"] == {"role": "assistant", "content": ""}


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("a_reason_added_later", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    answer = anthropic_answer([{"type": "text", "text": "x"}], stop_reason)
    chat = orjson.loads(anthropic_to_chat(answer, "m", 1))
    assert chat["choices"][0]["finish_reason"] == finish_reason


def test_usage_without_cache_counts() -> None:
    chat = orjson.loads(anthropic_to_chat(anthropic_answer([]), "m", 1))
    assert chat["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 6,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[]", b'{"type": "message"}'])
def test_an_unreadable_answer_is_a_provider_error(body: bytes) -> None:
    with pytest.raises(ProviderError):
        anthropic_to_chat(body, "m", 1)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (400, "invalid_request_error", "messages: roles must alternate"),
        (401, "authentication_error", "invalid x-api-key"),
        (404, "not_found_error", "model: claude-9"),
        (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit"),
        (529, "overloaded_error", "Overloaded"),
    ],
)
def test_anthropic_errors_keep_their_type_and_message(status: int, kind: str, message: str) -> None:
    body = orjson.dumps(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011"}
    )
    assert orjson.loads(error_to_openai(status, body)) == {
        "error": {"message": message, "type": kind, "param": None, "code": None}
    }


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (502, b"<html>Bad Gateway</html>", "server_error"),
        (400, b'{"error": "flat"}', "invalid_request_error"),
        (503, b"", "server_error"),
    ],
)
def test_unreadable_errors_name_the_status(status: int, body: bytes, kind: str) -> None:
    error = orjson.loads(error_to_openai(status, body))["error"]
    assert str(status) in error["message"]
    assert error["type"] == kind
    assert error["param"] is None and error["code"] is None


def test_an_unknown_role_is_named() -> None:
    error = refused([*USER_HI, {"role": "critic", "content": "Harsher."}])
    assert error.param == "messages[1].role" and "`critic`" in error.message


# --- structured output: a forced tool whose input is the answer ------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}
CLIENT_TOOL = {"type": "function", "function": {"name": "search", "parameters": SCHEMA}}


def test_a_json_schema_becomes_a_forced_output_tool() -> None:
    body = translate(USER_HI, response_format=JSON_SCHEMA)
    assert [t["name"] for t in body["tools"]] == [OUTPUT_TOOL]
    assert body["tools"][0]["input_schema"] == SCHEMA
    assert body["tool_choice"] == {"type": "tool", "name": OUTPUT_TOOL}
    json_object = translate(USER_HI, response_format={"type": "json_object"})
    assert json_object["tools"][0]["input_schema"] == {"type": "object"}
    assert "tools" not in translate(USER_HI, response_format={"type": "text"})


def test_with_the_clients_tools_the_model_must_call_one_of_them_or_answer() -> None:
    body = translate(USER_HI, response_format=JSON_SCHEMA, tools=[CLIENT_TOOL])
    assert [t["name"] for t in body["tools"]] == ["search", OUTPUT_TOOL]
    assert body["tool_choice"] == {"type": "any"}
    named = {"type": "function", "function": {"name": "search"}}
    body = translate(USER_HI, response_format=JSON_SCHEMA, tools=[CLIENT_TOOL], tool_choice=named)
    assert body["tool_choice"] == {"type": "tool", "name": "search"}


def test_with_thinking_the_output_tool_is_asked_for_in_words() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    body = translate([{"role": "system", "content": "Be brief."}, *USER_HI],
                     response_format=JSON_SCHEMA, thinking=thinking)  # fmt: skip
    assert "tool_choice" not in body or body["tool_choice"]["type"] == "auto"
    assert body["system"].startswith("Be brief.\n\n") and OUTPUT_TOOL in body["system"]


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "json_schema", "json_schema": {"schema": {"type": "array"}}},
         "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {"name": "x"}},
         "response_format.json_schema.schema"),
        ({"type": "grammar"}, "response_format.type"),
    ],
)  # fmt: skip
def test_structured_output_anthropic_cannot_honour_is_refused(
    response_format: Json, param: str
) -> None:
    assert refused(USER_HI, response_format=response_format).param == param


def test_the_output_tools_input_is_the_answers_content() -> None:
    blocks = [
        {"type": "tool_use", "id": "toolu_1", "name": OUTPUT_TOOL, "input": {"city": "Paris"}}
    ]
    chat = orjson.loads(
        anthropic_to_chat(anthropic_answer(blocks, "tool_use"), "m", 1, OUTPUT_TOOL)
    )
    [choice] = chat["choices"]
    assert choice["message"]["content"] == '{"city":"Paris"}'
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
