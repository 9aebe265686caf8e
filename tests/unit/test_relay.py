"""The stream relay against a plain reference, over random streams split at random points.
Bytes out, usage, answer text and error must equal what parsing the whole stream at once gives."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from gateway.accounting.tokens import StreamAccounting
from gateway.proxy.relay import StreamRelay
from gateway.sse import SSEParser


def ev(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj)


PIECES = [
    ev({"choices": [{"index": 0, "delta": {"content": "héllo wörld 你好"}}]}),
    ev({"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}),
    ev({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
    b'data: {"choices":[ ],"usage":{"prompt_tokens":1,"completion_tokens":2}}',
    b'data: {"choices":[],"\\u0075sage":{"prompt_tokens":3,"completion_tokens":4}}',
    ev(
        {
            "choices": [{"index": 0, "delta": {"content": "a"}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 9},
        }
    ),
    ev({"choices": [{"index": 0, "delta": {"content": "b"}}], "usage": None}),
    ev({"error": {"message": "boom", "type": "server_error"}}),
    b": keep-alive",
    b"data: [DONE]",
    b"data: not json",
    b'event: x\ndata: {"choices":[]}',
    b'data: {"choices":[],\ndata: "usage":{"prompt_tokens":2,"completion_tokens":1}}',
]
SEPARATORS = [b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n"]


def summary(out: list[bytes], accounting: StreamAccounting) -> tuple[bytes, tuple, str, object]:
    """What a test compares: bytes sent, usage (prompt, completion, estimated), text, error."""
    usage = accounting.final_usage(11)
    usage_fields = (usage.prompt_tokens, usage.completion_tokens, usage.estimated)
    return b"".join(out), usage_fields, accounting.text, accounting.error


def reference(body: bytes, drop: bool) -> tuple[bytes, tuple, str, object]:
    """Parse the whole stream at once: what the client must get, and what must be counted."""
    parser = SSEParser()
    events = parser.feed(body) + parser.flush()
    accounting = StreamAccounting()
    out = []
    for event in events:
        usage_only = event.data is not None and accounting.observe(event.data)
        if not (drop and usage_only):
            out.append(event.raw)
    return summary(out, accounting)


async def relayed(chunks: list[bytes], drop: bool) -> tuple[bytes, tuple, str, object]:
    relay = StreamRelay(drop_usage_event=drop)
    out: list[bytes] = []

    async def rest():
        for chunk in chunks[1:]:
            yield chunk

    async def write(data: bytes) -> None:
        out.append(data)

    await relay.run(chunks[0], rest(), write)
    accounting = relay.accounting
    accounting.settle(need_text=True)
    return summary(out, accounting)


def random_stream(rnd: random.Random) -> tuple[bytes, list[bytes]]:
    separator = b"\n\n" if rnd.random() < 0.7 else rnd.choice(SEPARATORS)
    body = b"".join(rnd.choice(PIECES) + separator for _ in range(rnd.randint(1, 8)))
    if rnd.random() < 0.2:
        body = body[: rnd.randint(1, len(body))]  # a stream cut short
    if rnd.random() < 0.5:
        cuts = sorted(rnd.sample(range(1, len(body)), min(len(body) - 1, rnd.randint(0, 4))))
    else:  # the common case: one whole event per chunk
        cuts = [i + 2 for i in range(len(body) - 2) if body[i : i + 2] == b"\n\n"]
    return body, [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@pytest.mark.parametrize("seed", range(4))
def test_relay_matches_whole_stream_parsing(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(750):
        body, chunks = random_stream(rnd)
        drop = rnd.random() < 0.6
        expected = reference(body, drop)
        got = asyncio.run(relayed(chunks, drop))
        assert got == expected, (chunks, drop)
