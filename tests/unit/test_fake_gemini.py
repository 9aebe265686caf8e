"""The Gemini translator against the fake Gemini server: the fake accepts what it sends (and
refuses unknown fields as Google does); it translates what the fake answers, streams included."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.translate.gemini import (
    GeminiStream,
    chat_to_gemini,
    embeddings_to_gemini,
    error_to_openai,
    gemini_embeddings_to_openai,
    gemini_to_chat,
)
from tests.support.fake_gemini import (
    GOOD_KEY,
    Call,
    FakeGemini,
    embedding_values,
    stream_body,
)

MODEL = "gemini-2.5-flash"
KEY = {"x-goog-api-key": GOOD_KEY}


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    fake = await FakeGemini().start()
    yield fake
    await fake.close()


async def post(
    fake: FakeGemini, method: str, body: Any, headers: dict[str, str] | None = None, query: str = ""
) -> tuple[int, bytes]:
    url = f"{fake.base_url}/models/{MODEL}:{method}{query}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=orjson.dumps(body), headers=KEY if headers is None else headers
        ) as r,
    ):
        return r.status, await r.read()


async def stream_pieces(fake: FakeGemini, body: Any) -> list[bytes]:
    """The stream's bytes as they arrived, piece by piece."""
    url = f"{fake.base_url}/models/{MODEL}:streamGenerateContent?alt=sse"
    pieces = []
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=KEY) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        try:
            async for piece in r.content.iter_any():
                pieces.append(piece)
        except aiohttp.ClientPayloadError:
            pass  # the fake cut the connection
    return pieces


def events(out: bytes) -> list[Any]:
    blocks = out.split(b"\n\n")[:-1]
    return [b[6:].decode() if b == b"data: [DONE]" else orjson.loads(b[6:]) for b in blocks]


CONVERSATION = {
    "model": "public",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": "{}"},
                    "extra_content": {"google": {"thought_signature": "S"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
    "tool_choice": "auto",
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {}}},
    "temperature": 0.1,
    "stop": "END",
    "stream_options": {"include_usage": True},
}


async def test_the_translated_request_is_accepted_and_the_answer_translated(
    gemini: FakeGemini,
) -> None:
    body = chat_to_gemini(CONVERSATION, 1024)
    status, raw = await post(gemini, "generateContent", body)
    assert status == 200, raw
    seen = gemini.received[-1]
    assert (seen.method, seen.model, seen.path) == (
        "generateContent",
        MODEL,
        f"/v1beta/models/{MODEL}:generateContent",
    )
    assert seen.headers["x-goog-api-key"] == GOOD_KEY
    assert seen.body == body
    completion = orjson.loads(gemini_to_chat(raw, "public", "chatcmpl-x", 5))
    assert completion["choices"][0]["message"]["content"] == "Hello from Gemini"
    assert completion["usage"]["total_tokens"] == 12


async def test_a_field_google_does_not_know_is_refused_like_google_does(gemini: FakeGemini) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "max_tokens": 5}
    status, raw = await post(gemini, "generateContent", body)
    assert status == 400
    assert b'Unknown name \\"max_tokens\\"' in raw
    status, _ = await post(gemini, "generateContent", {"contents": []})
    assert status == 400


