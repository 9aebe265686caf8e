"""The fake upstream itself, driven by the official openai SDK: embeddings, legacy completions and
the Responses API (objects, streams, stored responses) parse exactly as from OpenAI."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator

import openai
import pytest

from tests.support.upstream import FakeUpstream

QUESTION = [{"role": "user", "content": "What is up?"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = await FakeUpstream(name="alpha").start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def sdk(fake: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=0) as client:
        yield client


# -- embeddings -------------------------------------------------------------------------------


async def test_embeddings_float_and_base64_decode_to_the_same_vectors(sdk, fake):
    texts = ["first text", "second text"]
    floats = await sdk.embeddings.create(model="emb", input=texts, encoding_format="float")
    decoded = await sdk.embeddings.create(model="emb", input=texts)  # SDK asks base64, decodes
    raw = await sdk.embeddings.create(model="emb", input=texts, encoding_format="base64")

    assert fake.received[1].body["encoding_format"] == "base64"
    vectors = [d.embedding for d in floats.data]
    assert [d.embedding for d in decoded.data] == vectors
    unpacked = [
        list(struct.unpack(f"<{len(v)}f", base64.b64decode(d.embedding)))
        for v, d in zip(vectors, raw.data, strict=True)
    ]
    assert unpacked == vectors
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.object == "list" and floats.model == "emb"
    assert vectors[0] != vectors[1]
    assert all(len(v) == 8 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5)
               for v in vectors)  # fmt: skip


async def test_embeddings_accept_every_input_shape_deterministically(sdk, fake):
    fake.behaviour.embedding_tokens = 42
    one = await sdk.embeddings.create(model="emb", input="hello", encoding_format="float")
    again = await sdk.embeddings.create(model="emb", input=["hello"], encoding_format="float")
    tokens = await sdk.embeddings.create(model="emb", input=[1, 2, 3], encoding_format="float")
    lists = await sdk.embeddings.create(
        model="emb", input=[[1, 2, 3], [4]], encoding_format="float", dimensions=3
    )

    assert one.data[0].embedding == again.data[0].embedding
    assert len(tokens.data) == 1 and tokens.data[0].embedding != one.data[0].embedding
    assert [len(d.embedding) for d in lists.data] == [3, 3]
    assert lists.data[0].embedding != tokens.data[0].embedding[:3]  # dimensions change the vector
    assert one.usage.prompt_tokens == 42 and one.usage.total_tokens == 42


# -- legacy completions -----------------------------------------------------------------------


async def test_completions_answer_with_text_and_usage(sdk, fake):
    fake.behaviour.text = "Once upon a time"
    reply = await sdk.completions.create(model="instruct", prompt="Tell a story")

    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.choices[0].text == "Once upon a time"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 14
    assert fake.received[-1].path == "/v1/completions"


async def test_completions_stream_sends_usage_only_when_asked(sdk, fake):
    plain = await sdk.completions.create(model="instruct", prompt="hi", stream=True)
    plain_chunks = [c async for c in plain]
    counted = await sdk.completions.create(
        model="instruct", prompt="hi", stream=True, stream_options={"include_usage": True}
    )
    counted_chunks = [c async for c in counted]

    text = "".join(c.choices[0].text for c in plain_chunks if c.choices)
    assert text == "Hello from upstream"
    assert all(c.usage is None for c in plain_chunks)
    assert plain_chunks[-1].choices[0].finish_reason == "stop"
    assert counted_chunks[-1].choices == []
    assert counted_chunks[-1].usage is not None and counted_chunks[-1].usage.prompt_tokens == 11
    assert fake.streamed[-1].endswith(b"data: [DONE]\n\n")


# -- responses --------------------------------------------------------------------------------


async def test_response_object_carries_text_usage_and_the_fakes_name(sdk, fake):
    fake.behaviour.text = "All good."
    reply = await sdk.responses.create(model="gpt-x", input="How are you?", instructions="Be brief")

    assert reply.id.startswith("resp_") and reply.object == "response"
    assert reply.status == "completed"
    assert reply.output_text == "All good."
    assert reply.output[0].type == "message" and reply.output[0].id.startswith("msg_")
    assert reply.instructions == "Be brief" and reply.model == "gpt-x"
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (
        11, 3, 14,
    )  # fmt: skip
    assert reply.usage.output_tokens_details.reasoning_tokens == 0
    assert reply.metadata == {"upstream": "alpha"}


async def test_response_with_a_scripted_function_call(sdk, fake):
    fake.behaviour.text = ""
    fake.behaviour.tool_call = {"name": "get_weather", "arguments": '{"city":"Oslo"}',
                                "call_id": "call_7"}  # fmt: skip
    reply = await sdk.responses.create(model="gpt-x", input="Weather in Oslo?")

    assert [item.type for item in reply.output] == ["function_call"]
    call = reply.output[0]
    assert call.type == "function_call"
    assert (call.name, call.arguments, call.call_id) == ("get_weather", '{"city":"Oslo"}', "call_7")


async def test_response_stream_events_in_documented_order(sdk, fake):
    stream = await sdk.responses.create(model="gpt-x", input="hi", stream=True)
    events = [event async for event in stream]

    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == [
        "Hello", " from", " upstream",
    ]  # fmt: skip
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "Hello from upstream"
    assert completed.response.usage is not None and completed.response.usage.input_tokens == 11
    assert b"event: response.created\ndata: {" in fake.streamed[-1]


async def test_response_stream_helper_assembles_the_final_response_from_split_bytes(sdk, fake):
    fake.behaviour.split = 7
    fake.behaviour.tool_call = {"name": "lookup", "arguments": '{"q":"x"}', "call_id": "call_1"}
    async with sdk.responses.stream(model="gpt-x", input="hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()

    assert deltas == ["Hello", " from", " upstream"]
    assert final.output_text == "Hello from upstream"
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert final.output[1].arguments == '{"q":"x"}'
    assert final.id in fake.responses


async def test_response_stream_stopped_before_completed_ends_without_a_final_response(sdk, fake):
    fake.behaviour.stop_before_completed = True
    async with sdk.responses.stream(model="gpt-x", input="hi") as stream:
        kinds = [e.type async for e in stream]
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await stream.get_final_response()

    assert kinds[-1] == "response.output_item.done"
    assert b"response.completed" not in fake.streamed[-1]


async def test_stored_response_retrieve_input_items_and_delete(sdk, fake):
    created = await sdk.responses.create(
        model="gpt-x",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello?"}]},
        ],
    )
    again = await sdk.responses.retrieve(created.id)
    items = await sdk.responses.input_items.list(created.id)
    oldest_first = await sdk.responses.input_items.list(created.id, order="asc")
    deleted = await sdk.responses.with_raw_response.delete(created.id)  # the SDK drops the body

    assert again.id == created.id and again.output_text == created.output_text
    texts = [item.content[0].text for item in oldest_first.data]
    assert texts == ["Answer in French.", "Hello?"]
    assert [item.id for item in items.data] == [item.id for item in oldest_first.data][::-1]
    assert all(item.id.startswith("msg_") for item in items.data)
    assert items.first_id == items.data[0].id and items.has_more is False
    assert deleted.http_response.json() == {
        "id": created.id, "object": "response.deleted", "deleted": True,
    }  # fmt: skip
    assert created.id not in fake.responses
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(created.id)
    assert [(r.method, r.path) for r in fake.received[1:3]] == [
        ("GET", f"/v1/responses/{created.id}"),
        ("GET", f"/v1/responses/{created.id}/input_items"),
    ]


async def test_previous_response_id_must_be_known(sdk, fake):
    first = await sdk.responses.create(model="gpt-x", input="one")
    second = await sdk.responses.create(model="gpt-x", input="two", previous_response_id=first.id)
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.responses.create(model="gpt-x", input="three", previous_response_id="resp_nope")

    assert second.previous_response_id == first.id
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"
    assert "resp_nope" in caught.value.message


async def test_unstored_responses_are_not_remembered(sdk, fake):
    reply = await sdk.responses.create(model="gpt-x", input="secret", store=False)

    assert reply.store is False
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(reply.id)


async def test_scripted_failures_answer_every_endpoint_before_recovering(sdk, fake):
    fake.behaviour.status = 429
    fake.behaviour.fail_times = 2
    with pytest.raises(openai.RateLimitError):
        await sdk.responses.create(model="gpt-x", input="hi")
    with pytest.raises(openai.RateLimitError):
        await sdk.embeddings.create(model="emb", input="hi")

    reply = await sdk.responses.create(model="gpt-x", input="hi")
    assert reply.output_text == "Hello from upstream"


async def test_each_fake_names_itself(fake):
    other = await FakeUpstream(name="beta").start()
    try:
        for upstream in (fake, other):
            async with openai.AsyncOpenAI(base_url=upstream.base_url, api_key="x") as client:
                raw = await client.responses.with_raw_response.create(model="m", input="hi")
                assert raw.headers["X-Fake-Upstream"] == upstream.name
                assert raw.parse().metadata == {"upstream": upstream.name}
    finally:
        await other.close()
