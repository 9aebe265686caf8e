"""The Gemini translator: OpenAI requests as Gemini bodies, Gemini answers, streams, errors and
embeddings as OpenAI's, field by field; stream output independent of how the bytes are split."""

from __future__ import annotations

import base64
import itertools
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidRequest, ProviderError
from gateway.translate.gemini import (
    GeminiStream,
    chat_to_gemini,
    embeddings_to_gemini,
    error_to_openai,
    gemini_embeddings_to_openai,
    gemini_to_chat,
)

CHUNK_ID = "chatcmpl-0123456789abcdef"
CALL = "call_456789abcdef"  # "call_" + the last 12 characters of CHUNK_ID
MODEL = "gemini-flash"


def request(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return chat_to_gemini({"model": MODEL, "messages": messages, **fields}, None)


def refusal(payload: dict[str, Any], default_max_tokens: int | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        chat_to_gemini(payload, default_max_tokens)
    return caught.value


def answer(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(gemini_to_chat(orjson.dumps(body), MODEL, CHUNK_ID, 1700))
    return out


def candidate(parts: list[Any], finish: str | None = "STOP", **more: Any) -> Any:
    c: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, **more}
    if finish is not None:
        c["finishReason"] = finish
    return c


def sse(*events: dict[str, Any], end: bytes = b"\r\n\r\n") -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + end for e in events)


def decode(out: bytes) -> list[Any]:
    """The OpenAI events of a translated stream: JSON objects, and "[DONE]"."""
    assert out == b"" or out.endswith(b"\n\n")
    events = []
    for block in out.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ") and b"\n" not in block
        data = block[len(b"data: ") :]
        events.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return events


def run_stream(raw: bytes, n: int = 1) -> list[Any]:
    stream = GeminiStream(MODEL, CHUNK_ID, 1700, n)
    return decode(stream.feed(raw) + stream.close())


def chunk(choices: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    head = {"id": CHUNK_ID, "object": "chat.completion.chunk", "created": 1700, "model": MODEL}
    return {**head, "choices": choices, **more}


def delta(d: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return chunk([{"index": index, "delta": d, "finish_reason": None}])


def finish(reason: str, index: int = 0) -> dict[str, Any]:
    return chunk([{"index": index, "delta": {}, "finish_reason": reason}])


ROLE = delta({"role": "assistant", "content": ""})


# --- requests ----------------------------------------------------------------------------------


def test_system_and_developer_messages_become_the_system_instruction_in_order() -> None:
    body = request(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        ]
    )
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
    }


def test_roles_become_user_and_model_and_adjacent_turns_of_one_role_merge() -> None:
    body = request(
        [
            {"role": "user", "content": "One"},
            {"role": "user", "content": [{"type": "text", "text": "Two"}]},
            {"role": "assistant", "content": "Three"},
            {"role": "assistant", "content": ""},  # empty: no part, no turn
            {"role": "user", "content": "Four"},
        ]
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "One"}, {"text": "Two"}]},
        {"role": "model", "parts": [{"text": "Three"}]},
        {"role": "user", "parts": [{"text": "Four"}]},
    ]


def test_images_become_inline_data_or_file_data() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {
            "type": "image_url",
            "image_url": {"url": "https://x.test/cat.JPG?size=2", "detail": "low"},
        },
        {"type": "image_url", "image_url": {"url": "https://x.test/render"}},
    ]
    parts = request([{"role": "user", "content": content}])["contents"][0]["parts"]
    assert parts == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.JPG?size=2"}},
        {"fileData": {"fileUri": "https://x.test/render"}},
    ]


@pytest.mark.parametrize("url", ["ftp://x.test/a.png", "data:image/png,notbase64", "file:///a.png"])
def test_an_image_url_gemini_cannot_read_is_refused_naming_it(url: str) -> None:
    image = {"type": "image_url", "image_url": {"url": url}}
    error = refusal({"messages": [{"role": "user", "content": [image]}]})
    assert error.param == "messages[0].content[0].image_url.url"