async def test_a_stream_in_small_pieces_with_thoughts_and_signed_calls(gemini: FakeGemini) -> None:
    b = gemini.behaviour
    b.thoughts = ["Thinking 🙂"]
    b.calls = [Call("weather", {"city": "Zürich"}, "sig-1")]
    b.split = 7
    pieces = await stream_pieces(gemini, chat_to_gemini(CONVERSATION, None))
    assert gemini.received[-1].query == {"alt": "sse"}
    assert b"".join(pieces) == stream_body(b, MODEL)
    assert b"".join(pieces).count(b"\r\n\r\n") == 5  # thought, 3 text pieces, call + finish
    stream = GeminiStream("public", "chatcmpl-x", 5)
    out = events(b"".join(stream.feed(p) for p in pieces) + stream.close())
    deltas = [e["choices"][0]["delta"] for e in out[:-2]]
    assert deltas[1] == {"reasoning_content": "Thinking 🙂"}
    assert "".join(d.get("content") or "" for d in deltas) == "Hello from Gemini"
    start = next(d["tool_calls"][0] for d in deltas if "tool_calls" in d)
    assert start["extra_content"] == {"google": {"thought_signature": "sig-1"}}
    assert out[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert out[-2]["usage"]["prompt_tokens"] == 9  # the last usageMetadata, not an earlier one
    assert out[-2]["usage"]["completion_tokens"] == 3
    assert out[-1] == "[DONE]"


async def test_a_stream_cut_mid_way_ends_with_a_stream_error(gemini: FakeGemini) -> None:
    gemini.behaviour.close_after_bytes = 150
    pieces = await stream_pieces(gemini, chat_to_gemini(CONVERSATION, None))
    assert len(b"".join(pieces)) <= 150
    stream = GeminiStream("public", "chatcmpl-x", 5)
    out = events(b"".join(stream.feed(p) for p in pieces) + stream.close())
    assert out[-1]["error"]["code"] == "stream_error"
    assert all("error" not in e for e in out[:-1])


async def test_an_error_event_inside_the_stream(gemini: FakeGemini) -> None:
    gemini.behaviour.error_after_events = 1
    pieces = await stream_pieces(gemini, chat_to_gemini(CONVERSATION, None))
    stream = GeminiStream("public", "chatcmpl-x", 5)
    out = events(b"".join(stream.feed(p) for p in pieces) + stream.close())
    assert out[1]["choices"][0]["delta"] == {"content": "Hello"}
    assert out[-1]["error"]["code"] == "stream_error"
    assert out[-1]["error"]["message"].startswith("An internal error")


@pytest.mark.parametrize(
    ("headers", "status", "code", "words"),
    [
        ({}, 403, "PERMISSION_DENIED", "unregistered callers"),
        ({"x-goog-api-key": "wrong"}, 400, "INVALID_ARGUMENT", "API key not valid"),
    ],
)
async def test_a_missing_or_wrong_key_gets_googles_answer(
    gemini: FakeGemini, headers: dict[str, str], status: int, code: str, words: str
) -> None:
    got, raw = await post(gemini, "generateContent", chat_to_gemini(CONVERSATION, None), headers)
    assert got == status
    error = orjson.loads(error_to_openai(got, raw))["error"]
    assert error["code"] == code
    assert words in error["message"]


async def test_failing_first_then_answering(gemini: FakeGemini) -> None:
    gemini.behaviour.status, gemini.behaviour.fail_times = 503, 1
    body = chat_to_gemini(CONVERSATION, None)
    status, raw = await post(gemini, "generateContent", body)
    assert status == 503
    error = orjson.loads(error_to_openai(status, raw))["error"]
    assert (error["type"], error["code"]) == ("server_error", "UNAVAILABLE")
    status, _ = await post(gemini, "generateContent", body)
    assert status == 200


async def test_embeddings_round_trip(gemini: FakeGemini) -> None:
    body = embeddings_to_gemini({"input": ["alpha", "beta"], "dimensions": 4}, MODEL)
    status, raw = await post(gemini, "batchEmbedContents", body)
    assert status == 200, raw
    out = orjson.loads(gemini_embeddings_to_openai(raw, "emb", "base64", 2))
    for item, text in zip(out["data"], ["alpha", "beta"], strict=True):
        assert list(struct.unpack("<4f", base64.b64decode(item["embedding"]))) == (
            embedding_values(text, 4)
        )
    status, _ = await post(gemini, "batchEmbedContents", embeddings_to_gemini({"input": "x"}, "m"))
    assert status == 400  # each request's model must be the one in the URL


async def test_two_candidates_answer_and_stream_as_two_choices(gemini: FakeGemini) -> None:
    body = chat_to_gemini({**CONVERSATION, "n": 2}, None)
    status, raw = await post(gemini, "generateContent", body)
    assert status == 200, raw
    choices = orjson.loads(gemini_to_chat(raw, "public", "chatcmpl-x", 5))["choices"]
    assert [c["message"]["content"] for c in choices] == [
        "Hello from Gemini",
        "(1) Hello from Gemini",
    ]
    stream = GeminiStream("public", "chatcmpl-x", 5, n=2)
    pieces = await stream_pieces(gemini, body)
    out = events(b"".join(stream.feed(p) for p in pieces) + stream.close())
    text = {0: "", 1: ""}
    for e in out[:-2]:
        text[e["choices"][0]["index"]] += e["choices"][0]["delta"].get("content") or ""
    assert text == {0: "Hello from Gemini", 1: "(1) Hello from Gemini"}
    assert out[-1] == "[DONE]"


async def test_without_alt_sse_the_stream_is_one_json_array(gemini: FakeGemini) -> None:
    body = chat_to_gemini(CONVERSATION, None)
    status, raw = await post(gemini, "streamGenerateContent", body)
    assert status == 200
    parts = [e["candidates"][0]["content"]["parts"][0]["text"] for e in orjson.loads(raw)]
    assert parts == ["Hello", " from", " Gemini"]
