"""Accounting of relayed Responses API answers: the body's usage, a stream's terminal event, and
an estimate from the deltas when a stream breaks before it completes."""

from __future__ import annotations

from typing import Any

import orjson
from openai.types.responses import Response

from gateway.accounting.tokens import Usage, estimate_tokens
from gateway.sse import SSEParser
from gateway.translate.responses import ChatToResponsesStream, ResponseContext
from gateway.translate.responses.usage import ResponsesStreamReader, response_summary

USAGE = {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 123,
}


def response(status: str, usage: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A Response as the API reference shows it (abridged to the fields that matter here)."""
    return {
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        "object": "response",
        "created_at": 1741476777,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": "gpt-4o-2024-08-06",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
        **extra,
    }


def events(*items: dict[str, Any]) -> list[bytes]:
    """Each event's data, numbered as a stream numbers them."""
    return [orjson.dumps({**item, "sequence_number": n}) for n, item in enumerate(items)]


def text_events(*deltas: str) -> list[dict[str, Any]]:
    item = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant"}
    return [
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        *(
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": delta,
                "logprobs": [],
            }
            for delta in deltas
        ),
    ]


def read(data: list[bytes]) -> ResponsesStreamReader:
    reader = ResponsesStreamReader()
    for one in data:
        reader.feed(one)
    return reader


def test_summary_of_a_response_body() -> None:
    body = orjson.dumps(response("completed", USAGE))
    assert response_summary(body) == (
        "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        Usage(36, 87),
        "completed",
    )


def test_summary_without_usage_or_readable_body() -> None:
    assert response_summary(orjson.dumps(response("failed", None))) == (
        "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        None,
        "failed",
    )
    assert response_summary(b"<html>oops") == (None, None, "")
    assert response_summary(b"[1, 2]") == (None, None, "")


def test_completed_stream_is_billed_from_its_terminal_event() -> None:
    reader = read(
        events(
            {"type": "response.created", "response": response("in_progress", None)},
            {"type": "response.in_progress", "response": response("in_progress", None)},
            *text_events("Hello", " there"),
            {"type": "response.completed", "response": response("completed", USAGE)},
        )
    )
    assert reader.response_id == "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41"
    assert reader.terminal
    assert reader.status == "completed"
    assert reader.text == "Hello there"
    assert reader.final_usage(prompt_estimate=999) == Usage(36, 87)


def test_broken_stream_is_estimated_and_not_complete() -> None:
    reader = read(
        events(
            {"type": "response.created", "response": response("in_progress", None)},
            *text_events("Hello", " there, how are you today?"),
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_1",
                "output_index": 1,
                "delta": '{"city": "Paris"}',
            },
        )
    )
    assert reader.response_id is not None
    assert not reader.terminal
    assert reader.status == "in_progress"
    generated = 'Hello there, how are you today?{"city": "Paris"}'
    assert reader.text == generated
    assert reader.final_usage(prompt_estimate=12) == Usage(
        12, estimate_tokens(generated), estimated=True
    )


def test_incomplete_and_failed_streams_end_with_their_status() -> None:
    cut = response("incomplete", USAGE, incomplete_details={"reason": "max_output_tokens"})
    reader = read(events({"type": "response.incomplete", "response": cut}))
    assert (reader.terminal, reader.status, reader.final_usage(5)) == (
        True,
        "incomplete",
        Usage(36, 87),
    )
    failed = response("failed", None, error={"code": "server_error", "message": "boom"})
    reader = read(
        events(
            {"type": "response.created", "response": response("in_progress", None)},
            *text_events("Partial"),
            {"type": "response.failed", "response": failed},
        )
    )
    assert (reader.terminal, reader.status) == (True, "failed")
    assert reader.error == {"code": "server_error", "message": "boom"}
    assert reader.final_usage(5) == Usage(5, estimate_tokens("Partial"), estimated=True)


def test_error_event_and_noise() -> None:
    reader = read(
        [
            b": keep-alive",
            b"not json",
            b"[DONE]",
            *events({"type": "error", "code": "server_error", "message": "m", "param": None}),
        ]
    )
    assert reader.error == {"code": "server_error", "message": "m", "param": None}
    assert not reader.terminal
    assert reader.final_usage(3) == Usage(3, 0, estimated=True)


def test_reader_follows_the_bridge_stream() -> None:
    """The two halves agree: the bridge's own events are read like OpenAI's."""
    context = ResponseContext(response_id="resp_x", model="m", created_at=1)
    stream = ChatToResponsesStream(context)
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": "Hi!"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}},
    ]
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    parser = SSEParser()
    out = parser.feed(stream.feed(raw) + stream.close())
    reader = read([event.data for event in out if event.data is not None])
    assert (reader.response_id, reader.terminal, reader.status, reader.text) == (
        "resp_x",
        True,
        "completed",
        "Hi!",
    )
    assert reader.final_usage(99) == Usage(4, 2)
    final = stream.final_response()
    assert final is not None
    assert response_summary(orjson.dumps(final)) == ("resp_x", Usage(4, 2), "completed")
    assert Response.model_validate(final).output_text == "Hi!"
