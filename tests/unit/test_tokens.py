"""Usage extraction from streams and bodies, and the token estimates used when upstream has none."""

from __future__ import annotations

import orjson
import pytest

from gateway.accounting.tokens import (
    StreamAccounting,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    usage_from_body,
)


def chunk(delta: dict | None = None, finish: str | None = None, **extra: object) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return orjson.dumps({"object": "chat.completion.chunk", "choices": choices, **extra})


USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}


def test_usage_total() -> None:
    assert Usage(3, 4).total == 7
    assert Usage().total == 0
    assert not Usage().estimated


def test_stream_with_usage_only_chunk() -> None:
    acc = StreamAccounting()
    assert acc.observe(chunk({"role": "assistant", "content": ""})) is False
    assert acc.observe(chunk({"content": "Hel"})) is False
    assert acc.observe(chunk({"content": "lo"})) is False
    assert acc.observe(chunk({}, finish="stop")) is False
    assert acc.usage is None
    assert acc.observe(chunk(None, usage=USAGE)) is True
    assert acc.observe(b"[DONE]") is False
    assert acc.text == "Hello"
    assert acc.error is None
    assert acc.final_usage(prompt_estimate=999) == Usage(11, 5, estimated=False)


def test_usage_inside_content_chunk_is_recorded_but_not_usage_only() -> None:
    acc = StreamAccounting()
    assert acc.observe(chunk({"content": "Hi"}, finish="stop", usage=USAGE)) is False
    assert acc.usage == Usage(11, 5)
    assert acc.text == "Hi"


def test_null_usage_is_not_usage() -> None:
    acc = StreamAccounting()
    assert acc.observe(chunk({"content": "a"}, usage=None)) is False
    # An empty choices list without usage is not the usage-only event.
    assert acc.observe(chunk(None, usage=None)) is False
    assert acc.observe(chunk(None)) is False
    assert acc.usage is None


def test_done_and_invalid_json() -> None:
    acc = StreamAccounting()
    assert acc.observe(b"[DONE]") is False
    for junk in (b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"):
        assert acc.observe(junk) is False
    assert acc.text == ""
    assert acc.usage is None


def test_in_stream_error_is_captured() -> None:
    acc = StreamAccounting()
    acc.observe(chunk({"content": "partial"}))
    error = {"message": "overloaded", "type": "server_error", "code": "stream_error"}
    assert acc.observe(orjson.dumps({"error": error})) is False
    assert acc.error == error
    assert acc.text == "partial"


def test_final_usage_estimates_without_upstream_usage() -> None:
    acc = StreamAccounting()
    acc.observe(chunk({"content": "abcd" * 10}))
    usage = acc.final_usage(prompt_estimate=21)
    assert usage == Usage(21, 10, estimated=True)
    assert usage.total == 31


def test_reasoning_counts_for_estimate_but_not_text() -> None:
    acc = StreamAccounting()
    acc.observe(chunk({"reasoning_content": "x" * 40}))
    acc.observe(chunk({"content": "y" * 8}))
    assert acc.text == "y" * 8
    assert acc.final_usage(0).completion_tokens == estimate_tokens("x" * 40 + "y" * 8) == 12


def test_tool_call_arguments_count_for_estimate() -> None:
    acc = StreamAccounting()
    call = {"index": 0, "function": {"name": "get", "arguments": '{"city": "Paris"}'}}
    acc.observe(chunk({"tool_calls": [call]}, finish="tool_calls"))
    assert acc.text == ""
    assert acc.final_usage(0).completion_tokens == estimate_tokens('get{"city": "Paris"}')


def test_other_choices_are_counted_but_not_in_text() -> None:
    acc = StreamAccounting()
    data = {
        "choices": [
            {"index": 0, "delta": {"content": "aaaa"}, "finish_reason": None},
            {"index": 1, "delta": {"content": "bbbbbbbb"}, "finish_reason": "length"},
        ]
    }
    acc.observe(orjson.dumps(data))
    assert acc.text == "aaaa"
    assert acc.final_usage(0).completion_tokens == 3


def test_usage_from_body() -> None:
    body = orjson.dumps(
        {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}}],
            "usage": USAGE,
        }
    )
    assert usage_from_body(body) == (Usage(11, 5), "Hi there")


def test_usage_from_body_without_usage_or_content() -> None:
    tool_only = orjson.dumps({"choices": [{"message": {"content": None, "tool_calls": []}}]})
    assert usage_from_body(tool_only) == (None, "")
    assert usage_from_body(b"<html>bad gateway</html>") == (None, "")
    assert usage_from_body(orjson.dumps({"choices": [], "usage": None})) == (None, "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("The quick brown fox jumps over the lazy dog.", 11),
        ("你好世界", 4),
        ("こんにちは", 5),
        ("안녕", 2),
        ("你好, world", 2 + 2),  # 2 CJK + ", world" (7 chars -> 2)
        ("é", 1),
    ],
)
def test_estimate_tokens(text: str, expected: int) -> None:
    assert estimate_tokens(text) == expected


def test_estimate_prompt_tokens_string_content() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},  # 9 chars -> 3
        {"role": "user", "content": "你好"},  # 2
    ]
    assert estimate_prompt_tokens(messages) == 3 + 4 * 2 + 3 + 2


def test_estimate_prompt_tokens_list_content() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "abcdefgh"},  # 2
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "text", "text": "世界"},  # 2
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": []},
    ]
    assert estimate_prompt_tokens(messages) == 3 + 4 * 2 + 2 + 2


def test_estimate_prompt_tokens_empty() -> None:
    assert estimate_prompt_tokens([]) == 3
