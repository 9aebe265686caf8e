"""The Responses API bridge: requests to chat bodies, chat answers and streams to Response objects
and events, each checked against the official openai SDK's own types and stream helper."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.errors import InvalidRequest
from gateway.sse import SSEParser
from gateway.translate.responses import (
    ChatToResponsesStream,
    ResponseContext,
    chat_to_response,
    responses_to_chat,
    stored_history,
)

EVENT = TypeAdapter(ResponseStreamEvent)
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
CHAT_USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 7,
    "total_tokens": 27,
    "prompt_tokens_details": {"cached_tokens": 8},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


def ctx(**fields: Any) -> ResponseContext:
    return ResponseContext(response_id="resp_abc", model="claude-sonnet", created_at=1700, **fields)


def chat_body(
    content: str | None, tool_calls: list[dict[str, Any]] | None = None, finish: str = "stop"
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700,
            "model": "claude-sonnet",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": CHAT_USAGE,
        }
    )


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "choices": choices}
    return b"data: " + orjson.dumps({**body, **extra}) + b"\n\n"


def chat_stream(*texts: str, calls: tuple[tuple[str, str, list[str]], ...] = ()) -> bytes:
    """A chat stream as the gateway's chat path writes it: role, text, tool calls, finish,
    usage-only chunk, [DONE]."""
    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": t}) for t in texts]
    for index, (call_id, name, fragments) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function"}
        parts.append(chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]}))
        parts += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]})
            for f in fragments
        ]
    parts.append(chunk({}, finish="tool_calls" if calls else "stop"))
    parts.append(chunk(None, usage=CHAT_USAGE))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """Parse Responses SSE bytes; checks each event's `event:` line names its `type`."""
    parser = SSEParser()
    events = parser.feed(raw) + parser.flush()
    parsed = []
    for event in events:
        assert event.data is not None
        payload = orjson.loads(event.data)
        assert event.raw.startswith(b"event: " + payload["type"].encode() + b"\ndata: ")
        parsed.append(payload)
    return parsed


def translate(raw: bytes, context: ResponseContext | None = None) -> list[dict[str, Any]]:
    stream = ChatToResponsesStream(context or ctx())
    events = events_of(stream.feed(raw) + stream.close())
    for event in events:
        EVENT.validate_python(event)  # every event is one the official SDK knows
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def invalid(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        responses_to_chat(body, history or [])
    assert caught.value.status == 400
    return caught.value


# --- requests -----------------------------------------------------------------------------


def test_string_input_and_instructions_become_system_then_user() -> None:
    chat = responses_to_chat(
        {"model": "m", "instructions": "Be brief.", "input": "Hello"},
        [{"role": "user", "content": "Earlier"}, {"role": "assistant", "content": "Reply"}],
    )
    assert chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Earlier"},
            {"role": "assistant", "content": "Reply"},
            {"role": "user", "content": "Hello"},
        ],
    }


def test_message_items_and_their_content_parts() -> None:
    chat = responses_to_chat(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "Rules"},
                {
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": "S"}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AA"},
                    ],
                },
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": "A ", "annotations": []},
                        {"type": "output_text", "text": "cat.", "annotations": []},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
        },
        [],
    )
    assert chat["messages"] == [
        {"role": "developer", "content": "Rules"},
        {"role": "system", "content": "S"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            ],
        },
        {"role": "assistant", "content": "A cat."},
    ]


def test_function_calls_join_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    chat = responses_to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": "Checking."},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"c":"P"}'},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"c":"R"}'},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "rain"}],
                },
            ],
        },
        [],
    )
    assert chat["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [call("c1", "w", '{"c":"P"}'), call("c2", "w", '{"c":"R"}')],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "rain"}]},
    ]


def test_function_call_after_a_user_message_opens_an_assistant_turn() -> None:
    history = [{"role": "assistant", "content": "Hi", "tool_calls": [call("c0", "w", "{}")]}]
    chat = responses_to_chat(
        {
            "model": "m",
            "input": [{"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"}],
        },
        history,
    )
    assert chat["messages"][-1]["tool_calls"] == [call("c0", "w", "{}"), call("c1", "w", "{}")]
    assert history[0]["tool_calls"] == [call("c0", "w", "{}")]  # the caller's copy is untouched
    chat = responses_to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "q"},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            ],
        },
        [],
    )
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [call("c1", "w", "{}")],
    }


