"""SSEParser: events out of arbitrarily split bytes, and raw bytes that add back up to the input."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from gateway.sse import SSEEvent, SSEParser

# What OpenAI sends for a short answer with stream_options.include_usage, plus a keep-alive.
OPENAI_STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b": keep-alive\n\n"
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"Hello \xe4\xbd\xa0\xe5\xa5\xbd"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n'
    b"data: [DONE]\n\n"
)


def split_feed(payload: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    bounds = [0, *sorted(cuts), len(payload)]
    for a, b in itertools.pairwise(bounds):
        events.extend(parser.feed(payload[a:b]))
    return events + parser.flush()


def summary(events: list[SSEEvent]) -> list[tuple[bytes, bytes | None]]:
    return [(e.raw, e.data) for e in events]


def test_one_event_per_feed() -> None:
    parser = SSEParser()
    events = parser.feed(b'data: {"a":1}\n\n')
    assert summary(events) == [(b'data: {"a":1}\n\n', b'{"a":1}')]
    assert parser.flush() == []


def test_whole_openai_stream_in_one_feed() -> None:
    parser = SSEParser()
    events = parser.feed(OPENAI_STREAM)
    assert parser.flush() == []
    assert len(events) == 6
    assert b"".join(e.raw for e in events) == OPENAI_STREAM
    assert events[1].raw.startswith(b":") and events[1].data is None
    assert events[2].data is not None and "你好".encode() in events[2].data
    assert events[4].data is not None and events[4].data.startswith(b'{"id":"c1"')
    assert events[5].data == b"[DONE]"


def test_incomplete_event_is_held_until_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"data: b") == []
    assert parser.feed(b"\n") == []
    (event,) = parser.feed(b"\ndata: c\n")
    assert event.raw == b"data: a\ndata: b\n\n"
    assert event.data == b"a\nb"
    (tail,) = parser.flush()
    assert tail.raw == b"data: c\n"
    assert tail.data == b"c"


def test_byte_by_byte_matches_single_feed() -> None:
    whole = summary(split_feed(OPENAI_STREAM, []))
    parser = SSEParser()
    events: list[SSEEvent] = []
    for i in range(len(OPENAI_STREAM)):
        events.extend(parser.feed(OPENAI_STREAM[i : i + 1]))
    events.extend(parser.flush())
    assert summary(events) == whole


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_two_way_split(newline: bytes) -> None:
    payload = OPENAI_STREAM.replace(b"\n", newline)
    whole = summary(split_feed(payload, []))
    assert len(whole) == 6
    for cut in range(1, len(payload)):
        assert summary(split_feed(payload, [cut])) == whole, f"split at {cut}"


def test_random_splits_of_mixed_line_endings() -> None:
    payload = (
        b"data: one\r\n\r\n"
        b"data: two\rdata: 2b\r\r"
        b": ping\n\r\n"
        b"event: message\r\nid: 7\ndata: three\r\n\n"
        b"data: four\n\r"
        b"data: tail"
    )
    whole = summary(split_feed(payload, []))
    assert [data for _, data in whole] == [b"one", b"two\n2b", None, b"three", b"four", b"tail"]
    rng = random.Random(1234)
    for _ in range(500):
        cuts = rng.sample(range(1, len(payload)), rng.randint(1, 12))
        events = split_feed(payload, cuts)
        assert summary(events) == whole, f"cuts {sorted(cuts)}"
        assert b"".join(e.raw for e in events) == payload


def test_crlf_events() -> None:
    (first, second) = SSEParser().feed(b"data: a\r\n\r\ndata: b\r\n\r\n")
    assert (first.raw, first.data) == (b"data: a\r\n\r\n", b"a")
    assert (second.raw, second.data) == (b"data: b\r\n\r\n", b"b")


def test_bare_cr_events() -> None:
    parser = SSEParser()
    (first,) = parser.feed(b"data: a\r\rdata: b\r\r")
    assert (first.raw, first.data) == (b"data: a\r\r", b"a")
    # The second event's final CR could still be half of a CRLF, so it waits for more bytes.
    (second,) = parser.feed(b"data: c\r\r")
    assert (second.raw, second.data) == (b"data: b\r\r", b"b")
    (third,) = parser.flush()
    assert (third.raw, third.data) == (b"data: c\r\r", b"c")


def test_crlf_split_after_data_line() -> None:
    # A CR ending a chunk is not a terminator followed by a blank line once the LF arrives.
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r") == []
    (event,) = parser.feed(b"\n\r\n")
    assert event.raw == b"data: a\r\ndata: b\r\n\r\n"
    assert event.data == b"a\nb"
    assert parser.flush() == []


def test_crlf_split_inside_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\n\r") == []
    (event, second) = parser.feed(b"\ndata: b\r\n\r\n")
    assert event.raw == b"data: a\r\n\r\n"
    assert second.raw == b"data: b\r\n\r\n"
    assert parser.flush() == []


def test_comment_only_blocks() -> None:
    events = SSEParser().feed(b": keep-alive\n\n:one\n: two\n\n: note\ndata: x\n\n")
    assert [e.data for e in events] == [None, None, b"x"]


def test_multiline_data_and_leading_space() -> None:
    (event,) = SSEParser().feed(b"data: a\ndata:b\ndata:  c\ndata\ndata:\n\n")
    # One space after the colon is dropped, a second one is kept; "data" alone is an empty value.
    assert event.data == b"a\nb\n c\n\n"


def test_event_and_id_fields_are_not_data() -> None:
    (event,) = SSEParser().feed(b"event: error\nid: 42\nretry: 10\ndata: {}\n\n")
    assert event.data == b"{}"
    (bare,) = SSEParser().feed(b"event: ping\n\n")
    assert bare.data is None


def test_stray_blank_lines_are_empty_events() -> None:
    events = SSEParser().feed(b"\n\r\ndata: a\n\n\n")
    assert summary(events) == [
        (b"\n", None),
        (b"\r\n", None),
        (b"data: a\n\n", b"a"),
        (b"\n", None),
    ]


def test_flush_returns_unterminated_tail() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"partial":') == []
    (tail,) = parser.flush()
    assert tail.raw == b'data: {"partial":'
    assert tail.data == b'{"partial":'
    assert parser.flush() == []
    # The parser is reusable after flush().
    assert summary(parser.feed(b"data: x\n\n")) == [(b"data: x\n\n", b"x")]


def test_flush_ends_event_on_final_cr() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == []
    (event,) = parser.flush()
    assert (event.raw, event.data) == (b"data: a\r\r", b"a")


def test_empty_feed_is_harmless() -> None:
    parser = SSEParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"") == []
    assert [e.data for e in parser.feed(b"\n")] == [b"a"]


def reference_events(payload: bytes) -> list[bytes]:
    """Slow, obviously correct split: spec lines first, then group them at blank lines."""
    lines = re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", payload)
    events: list[bytes] = []
    current: list[bytes] = []
    for line in lines:
        current.append(line)
        if line in (b"\n", b"\r", b"\r\n"):
            events.append(b"".join(current))
            current = []
    if current:
        events.append(b"".join(current))
    return events


def test_random_streams_match_reference_split() -> None:
    rng = random.Random(42)
    pieces = [b"\r", b"\n", b"\r\n", b"data: x", b": c", b"id", b" "]
    for _ in range(3000):
        payload = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
        cuts = rng.sample(range(1, len(payload)), min(max(len(payload) - 1, 0), rng.randint(0, 6)))
        events = split_feed(payload, cuts)
        assert [e.raw for e in events] == reference_events(payload), (payload, sorted(cuts))


@pytest.mark.parametrize(
    ("raw", "data"),
    [
        (b"data: {}\n\n", b"{}"),
        (b"event: message_start\ndata: {}\n\n", b"{}"),
        (b"event: data: x\ndata: y\n\n", b"y"),  # `data: ` inside another field's value
        (b"data:a\ndata: b\n\n", b"a\nb"),  # an earlier data line without the space
        (b"data: a\n: data\n\n", b"a"),  # `data` in a later comment
        (b"data: a\ndata: b\n\n", b"a\nb"),
        (b"data:  two spaces\n\n", b" two spaces"),
        (b"id: 1\ndata: x\nretry: 5\n\n", b"x"),
    ],
)
def test_common_event_shapes_read_like_the_general_rule(raw: bytes, data: bytes) -> None:
    (event,) = SSEParser().feed(raw)
    assert event.data == data and event.raw == raw
