"""AnthropicStream: Messages API events, split anywhere, into the exact OpenAI chunks."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.translate.anthropic import AnthropicStream
from tests.support import fake_anthropic

Json = dict[str, Any]

# A documented stream: thinking (with its signature), text in several deltas around a ping, and a
# tool call whose input arrives in fragments; message_delta repeats no input counts.
ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U",'
    b'"type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],'
    b'"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,'
    b'"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":2}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":'
    b'{"type":"thinking","thinking":""}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":'
    b'{"type":"thinking_delta","thinking":"The user wants the weather."}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":'
    b'{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":'
    b'{"type":"text_delta","text":"Okay"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":'
    b'{"type":"text_delta","text":", let me check Z\xc3\xbcrich \xe2\x98\x80 "}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":'
    b'{"type":"text_delta","text":"\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x8e\x89"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":1}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use",'
    b'"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":'
    b'{"type":"input_json_delta","partial_json":""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":'
    b'{"type":"input_json_delta","partial_json":"{\\"location\\":"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":'
    b'{"type":"input_json_delta","partial_json":" \\"Z\xc3\xbcrich\\", \\"unit\\""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":'
    b'{"type":"input_json_delta","partial_json":": \\"celsius\\"}"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":2}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
    b'"usage":{"output_tokens":89}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)

HEAD = {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1700000000}


def chunk(delta: Json, finish: str | None = None) -> Json:
    return {
        **HEAD,
        "model": "claude-sonnet",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage_chunk(prompt: int, completion: int, cached: int, writes: int = 0) -> Json:
    return {
        **HEAD,
        "model": "claude-sonnet",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}
            | ({"cache_write_tokens": writes} if writes else {}),
        },
    }


EXPECTED = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "The user wants the weather."}),
    chunk({"content": "Okay"}),
    chunk({"content": ", let me check Zürich ☀ "}),
    chunk({"content": "你好 🎉"}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Zürich", "unit"'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "celsius"}'}}]}),
    chunk({}, "tool_calls"),
    usage_chunk(472 + 100 + 2000, 89, 2000, 100),
]


def new_stream() -> AnthropicStream:
    return AnthropicStream("claude-sonnet", "chatcmpl-abc", 1700000000)


def run(pieces: list[bytes]) -> bytes:
    stream = new_stream()
    return b"".join(stream.feed(piece) for piece in pieces) + stream.close()


def events(out: bytes) -> list[bytes]:
    """The data of each OpenAI event, checking the framing on the way."""
    assert out.endswith(b"\n\n")
    parts = out[:-2].split(b"\n\n")
    assert all(part.startswith(b"data: ") and b"\n" not in part for part in parts)
    return [part[len(b"data: ") :] for part in parts]


def chunks(out: bytes, *, done: bool = True) -> list[Json]:
    """The JSON of each OpenAI event; with `done`, the last event must be [DONE]."""
    data = events(out)
    if done:
        assert data.pop() == b"[DONE]"
    assert b"[DONE]" not in data
    return [orjson.loads(d) for d in data]


def sse(*objs: Json) -> bytes:
    """Anthropic events for these data objects, named after their type."""
    return fake_anthropic.encode([(obj["type"], obj) for obj in objs])


MESSAGE_START = ANTHROPIC_STREAM[: ANTHROPIC_STREAM.index(b"\n\n") + 2]
MESSAGE_STOP = sse({"type": "message_stop"})


def message_delta(stop_reason: str, output_tokens: int) -> bytes:
    return sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
    )


def test_a_documented_stream_becomes_the_exact_openai_chunks() -> None:
    assert chunks(run([ANTHROPIC_STREAM])) == EXPECTED


def test_each_event_comes_out_as_soon_as_its_bytes_are_complete() -> None:
    stream = new_stream()
    assert stream.feed(MESSAGE_START[:-1]) == b""
    assert chunks(stream.feed(MESSAGE_START[-1:]), done=False) == EXPECTED[:1]
    assert chunks(stream.feed(ANTHROPIC_STREAM[len(MESSAGE_START) :])) == EXPECTED[1:]
    assert stream.close() == b""
    assert stream.feed(MESSAGE_STOP) == b""


def test_crlf_line_ends_change_nothing() -> None:
    assert chunks(run([ANTHROPIC_STREAM.replace(b"\n", b"\r\n")])) == EXPECTED


def test_usage_counts_carried_by_message_delta_win() -> None:
    stream = ANTHROPIC_STREAM.replace(
        b'"usage":{"output_tokens":89}',
        b'"usage":{"input_tokens":500,"cache_creation_input_tokens":null,'
        b'"cache_read_input_tokens":1000,"output_tokens":89}',
    )
    assert chunks(run([stream]))[-1] == usage_chunk(500 + 100 + 1000, 89, 1000, 100)


def test_an_error_event_is_one_stream_error_and_the_end() -> None:
    cut = ANTHROPIC_STREAM.index(b'"index":1,"content_block"')
    cut = ANTHROPIC_STREAM.rindex(b"event:", 0, cut)
    error = (
        b"event: error\n"
        b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
        b"\n\n"
    )
    stream = new_stream()
    out = chunks(stream.feed(ANTHROPIC_STREAM[:cut] + error + ANTHROPIC_STREAM[cut:]), done=False)
    assert out == [
        *EXPECTED[:2],
        {
            "error": {
                "message": "Overloaded",
                "type": "overloaded_error",
                "param": None,
                "code": "stream_error",
            }
        },
    ]
    assert stream.feed(MESSAGE_STOP) == b""
    assert stream.close() == b""


def test_a_stream_that_ends_before_message_stop_ends_with_a_stream_error() -> None:
    cut = ANTHROPIC_STREAM.index(b"event: message_delta")
    stream = new_stream()
    out = stream.feed(ANTHROPIC_STREAM[:cut] + b"event: message_delta\ndata: {")
    assert chunks(out, done=False) == EXPECTED[:-2]
    assert chunks(stream.close(), done=False) == [
        {
            "error": {
                "message": "The provider's stream ended early.",
                "type": "server_error",
                "param": None,
                "code": "stream_error",
            }
        }
    ]
    assert stream.close() == b""


def test_an_empty_stream_is_a_stream_error() -> None:
    (end,) = chunks(run([]), done=False)
    assert end["error"]["code"] == "stream_error"


def test_data_that_is_not_json_is_a_stream_error() -> None:
    stream = new_stream()
    out = chunks(stream.feed(MESSAGE_START + b"event: x\ndata: {nope\n\n"), done=False)
    assert out[0] == EXPECTED[0]
    assert out[1]["error"]["code"] == "stream_error"
    assert stream.feed(ANTHROPIC_STREAM[len(MESSAGE_START) :]) == b""


def test_the_finish_chunk_comes_once_and_always_before_the_usage() -> None:
    deltas = message_delta("max_tokens", 3) + message_delta("end_turn", 5)
    out = chunks(run([MESSAGE_START + deltas + MESSAGE_STOP]))
    assert [c["choices"][0]["finish_reason"] for c in out[:-1]] == [None, "length"]
    assert out[-1]["usage"]["completion_tokens"] == 5
    never = chunks(run([MESSAGE_START + MESSAGE_STOP]))
    assert [c["choices"][0]["finish_reason"] for c in never[:-1]] == [None, "stop"]


def test_tool_calls_are_numbered_from_zero_in_order() -> None:
    def tool(index: int, call_id: str, fragments: list[str]) -> bytes:
        block = {"type": "tool_use", "id": call_id, "name": "f", "input": {}}
        return sse(
            {"type": "content_block_start", "index": index, "content_block": block},
            *(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": f},
                }
                for f in fragments
            ),
            {"type": "content_block_stop", "index": index},
        )

    text = sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_stop", "index": 0},
    )
    raw = [MESSAGE_START, text, tool(1, "toolu_a", ['{"a"', ":1}"]), tool(2, "toolu_b", ["{}"])]
    out = chunks(run([*raw, message_delta("tool_use", 9), MESSAGE_STOP]))
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in out if _has_tool_call(c)]
    assert calls == [
        {
            "index": 0,
            "id": "toolu_a",
            "type": "function",
            "function": {"name": "f", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": '{"a"'}},
        {"index": 0, "function": {"arguments": ":1}"}},
        {
            "index": 1,
            "id": "toolu_b",
            "type": "function",
            "function": {"name": "f", "arguments": ""},
        },
        {"index": 1, "function": {"arguments": "{}"}},
    ]


def _has_tool_call(c: Json) -> bool:
    return bool(c["choices"]) and "tool_calls" in c["choices"][0]["delta"]


def test_the_fakes_stream_reads_as_its_answer() -> None:
    script = fake_anthropic.Script(
        pieces=["Bonjour", " à ", "tous"],
        thinking=["Hmm", "..."],
        tool=fake_anthropic.Tool(fragments=['{"city"', ': "Lyon"}']),
    )
    got = chunks(run([fake_anthropic.stream_bytes("claude-x", script)]))
    deltas = [c["choices"][0]["delta"] for c in got[:-1]]
    assert "".join(d.get("content", "") for d in deltas) == "Bonjour à tous"
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Hmm..."
    arguments = "".join(
        d["tool_calls"][0]["function"]["arguments"] for d in deltas if "tool_calls" in d
    )
    assert orjson.loads(arguments) == {"city": "Lyon"}
    assert got[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert got[-1]["usage"]["prompt_tokens"] == 25 + 4 + 10
    assert got[-1]["usage"]["completion_tokens"] == 12


def test_every_split_into_two_pieces_gives_the_same_output() -> None:
    raw = ANTHROPIC_STREAM.replace(b"\n", b"\r\n")  # also splits inside every CRLF
    whole = run([raw])
    for i in range(len(raw) + 1):
        assert run([raw[:i], raw[i:]]) == whole, i


@settings(max_examples=300, deadline=None)
@given(data=st.data(), crlf=st.booleans())
def test_any_chunking_gives_the_same_output(data: st.DataObject, crlf: bool) -> None:
    raw = ANTHROPIC_STREAM.replace(b"\n", b"\r\n") if crlf else ANTHROPIC_STREAM
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=60))
    bounds = [0, *sorted(cuts), len(raw)]
    pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(pieces) == run([raw])


def test_the_structured_output_tools_input_streams_as_content() -> None:
    script = fake_anthropic.Script(
        pieces=[],
        pings=False,
        tool=fake_anthropic.Tool("json_answer", "toolu_1", ['{"ci', 'ty": "Paris"}']),
    )
    upstream = fake_anthropic.stream_bytes("claude-sonnet-4-5", script)
    stream = AnthropicStream("claude-sonnet", "chatcmpl-abc", 1700000000, "json_answer")
    got = chunks(b"".join(stream.feed(upstream[i : i + 5]) for i in range(0, len(upstream), 5)))
    deltas = [c["choices"][0]["delta"] for c in got if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == '{"city": "Paris"}'
    assert not any("tool_calls" in d for d in deltas)
    assert [c["choices"][0]["finish_reason"] for c in got if c["choices"]][-1] == "stop"