def test_settings_tools_tool_choice_and_stream() -> None:
    chat = responses_to_chat(
        {
            "model": "m",
            "input": "hi",
            "tools": [WEATHER_TOOL, {"type": "function", "name": "noop"}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "max_output_tokens": 300,
            "temperature": 0.2,
            "top_p": 1,
            "parallel_tool_calls": False,
            "user": "u-1",
            "stream": True,
            # Dropped: settings a chat provider has no use for, or the gateway handles itself.
            "store": False,
            "metadata": {"k": "v"},
            "previous_response_id": "resp_0",
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "low"},
            "truncation": "auto",
            "background": False,
            "stream_options": {"include_obfuscation": False},
        },
        [],
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": WEATHER_TOOL["parameters"],
                    "strict": True,
                },
            },
            {"type": "function", "function": {"name": "noop"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 300,
        "temperature": 0.2,
        "top_p": 1,
        "parallel_tool_calls": False,
        "user": "u-1",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    for choice in ("auto", "none", "required"):
        assert (
            responses_to_chat({"model": "m", "input": "x", "tool_choice": choice}, [])[
                "tool_choice"
            ]
            == choice
        )
    assert "stream" not in responses_to_chat({"model": "m", "input": "x", "stream": False}, [])


def test_text_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    chat = responses_to_chat({"model": "m", "input": "x", "text": {"format": fmt}}, [])
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }
    chat = responses_to_chat(
        {"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}, []
    )
    assert chat["response_format"] == {"type": "json_object"}
    chat = responses_to_chat({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}, [])
    assert "response_format" not in chat


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": 3, "input": "x"}, "model", "invalid_type"),
        ({"model": "m"}, "input", "missing_required_parameter"),
        ({"model": "m", "input": 5}, "input", "invalid_type"),
        ({"model": "m", "input": ["hi"]}, "input[0]", "invalid_type"),
        (
            {"model": "m", "input": [{"role": "bot", "content": "x"}]},
            "input[0].role",
            "invalid_value",
        ),
        (
            {"model": "m", "input": [{"role": "user"}]},
            "input[0].content",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]},
            "input[0].type",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
            "unsupported_parameter",
        ),
        (
            {
                "model": "m",
                "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}],
            },
            "input[0].content[0].image_url",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "missing_required_parameter",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "type": "function_call",
                        "call_id": "c",
                        "name": "f",
                        "namespace": {},
                        "arguments": "{}",
                    }
                ],
            },
            "input[0].namespace",
            "invalid_type",
        ),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]},
            "input[0].output",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": "x", "tools": [WEATHER_TOOL, {"type": "custom", "name": "p"}]},
            "tools[1].type",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": "x", "tools": [{"type": "function"}]},
            "tools[0].name",
            "missing_required_parameter",
        ),
        ({"model": "m", "input": "x", "tool_choice": "any"}, "tool_choice", "invalid_value"),
        (
            {"model": "m", "input": "x", "tool_choice": {"type": "web_search"}},
            "tool_choice",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": "x", "max_output_tokens": "9"},
            "max_output_tokens",
            "invalid_type",
        ),
        ({"model": "m", "input": "x", "temperature": True}, "temperature", "invalid_type"),
        ({"model": "m", "input": "x", "instructions": ["x"]}, "instructions", "invalid_type"),
        ({"model": "m", "input": "x", "background": True}, "background", "unsupported_parameter"),
        ({"model": "m", "input": "x", "prompt": {"id": "p"}}, "prompt", "unsupported_parameter"),
        (
            {"model": "m", "input": "x", "conversation": "c"},
            "conversation",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
            "text.format.schema",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "xml"}}},
            "text.format.type",
            "invalid_value",
        ),
    ],
)
def test_invalid_requests_name_the_param(body: dict[str, Any], param: str, code: str) -> None:
    error = invalid(body)
    assert (error.param, error.code) == (param, code)


def test_instructions_alone_are_not_a_conversation() -> None:
    assert invalid({"model": "m", "instructions": "x", "input": []}).param == "input"


# --- non-stream answers ---------------------------------------------------------------------