def tool_turns() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    "extra_content": {"google": {"thought_signature": "sig-A"}},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "forecast", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": 21}'},
        {"role": "user", "content": "Thanks"},
    ]


def test_tool_calls_become_function_calls_and_results_function_responses_named_by_call() -> None:
    contents = request(tool_turns())["contents"]
    assert contents == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "sig-A",
                },
                {"functionCall": {"name": "forecast", "args": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "forecast", "response": {"content": "sunny"}}},
                {"functionResponse": {"name": "weather", "response": {"temp_c": 21}}},
                {"text": "Thanks"},
            ],
        },
    ]


def test_a_tool_result_for_no_earlier_tool_call_is_refused() -> None:
    messages = [*tool_turns()[:2], {"role": "tool", "tool_call_id": "call_zzz", "content": "x"}]
    error = refusal({"messages": messages})
    assert error.param == "messages[2].tool_call_id"
    assert error.status == 400


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
def test_tool_arguments_that_are_not_a_json_object_are_refused_naming_the_param(
    arguments: str,
) -> None:
    messages = tool_turns()[:2]
    messages[1]["tool_calls"][1]["function"]["arguments"] = arguments
    error = refusal({"messages": messages})
    assert error.param == "messages[1].tool_calls[1].function.arguments"


def test_generation_config_maps_each_sampling_field() -> None:
    body = request(
        [{"role": "user", "content": "Hi"}],
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        max_completion_tokens=70,
        stop=["END", "STOP"],
        n=2,
        response_format={"type": "json_object"},
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "maxOutputTokens": 70,
        "stopSequences": ["END", "STOP"],
        "responseMimeType": "application/json",
    }


def test_max_tokens_then_the_default_and_a_single_stop_string() -> None:
    hi = [{"role": "user", "content": "Hi"}]
    assert request(hi, max_tokens=50, stop="END")["generationConfig"] == {
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
    }
    body = chat_to_gemini({"messages": hi}, 8192)
    assert body["generationConfig"] == {"maxOutputTokens": 8192}
    assert "generationConfig" not in chat_to_gemini({"messages": hi}, None)


def test_a_json_schema_response_format_sends_the_schema_as_json_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": ["string", "null"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}
    body = request([{"role": "user", "content": "Hi"}], response_format=fmt)
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["weather"]},
        ),
    ],
)
def test_tools_and_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    body = request([{"role": "user", "content": "Hi"}], tools=[WEATHER, bare], tool_choice=choice)
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Current weather",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],  # type: ignore[index]
                },
                {"name": "now"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_openai_only_fields_are_dropped() -> None:
    body = request(
        [{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
        user="u1",
        seed=3,
        logprobs=True,
        parallel_tool_calls=False,
        metadata={"a": "b"},
        store=True,
    )
    assert body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


# --- answers -----------------------------------------------------------------------------------


USAGE = {
    "promptTokenCount": 12,
    "candidatesTokenCount": 5,
    "thoughtsTokenCount": 7,
    "cachedContentTokenCount": 4,
    "totalTokenCount": 24,
}
OPENAI_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 12,
    "total_tokens": 24,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 7},
}


def test_a_text_answer_with_thoughts_and_usage() -> None:
    parts = [{"text": "Let me think.", "thought": True}, {"text": "Hello"}, {"text": " there"}]
    body = {"candidates": [candidate(parts, index=0)], "usageMetadata": USAGE, "modelVersion": "x"}
    assert answer(body) == {
        "id": CHUNK_ID,
        "object": "chat.completion",
        "created": 1700,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello there",
                    "reasoning_content": "Let me think.",
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": OPENAI_USAGE,
    }


def test_function_calls_become_tool_calls_with_made_up_ids_and_thought_signatures() -> None:
    parts = [
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "S1"},
        {"functionCall": {"name": "forecast", "args": {}}},
    ]
    choice = answer({"candidates": [candidate(parts)]})["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"{CALL}_0",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                "extra_content": {"google": {"thought_signature": "S1"}},
            },
            {
                "id": f"{CALL}_1",
                "type": "function",
                "function": {"name": "forecast", "arguments": "{}"},
            },
        ],
    }


