"""The bedrock translation: chat -> Converse bodies, Converse answers -> chat, and Bedrock's
binary event streams (decoded by botocore in adapters/aws.py) -> the client's events, fed in
every awkward split."""

from __future__ import annotations

import base64
import json

import orjson
import pytest

from gateway.adapters.aws import EventStreamDecoder
from gateway.errors import InvalidRequest, ProviderError, UpstreamRejected
from gateway.translate.bedrock import (
    ConverseStream,
    InvokeStream,
    anthropic_to_converse,
    chat_to_converse,
    converse_to_chat,
    error_to_openai,
)
from tests.support.fake_anthropic import Script, Tool
from tests.support.fake_bedrock import (
    ConverseScript,
    converse_events,
    event,
    exception,
    invoke_events,
)


def _data(out: bytes) -> list[dict]:
    return [
        json.loads(line[6:])
        for line in out.decode().split("\n")
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def _converse(raw: bytes, step: int) -> bytes:
    decoder = EventStreamDecoder(ConverseStream("m", "chatcmpl-1", 1), error_to_openai)
    out = b"".join(decoder.feed(raw[i : i + step]) for i in range(0, len(raw), step))
    return out + decoder.close()


def test_cache_control_becomes_cache_points_and_none_leaves_the_choice_out():
    body = {
        "model": "x",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "none"},
        "metadata": {"user_id": "u1"},
    }
    body["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    converse = anthropic_to_converse(body)
    assert converse["system"] == [{"text": "Long rules"}, {"cachePoint": {"type": "default"}}]
    assert converse["messages"][0]["content"] == [
        {"text": "hi"},
        {"cachePoint": {"type": "default", "ttl": "1h"}},
    ]
    assert converse["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]
    }
    assert "metadata" not in converse and "requestMetadata" not in converse


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://example.com/cat.png", "unsupported_parameter"),
        ("data:image/tiff;base64,AAAA", "invalid_value"),
    ],
)
def test_images_bedrock_cannot_take_are_a_400(url, code):
    payload = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
        ],
    }
    with pytest.raises(InvalidRequest) as caught:
        chat_to_converse(payload, "m", None)
    assert caught.value.code == code and caught.value.param.startswith("messages[0]")


def test_chat_refusals_of_the_anthropic_translation_hold_for_bedrock():
    with pytest.raises(InvalidRequest) as caught:
        chat_to_converse(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "m", None
        )
    assert caught.value.param == "n"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_answer_stop_reasons(stop, finish):
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 5, "outputTokens": 2, "cacheReadInputTokens": 1},
    }
    chat = orjson.loads(converse_to_chat(orjson.dumps(answer), "pub", "chatcmpl-1", 7, None))
    assert chat["choices"][0]["finish_reason"] == finish
    assert chat["usage"]["prompt_tokens"] == 6
    assert chat["usage"]["prompt_tokens_details"]["cached_tokens"] == 1
    assert chat["model"] == "pub"


def test_converse_stream_is_the_same_in_every_split():
    script = ConverseScript(reasoning=["a", "b"], tool=Tool())
    raw = b"".join(converse_events(script))
    whole = _converse(raw, len(raw))
    for step in (1, 2, 3, 5, 7, 11, 16, 64):
        assert _converse(raw, step) == whole
    chunks = _data(whole)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d.get("reasoning_content") for d in deltas if "reasoning_content" in d] == ["a", "b"]
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"city": "Paris", "days": 3}'
    assert chunks[-1]["usage"]["prompt_tokens"] == 31
    assert whole.endswith(b"data: [DONE]\n\n")


def test_each_message_is_written_as_soon_as_its_frame_is_whole():
    frames = converse_events(ConverseScript())
    decoder = EventStreamDecoder(ConverseStream("m", "c", 1), error_to_openai)
    assert decoder.feed(frames[0][:-1]) == b""  # a frame short of its CRC: nothing yet
    assert _data(decoder.feed(frames[0][-1:] + frames[1]))[-1]["choices"][0]["delta"] == {
        "content": "Hello"
    }