def test_text_answer_is_a_completed_response() -> None:
    body = {
        "model": "m",
        "input": "hi",
        "instructions": "Be brief.",
        "temperature": 0.5,
        "metadata": {"k": "v"},
        "store": False,
        "max_output_tokens": 50,
    }
    context = ResponseContext.from_request(body, response_id="resp_abc", model="pub", created_at=9)
    response = chat_to_response(chat_body("Hello there"), context)
    assert "output_text" not in response  # the SDK computes it; it is no wire field
    assert response["output"] == [
        {
            "id": "msg_abc_0",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello there", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert response["usage"] == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 27,
    }
    sdk = Response.model_validate(response)
    assert sdk.output_text == "Hello there"
    assert (sdk.id, sdk.object, sdk.created_at, sdk.status, sdk.model) == (
        "resp_abc",
        "response",
        9,
        "completed",
        "pub",
    )
    assert (sdk.error, sdk.incomplete_details) == (None, None)
    assert (sdk.instructions, sdk.temperature, sdk.max_output_tokens) == ("Be brief.", 0.5, 50)
    assert (sdk.store, sdk.metadata, sdk.tool_choice, sdk.parallel_tool_calls) == (
        False,
        {"k": "v"},
        "auto",
        True,
    )
    assert chat_to_response(chat_body("Hello there"), context) == response  # no clock, no dice


def test_tool_call_answer_gives_function_call_items() -> None:
    body = {"model": "m", "input": "hi", "tools": [WEATHER_TOOL], "tool_choice": "required"}
    context = ResponseContext.from_request(body, response_id="resp_abc", model="m", created_at=1)
    answer = chat_body(
        "Let me check.",
        [call("toolu_1", "get_weather", '{"city":"Paris"}'), call("toolu_2", "get_weather", "{}")],
        finish="tool_calls",
    )
    response = chat_to_response(answer, context)
    assert response["output"][1:] == [
        {
            "id": "fc_abc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "toolu_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "id": "fc_abc_2",
            "type": "function_call",
            "status": "completed",
            "call_id": "toolu_2",
            "name": "get_weather",
            "arguments": "{}",
        },
    ]
    sdk = Response.model_validate(response)
    assert sdk.output_text == "Let me check."
    assert [t.name for t in sdk.tools] == ["get_weather"]
    assert sdk.tool_choice == "required"
    tool_only = chat_to_response(
        chat_body(None, [call("", "get_weather", "{}")], "tool_calls"), ctx()
    )
    assert [item["type"] for item in tool_only["output"]] == ["function_call"]
    assert tool_only["output"][0]["call_id"] == "call_abc_0"  # made up, from the response id


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_answer_is_incomplete(finish: str, reason: str) -> None:
    response = chat_to_response(chat_body("Once upon", finish=finish), ctx())
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": reason}
    assert response["output"][0]["status"] == "incomplete"
    assert Response.model_validate(response).output_text == "Once upon"


# --- streams -------------------------------------------------------------------------------


def test_text_stream_events_in_documented_order() -> None:
    events = translate(chat_stream("Hel", "lo"))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []
    assert events[2]["item"] == {
        "id": "msg_abc_0",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    assert events[4] == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        "item_id": "msg_abc_0",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hel",
        "logprobs": [],
    }
    assert events[6]["text"] == "Hello"
    assert events[7]["part"]["text"] == "Hello"
    assert events[8]["item"]["status"] == "completed"
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["usage"]["input_tokens"] == 20
    assert final["usage"]["output_tokens"] == 7
    # The stream's final Response is the one a non-stream request would have given.
    assert final == chat_to_response(chat_body("Hello"), ctx())


def test_tool_call_stream() -> None:
    stream = ChatToResponsesStream(ctx())
    raw = chat_stream(
        "Checking.",
        calls=(("call_1", "get_weather", ['{"ci', 'ty":"Paris"}']), ("call_2", "noop", [])),
    )
    events = events_of(stream.feed(raw) + stream.close())
    for event in events:
        EVENT.validate_python(event)
    assert [e["type"] for e in events[8:]] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[8]["item"] == {
        "id": "fc_abc_1",
        "type": "function_call",
        "status": "in_progress",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": "",
    }
    assert [e["delta"] for e in events[9:11]] == ['{"ci', 'ty":"Paris"}']
    assert events[11]["arguments"] == '{"city":"Paris"}'
    assert events[12]["item"]["arguments"] == '{"city":"Paris"}'
    assert events[14]["arguments"] == ""
    final = stream.final_response()
    assert final == events[-1]["response"]
    answer = chat_body(
        "Checking.",
        [call("call_1", "get_weather", '{"city":"Paris"}'), call("call_2", "noop", "")],
        "tool_calls",
    )
    assert final == chat_to_response(answer, ctx())


def test_text_after_a_tool_call_finishes_the_call_first() -> None:
    head = {"index": 0, "id": "call_1", "type": "function"}
    raw = (
        chunk({"tool_calls": [{**head, "function": {"name": "f", "arguments": "{}"}}]})
        + chunk({"content": "Done."})
        + chunk({}, finish="stop")
        + chunk({"content": "ignored: after the finish"})
        + b"data: [DONE]\n\n"
    )
    events = translate(raw)
    assert [(e["type"], e.get("output_index")) for e in events[2:]] == [
        ("response.output_item.added", 0),
        ("response.function_call_arguments.delta", 0),
        ("response.function_call_arguments.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.content_part.added", 1),
        ("response.output_text.delta", 1),
        ("response.output_text.done", 1),
        ("response.content_part.done", 1),
        ("response.output_item.done", 1),
        ("response.completed", None),
    ]
    assert Response.model_validate(events[-1]["response"]).output_text == "Done."


def test_length_finish_gives_response_incomplete() -> None:
    raw = chunk({"content": "Once"}) + chunk({}, finish="length") + b"data: [DONE]\n\n"
    events = translate(raw)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-1]["response"]["usage"] is None  # no usage-only chunk came
    assert events[-2]["item"]["status"] == "incomplete"