def test_the_thought_signature_round_trips_to_the_next_request() -> None:
    parts = [
        {"text": "Checking."},
        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}, "thoughtSignature": "Zz9="},
    ]
    message = answer({"candidates": [candidate(parts)]})["choices"][0]["message"]
    call_id = message["tool_calls"][0]["id"]
    follow_up = [
        {"role": "user", "content": "Weather in Oslo?"},
        message,  # the client sends the assistant message back as it received it
        {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": -3}'},
    ]
    contents = request(follow_up)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {
                "functionCall": {"name": "weather", "args": {"city": "Oslo"}},
                "thoughtSignature": "Zz9=",
            },
        ],
    }
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"temp_c": -3}}}
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    assert (
        answer({"candidates": [candidate([{"text": "x"}], reason)]})["choices"][0]["finish_reason"]
        == expected
    )


def test_one_choice_per_candidate_with_the_candidate_index() -> None:
    # Gemini's JSON leaves out a zero index; the list may come in any order.
    body = {
        "candidates": [
            candidate([{"text": "second"}], "MAX_TOKENS", index=1),
            candidate([{"text": "first"}]),
        ]
    }
    choices = answer(body)["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "first", "stop"),
        (1, "second", "length"),
    ]


def test_a_blocked_prompt_is_an_empty_content_filtered_answer() -> None:
    body = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
    }
    out = answer(body)
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": ""},
            "finish_reason": "content_filter",
            "logprobs": None,
        }
    ]
    assert out["usage"]["prompt_tokens"] == 8
    assert out["usage"]["completion_tokens"] == 0


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1]"])
def test_an_unreadable_answer_is_a_provider_error(body: bytes) -> None:
    with pytest.raises(ProviderError):
        gemini_to_chat(body, MODEL, CHUNK_ID, 1)


# --- errors ------------------------------------------------------------------------------------


GOOGLE_429 = {"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}}


@pytest.mark.parametrize("wrap", [False, True], ids=["object", "list"])
def test_google_errors_become_openai_errors(wrap: bool) -> None:
    body = orjson.dumps([GOOGLE_429] if wrap else GOOGLE_429)
    assert orjson.loads(error_to_openai(429, body)) == {
        "error": {
            "message": "Quota exceeded.",
            "type": "invalid_request_error",
            "param": None,
            "code": "RESOURCE_EXHAUSTED",
        }
    }


def test_a_5xx_is_a_server_error_and_a_body_without_google_shape_keeps_its_text() -> None:
    unavailable = {"error": {"code": 503, "message": "Overloaded.", "status": "UNAVAILABLE"}}
    error = orjson.loads(error_to_openai(503, orjson.dumps(unavailable)))["error"]
    assert (error["type"], error["code"], error["message"]) == (
        "server_error",
        "UNAVAILABLE",
        "Overloaded.",
    )
    error = orjson.loads(error_to_openai(502, b"Bad gateway"))["error"]
    assert (error["type"], error["message"], error["code"]) == ("server_error", "Bad gateway", None)
    error = orjson.loads(error_to_openai(400, b""))["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["type"] == "invalid_request_error"


# --- streams -----------------------------------------------------------------------------------


def event(parts: list[Any], finish: str | None = None, **more: Any) -> dict[str, Any]:
    return {"candidates": [candidate(parts, finish, index=0)], "modelVersion": "m", **more}


def test_a_text_stream() -> None:
    raw = sse(
        event([{"text": "Hel"}], usageMetadata={"promptTokenCount": 5, "candidatesTokenCount": 1}),
        event(
            [{"text": "lo"}],
            "STOP",
            usageMetadata={"promptTokenCount": 5, "candidatesTokenCount": 2},
        ),
    )
    assert run_stream(raw) == [
        ROLE,
        delta({"content": "Hel"}),
        delta({"content": "lo"}),
        finish("stop"),
        chunk(
            [],
            usage={
                "prompt_tokens": 5,
                "completion_tokens": 2,
                "total_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        ),
        "[DONE]",
    ]


def test_a_stream_with_thoughts_and_function_calls_carrying_signatures() -> None:
    raw = sse(
        event([{"text": "Plan.", "thought": True}], usageMetadata={"promptTokenCount": 12}),
        event([{"text": "Calling."}]),
        event(
            [
                {
                    "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "S1",
                },
                {"functionCall": {"name": "forecast", "args": {"days": 2}}},
            ],
            "STOP",
            usageMetadata=USAGE,
        ),
    )
    assert run_stream(raw) == [
        ROLE,
        delta({"reasoning_content": "Plan."}),
        delta({"content": "Calling."}),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": f"{CALL}_0",
                        "type": "function",
                        "function": {"name": "weather", "arguments": ""},
                        "extra_content": {"google": {"thought_signature": "S1"}},
                    }
                ]
            }
        ),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]}),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": f"{CALL}_1",
                        "type": "function",
                        "function": {"name": "forecast", "arguments": ""},
                    }
                ]
            }
        ),
        delta({"tool_calls": [{"index": 1, "function": {"arguments": '{"days":2}'}}]}),
        finish("tool_calls"),
        chunk([], usage=OPENAI_USAGE),
        "[DONE]",
    ]