def test_an_exception_message_is_one_stream_error_event():
    raw = event("messageStart", {"role": "assistant"}) + exception(
        "modelStreamErrorException", "The model failed."
    )
    out = _converse(raw, 5)
    [first, error] = _data(out)
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert error["error"]["code"] == "stream_error"
    assert error["error"]["message"] == "The model failed."
    assert b"[DONE]" not in out


def test_a_corrupt_frame_ends_the_stream_with_an_error():
    frames = converse_events(ConverseScript())
    bad = bytearray(frames[1])
    bad[-1] ^= 0xFF  # its message CRC
    decoder = EventStreamDecoder(ConverseStream("m", "c", 1), error_to_openai)
    out = decoder.feed(frames[0] + bytes(bad) + frames[2])
    assert _data(out)[-1]["error"]["code"] == "stream_error"
    assert decoder.feed(frames[3]) == b"" and decoder.close() == b""


def test_a_stream_cut_before_its_metadata_ends_with_an_error():
    frames = converse_events(ConverseScript())[:-1]  # no metadata event
    out = _converse(b"".join(frames), 9)
    assert _data(out)[-1]["error"]["message"] == "The provider's stream ended early."


def test_invoke_stream_writes_anthropics_events_as_sse():
    raw = b"".join(invoke_events("claude", Script()))
    decoder = EventStreamDecoder(InvokeStream(), error_to_openai)
    out = b"".join(decoder.feed(raw[i : i + 3]) for i in range(0, len(raw), 3))
    blocks = out.decode().split("\n\n")
    assert blocks[0].startswith("event: message_start\ndata: {")
    assert blocks[-2] == 'event: message_stop\ndata: {"type":"message_stop"}'


def test_invoke_stream_errors_are_anthropic_error_events():
    stream = InvokeStream()
    out = stream.message("exception", "throttlingException", b'{"message": "slow down"}')
    assert out == (
        b'event: error\ndata: {"type":"error","error":'
        b'{"type":"rate_limit_error","message":"slow down"}}\n\n'
    )
    assert stream.message("event", "chunk", b'{"bytes": "e30="}') == b""  # nothing after it
    broken = InvokeStream().message("event", "chunk", b'{"bytes": "not base64!"}')
    assert b'"api_error"' in broken


def test_invoke_stream_compacts_an_event_with_newlines():
    pretty = base64.b64encode(b'{\n  "type": "ping"\n}').decode()
    out = InvokeStream().message("event", "chunk", orjson.dumps({"bytes": pretty}))
    assert out == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_one_hour_cache_writes_come_from_cache_details():
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 5,
            "outputTokens": 2,
            "cacheWriteInputTokens": 100,
            "cacheDetails": [{"ttl": "1h", "inputTokens": 60}, {"ttl": "5m", "inputTokens": 40}],
        },
    }
    chat = orjson.loads(converse_to_chat(orjson.dumps(answer), "pub", "chatcmpl-1", 7, None))
    details = chat["usage"]["prompt_tokens_details"]
    assert (details["cache_write_tokens"], details["cache_write_1h_tokens"]) == (100, 60)
    assert chat["usage"]["prompt_tokens"] == 105


def test_an_exception_before_any_output_is_the_attempts_failure():
    throttled = exception("throttlingException", "Too many requests")
    decoder = EventStreamDecoder(ConverseStream("m", "c", 1), error_to_openai)
    with pytest.raises(UpstreamRejected) as caught:
        decoder.feed(throttled[:10])
        decoder.feed(throttled[10:])
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"
    assert orjson.loads(caught.value.raw_body)["error"]["message"] == "Too many requests"
    failed = EventStreamDecoder(ConverseStream("m", "c", 1), error_to_openai)
    with pytest.raises(ProviderError):
        failed.feed(exception("internalServerException", "oops"))