def test_error_event_fails_the_response_and_ends_it() -> None:
    stream = ChatToResponsesStream(ctx())
    error = {"error": {"message": "overloaded", "type": "server_error", "code": "stream_error"}}
    out = stream.feed(chunk({"content": "Hal"}) + b"data: " + orjson.dumps(error) + b"\n\n")
    assert stream.feed(chunk({"content": "more"}) + b"data: [DONE]\n\n") == b""
    assert stream.close() == b""
    events = events_of(out)
    for event in events:
        EVENT.validate_python(event)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "overloaded"}
    assert failed["output"][0]["content"][0]["text"] == "Hal"
    assert failed["output"][0]["status"] == "incomplete"
    assert stream.final_response() is None


def test_stream_cut_before_a_finish_fails() -> None:
    stream = ChatToResponsesStream(ctx())
    out = stream.feed(chunk({"content": "Hal"}) + b'data: {"choi')
    out += stream.close()
    events = events_of(out)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"
    assert stream.final_response() is None
    assert events_of(ChatToResponsesStream(ctx()).close())[-1]["type"] == "response.failed"
    done_too_soon = translate(chunk({"content": "Hal"}) + b"data: [DONE]\n\n")
    assert done_too_soon[-1]["type"] == "response.failed"


def test_keepalives_and_reasoning_produce_nothing() -> None:
    raw = b": ping\n\n" + chunk({"reasoning_content": "hmm"}) + chat_stream("ok")
    assert [e["type"] for e in translate(raw)] == [e["type"] for e in translate(chat_stream("ok"))]


STREAM = chat_stream(
    "Bonjour ", "à ", "tous", calls=(("call_9", "get_weather", ['{"city"', ':"Nice"}']),)
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_of_the_input_gives_the_same_events(cuts: list[int]) -> None:
    whole = ChatToResponsesStream(ctx())
    expected = whole.feed(STREAM) + whole.close()
    stream = ChatToResponsesStream(ctx())
    points = [0, *sorted(cuts), len(STREAM)]
    out = b"".join(stream.feed(STREAM[a:b]) for a, b in itertools.pairwise(points))
    assert out + stream.close() == expected
    assert stream.final_response() == whole.final_response()


# --- multi-turn -----------------------------------------------------------------------------


def test_two_turns_with_a_function_tool_through_previous_response_id() -> None:
    turn1 = {
        "model": "m",
        "instructions": "You are a weather bot.",
        "input": "Weather in Paris?",
        "tools": [WEATHER_TOOL],
    }
    chat1 = responses_to_chat(turn1, [])
    context1 = ResponseContext.from_request(turn1, response_id="resp_1", model="m", created_at=1)
    answer1 = chat_body(None, [call("call_p", "get_weather", '{"city":"Paris"}')], "tool_calls")
    response1 = chat_to_response(answer1, context1)
    sdk1 = Response.model_validate(response1)
    assert sdk1.output_text == ""
    fc = sdk1.output[0]
    assert fc.type == "function_call"
    assert (fc.call_id, fc.name, fc.arguments) == ("call_p", "get_weather", '{"city":"Paris"}')

    history = stored_history(chat1["messages"], response1)
    assert history == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call("call_p", "get_weather", '{"city":"Paris"}')],
        },
    ]
    turn2 = {
        "model": "m",
        "instructions": "You are a weather bot.",
        "previous_response_id": "resp_1",
        "input": [{"type": "function_call_output", "call_id": "call_p", "output": '{"temp":21}'}],
        "tools": [WEATHER_TOOL],
    }
    chat2 = responses_to_chat(turn2, history)
    assert chat2["messages"] == [
        {"role": "system", "content": "You are a weather bot."},
        *history,
        {"role": "tool", "tool_call_id": "call_p", "content": '{"temp":21}'},
    ]
    context2 = ResponseContext.from_request(turn2, response_id="resp_2", model="m", created_at=2)
    response2 = Response.model_validate(chat_to_response(chat_body("21 °C in Paris."), context2))
    assert response2.output_text == "21 °C in Paris."
    assert response2.previous_response_id == "resp_1"