def test_stream_and_answer_give_a_tool_call_the_same_id() -> None:
    parts = [{"functionCall": {"name": "f", "args": {}}}]
    streamed = run_stream(sse(event(parts, "STOP")))[1]["choices"][0]["delta"]["tool_calls"][0]
    whole = answer({"candidates": [candidate(parts)]})["choices"][0]["message"]["tool_calls"][0]
    assert streamed["id"] == whole["id"]


def stream_error(out: list[Any]) -> dict[str, Any]:
    assert out[-1]["error"]["code"] == "stream_error"
    assert out[-1]["error"]["type"] == "server_error"
    assert out[-1]["error"]["param"] is None
    error: dict[str, Any] = out[-1]["error"]
    return error


def test_a_stream_that_ends_without_a_finish_reason_ends_with_one_stream_error() -> None:
    out = run_stream(sse(event([{"text": "Hel"}])))
    assert out[:2] == [ROLE, delta({"content": "Hel"})]
    assert len(out) == 3
    assert "ended" in stream_error(out)["message"]


def test_an_error_inside_the_stream_is_one_stream_error_and_nothing_after() -> None:
    stream = GeminiStream(MODEL, CHUNK_ID, 1700)
    first = sse(
        event([{"text": "Hel"}]),
        {"error": {"code": 500, "message": "Internal error.", "status": "INTERNAL"}},
    )
    out = decode(stream.feed(first))
    assert out[:2] == [ROLE, delta({"content": "Hel"})]
    assert stream_error(out)["message"] == "Internal error."
    assert len(out) == 3
    assert stream.feed(sse(event([{"text": "lo"}], "STOP"))) == b""
    assert stream.close() == b""


def test_a_broken_event_is_a_stream_error() -> None:
    out = run_stream(sse(event([{"text": "Hi"}])) + b"data: {broken\r\n\r\n")
    assert len(out) == 3
    assert "not JSON" in stream_error(out)["message"]


def test_a_blocked_prompt_streams_an_empty_content_filtered_answer() -> None:
    raw = sse(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    )
    out = run_stream(raw)
    assert out[:2] == [ROLE, finish("content_filter")]
    assert out[2]["usage"]["prompt_tokens"] == 3
    assert out[3] == "[DONE]"


def test_comments_and_blank_events_produce_nothing_and_lf_endings_work() -> None:
    raw = b": keep-alive\n\n\n" + sse(event([{"text": "ok"}], "STOP"), end=b"\n\n")
    assert run_stream(raw) == [ROLE, delta({"content": "ok"}), finish("stop"), "[DONE]"]


def test_only_candidate_zero_is_streamed_unless_n_asks_for_more() -> None:
    both = {
        "candidates": [
            candidate([{"text": "A"}], "STOP", index=0),
            candidate([{"text": "B"}], "MAX_TOKENS", index=1),
        ]
    }
    assert run_stream(sse(both)) == [ROLE, delta({"content": "A"}), finish("stop"), "[DONE]"]
    assert run_stream(sse(both), n=2) == [
        ROLE,
        delta({"content": "A"}),
        finish("stop"),
        delta({"role": "assistant", "content": ""}, index=1),
        delta({"content": "B"}, index=1),
        finish("length", index=1),
        "[DONE]",
    ]


# Text with multi-byte UTF-8 and CRLF endings: splits may land inside either.
PROPERTY_STREAM = (
    sse(
        event([{"text": "Bonjour, 你好 ", "thought": True}], usageMetadata={"promptTokenCount": 4}),
        event([{"text": "naïve 🙂 café"}]),
        event([{"functionCall": {"name": "f", "args": {"q": "ü"}}, "thoughtSignature": "sig/+="}]),
        event([{"text": ""}], "STOP", usageMetadata=USAGE),
    )
    + b": bye\r\n\r\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(PROPERTY_STREAM)), max_size=40))
def test_any_split_of_the_bytes_gives_the_same_events(cuts: list[int]) -> None:
    whole = GeminiStream(MODEL, CHUNK_ID, 1700)
    expected = whole.feed(PROPERTY_STREAM) + whole.close()
    split = GeminiStream(MODEL, CHUNK_ID, 1700)
    bounds = [0, *sorted(cuts), len(PROPERTY_STREAM)]
    out = b"".join(split.feed(PROPERTY_STREAM[a:b]) for a, b in itertools.pairwise(bounds))
    assert out + split.close() == expected
    assert decode(expected)[-1] == "[DONE]"


def test_every_single_byte_split_too() -> None:
    stream = GeminiStream(MODEL, CHUNK_ID, 1700)
    out = b"".join(stream.feed(PROPERTY_STREAM[i : i + 1]) for i in range(len(PROPERTY_STREAM)))
    whole = GeminiStream(MODEL, CHUNK_ID, 1700)
    assert out + stream.close() == whole.feed(PROPERTY_STREAM) + whole.close()


# --- embeddings --------------------------------------------------------------------------------


def test_embedding_inputs_become_batch_requests() -> None:
    assert embeddings_to_gemini({"input": "hello"}, "text-embedding-004") == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}}
        ]
    }
    body = embeddings_to_gemini(
        {"input": ["a", "b"], "dimensions": 256}, "models/gemini-embedding-001"
    )
    assert body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 256,
            }
            for t in ("a", "b")
        ]
    }


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ([1, 2, 3], "unsupported_parameter"),
        ([[1, 2], [3]], "unsupported_parameter"),
        (["a", 1], "invalid_type"),
        ([], "invalid_value"),
        (None, "missing_required_parameter"),
    ],
)
def test_embedding_inputs_gemini_cannot_take_are_refused(value: Any, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        embeddings_to_gemini({"input": value}, "m")
    assert (caught.value.param, caught.value.code) == ("input", code)


EMBEDDINGS = {"embeddings": [{"values": [0.5, -0.25, 1.0]}, {"values": [0.125, 0.0, -2.0]}]}


def test_embeddings_answer_as_floats() -> None:
    out = orjson.loads(gemini_embeddings_to_openai(orjson.dumps(EMBEDDINGS), MODEL, "float", 6))
    assert out == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 1.0]},
            {"object": "embedding", "index": 1, "embedding": [0.125, 0.0, -2.0]},
        ],
        "model": MODEL,
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }


def test_embeddings_answer_as_base64_of_little_endian_float32() -> None:
    out = orjson.loads(gemini_embeddings_to_openai(orjson.dumps(EMBEDDINGS), MODEL, "base64", 6))
    vectors = [struct.unpack("<3f", base64.b64decode(d["embedding"])) for d in out["data"]]
    assert vectors == [(0.5, -0.25, 1.0), (0.125, 0.0, -2.0)]
    assert [d["index"] for d in out["data"]] == [0, 1]


def test_an_unknown_role_is_named_not_dropped() -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "critic", "content": "Harsher."}]
    error = refusal({"model": MODEL, "messages": messages})
    assert error.param == "messages[1].role" and "`critic`" in error.message