def test_output_items_sent_back_as_input_replay_the_turn() -> None:
    """The SDK idiom `input += response.output`: output items are valid input items."""
    answer = chat_body("Checking.", [call("call_p", "get_weather", "{}")], "tool_calls")
    response = chat_to_response(answer, ctx())
    chat = responses_to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "Weather?"},
                *response["output"],
                {"type": "function_call_output", "call_id": "call_p", "output": "sunny"},
            ],
        },
        [],
    )
    assert chat["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [call("call_p", "get_weather", "{}")],
        },
        {"role": "tool", "tool_call_id": "call_p", "content": "sunny"},
    ]


def test_stored_history_keeps_input_system_messages_and_skips_empty_answers() -> None:
    messages = [{"role": "system", "content": "from input"}, {"role": "user", "content": "q"}]
    response = chat_to_response(chat_body(None, finish="length"), ctx(instructions="other"))
    assert stored_history(messages, response) == messages


# --- the official SDK against translated bytes -----------------------------------------------


class Bridge:
    """A fake gateway on 127.0.0.1: it translates each SDK request with responses_to_chat and
    answers with a canned chat answer run through the bridge, written in small uneven pieces."""

    def __init__(self) -> None:
        self.answer = b""
        self.chat: dict[str, Any] = {}  # the last request, as the chat path would get it
        self.port = 0
        self._clients: list[openai.AsyncOpenAI] = []

    def client(self, answer: bytes) -> openai.AsyncOpenAI:
        """An SDK client of the fake gateway, which will answer ``answer`` (chat bytes)."""
        self.answer = answer
        made = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{self.port}/v1", api_key="k", max_retries=0, timeout=10
        )
        self._clients.append(made)
        return made

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.chat = responses_to_chat(body, [])
        context = ResponseContext.from_request(
            body, response_id="resp_sdk", model=body["model"], created_at=1700
        )
        if not self.chat.get("stream"):
            return web.json_response(chat_to_response(self.answer, context))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        stream = ChatToResponsesStream(context)
        for at in range(0, len(self.answer), 7):
            await response.write(stream.feed(self.answer[at : at + 7]))
        await response.write(stream.close())
        await response.write_eof()
        return response

    async def close(self) -> None:
        for made in self._clients:
            await made.close()


@pytest.fixture
async def bridge() -> AsyncIterator[Bridge]:
    fake = Bridge()
    app = web.Application()
    app.router.add_post("/v1/responses", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.port = runner.addresses[0][1]
    yield fake
    await fake.close()
    await runner.cleanup()


async def test_sdk_iterates_a_translated_stream(bridge: Bridge) -> None:
    client = bridge.client(
        chat_stream("Hello", " world", calls=(("call_1", "get_weather", ['{"city":"Rome"}']),))
    )
    stream = await client.responses.create(
        model="claude-sonnet",
        input="Hi",
        tools=[WEATHER_TOOL],
        stream=True,
    )
    seen = [event async for event in stream]
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert seen[0].type == "response.created"
    assert "".join(e.delta for e in seen if e.type == "response.output_text.delta") == "Hello world"
    last = seen[-1]
    assert last.type == "response.completed"
    assert last.response.output_text == "Hello world"
    assert last.response.usage is not None and last.response.usage.total_tokens == 27
    assert bridge.chat["stream_options"] == {"include_usage": True}
    assert bridge.chat["tools"][0]["function"]["name"] == "get_weather"


async def test_sdk_stream_helper_builds_the_final_response(
    bridge: Bridge,
) -> None:
    client = bridge.client(
        chat_stream("Bon", "jour", calls=(("call_1", "get_weather", ['{"city"', ':"Rome"}']),))
    )
    async with client.responses.stream(
        model="claude-sonnet",
        input="Hi",
        tools=[WEATHER_TOOL],
        instructions="Be kind.",
    ) as stream:
        snapshots = [
            event.snapshot async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert snapshots == ["Bon", "Bonjour"]
    assert final.output_text == "Bonjour"
    assert final.status == "completed"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_1", "get_weather", '{"city":"Rome"}')
    ]
    assert final.instructions == "Be kind."


async def test_sdk_reads_a_translated_response(bridge: Bridge) -> None:
    client = bridge.client(chat_body("Plain answer"))
    response = await client.responses.create(
        model="claude-sonnet",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        max_output_tokens=64,
    )
    assert response.output_text == "Plain answer"
    assert response.max_output_tokens == 64
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 7)
    assert bridge.chat["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    ]
    assert bridge.chat["max_tokens"] == 64
