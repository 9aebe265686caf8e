"""AWS Bedrock (`type: bedrock`): the openai and anthropic SDKs talk to the gateway, the gateway
talks to a fake bedrock-runtime that checks every SigV4 signature with botocore's signer and
streams real event-stream frames split at awkward offsets."""

from __future__ import annotations

import base64
import json
import struct
import sys
from decimal import Decimal

import aiohttp
import anthropic
import openai
import pytest

from gateway.config.catalog import catalog_prices
from tests.support.clients import bearer, sdk
from tests.support.fake_anthropic import Tool
from tests.support.fake_bedrock import ACCESS_KEY, CLAUDE, SECRET_KEY, FakeBedrock, bedrock_config
from tests.support.front_door import claude_sdk
from tests.support.gateway import USER_KEY, start_gateway
from tests.support.logrows import log_rows

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
    "RU5ErkJggg=="
)


@pytest.fixture
async def bedrock():
    fake = await FakeBedrock().start()
    yield fake
    await fake.close()


@pytest.fixture
async def gateway(bedrock, upstream, tmp_path):
    running = await start_gateway(bedrock_config(bedrock, upstream.base_url, tmp_path))
    yield running
    await running.close()


async def test_converse_stream_relayed_as_chunks(gateway, bedrock):
    bedrock.split = 13  # frames cut mid-prelude, mid-header and mid-payload
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="claude-bedrock",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"},
            ],
            max_tokens=64,
            temperature=0.3,
            stop=["END"],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    print("\nBedrock ConverseStream through the openai SDK:")
    for chunk in chunks:
        print(chunk.model_dump_json(exclude_none=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert text == ["Hello", " from", " Bedrock"]  # one chunk per Converse delta
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].model == "claude-bedrock"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (31, 7)  # 20 + 8 read + 3 written
    assert usage.prompt_tokens_details.cached_tokens == 8
    [sent] = bedrock.received
    assert sent.action == "converse-stream" and sent.model == CLAUDE
    assert sent.raw_path == "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
    assert sent.body == {
        "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.3, "stopSequences": ["END"]},
    }
    [row] = await log_rows(gateway)
    assert (row["provider"], row["upstream_model"], row["status"]) == ("aws", CLAUDE, "ok")
    assert (row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"]) == (31, 8, 3)
    prices = catalog_prices("bedrock", bedrock.base_url, CLAUDE)
    assert prices is not None and prices.source.startswith("catalog")
    expected = (
        20 * prices.input.base
        + 8 * prices.cached_input.base
        + 3 * prices.cache_write.base
        + 7 * prices.output.base
    ) / Decimal(10**6)
    assert Decimal(str(row["cost_usd"])) == expected and expected > 0


async def test_tools_images_and_tool_results_map_to_converse(gateway, bedrock):
    bedrock.converse.pieces = []
    bedrock.converse.tool = Tool()
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="llama",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this, and the weather?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "Snow"},
            ],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    [call] = answer.choices[0].message.tool_calls
    assert (call.id, call.function.name) == ("toolu_01FakeWeather", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}
    assert answer.choices[0].finish_reason == "tool_calls"
    [sent] = bedrock.received
    assert sent.action == "converse"
    assert sent.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "What is this, and the weather?"},
                {"image": {"format": "png", "source": {"bytes": PIXEL}}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    }
                }
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "call_1", "content": [{"text": "Snow"}]}}],
        },
    ]
    assert sent.body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "inputSchema": {"json": WEATHER["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "get_weather"}},
    }


async def test_tool_call_stream(gateway, bedrock):
    bedrock.converse.pieces = ["Checking."]
    bedrock.converse.tool = Tool()
    bedrock.split = 7
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="llama",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER],
            stream=True,
        )
        chunks = [c async for c in stream]
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "toolu_01FakeWeather" and calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(arguments) == {"city": "Paris", "days": 3}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert bedrock.received[0].body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


async def test_reasoning_content_json_and_stream(gateway, bedrock):
    bedrock.converse.reasoning = ["Let me ", "think."]
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-bedrock",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}},
        )
        stream = await client.chat.completions.create(
            model="claude-bedrock", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
    assert answer.choices[0].message.reasoning_content == "Let me think."
    assert answer.choices[0].message.content == "Hello from Bedrock"
    reasoning = [
        c.choices[0].delta.reasoning_content
        for c in chunks
        if c.choices and getattr(c.choices[0].delta, "reasoning_content", None)
    ]
    assert reasoning == ["Let me ", "think."]
    extra = bedrock.received[0].body["additionalModelRequestFields"]
    assert extra == {"thinking": {"type": "enabled", "budget_tokens": 1024}}


async def test_an_exception_mid_stream_is_one_stream_error_event(gateway, bedrock):
    bedrock.converse.exception_after = 3
    body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers=bearer(USER_KEY)
        ) as resp,
    ):
        raw = await resp.read()
    events = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert json.loads(events[1])["choices"][0]["delta"]["content"] == "Hello"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "stream_error" and "Too many tokens" in error["message"]
    [row] = await log_rows(gateway)
    assert row["status"] == "upstream_error"


async def test_throttling_is_retried_then_a_429(gateway, bedrock):
    bedrock.status = 429
    async with sdk(gateway) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="llama", messages=[{"role": "user", "content": "hi"}]
            )
    assert "ThrottlingException" in caught.value.message
    assert caught.value.response.headers["Retry-After"] == "1"
    assert len(bedrock.received) > 1


async def test_a_server_error_is_retried(gateway, bedrock):
    bedrock.status, bedrock.fail_times = 503, 1
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content == "Hello from Bedrock"
    [row] = await log_rows(gateway)
    assert (row["status"], row["attempts"]) == ("ok", 2)


async def test_a_refused_signature_keeps_bedrocks_status(bedrock, upstream, tmp_path):
    config = bedrock_config(bedrock, upstream.base_url, tmp_path, secret_access_key="wrong")
    running = await start_gateway(config)
    try:
        async with sdk(running) as client:
            with pytest.raises(openai.PermissionDeniedError) as caught:
                await client.chat.completions.create(
                    model="llama", messages=[{"role": "user", "content": "hi"}]
                )
    finally:
        await running.close()
    assert "signature" in caught.value.message
    assert bedrock.refused == ["the signature does not match"]


async def test_credentials_from_the_aws_environment(bedrock, upstream, tmp_path, monkeypatch):
    bedrock.session_token = "FwoGZXIvYXdzEFakeSessionToken"
    config = bedrock_config(bedrock, upstream.base_url, tmp_path)
    del config["providers"]["aws"]["access_key_id"], config["providers"]["aws"]["secret_access_key"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", bedrock.session_token)
    running = await start_gateway(config)
    try:
        async with sdk(running) as client:
            answer = await client.chat.completions.create(
                model="llama", messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        await running.close()
    assert answer.choices[0].message.content == "Hello from Bedrock"
    assert bedrock.refused == []
    assert bedrock.received[0].headers["X-Amz-Security-Token"] == bedrock.session_token


async def test_anthropic_front_door_to_bedrock_claude_through_invoke(gateway, bedrock):
    bedrock.split = 11
    async with claude_sdk(gateway) as client:
        message = await client.messages.create(
            model="claude-bedrock",
            max_tokens=100,
            messages=[{"role": "user", "content": "Say hello"}],
        )
        async with client.messages.stream(
            model="claude-bedrock",
            max_tokens=100,
            messages=[{"role": "user", "content": "Say hello"}],
            extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
        ) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert message.content[0].text == "Hello from Claude"
    assert pieces == ["Hello", " from", " Claude"]
    assert final.usage.cache_read_input_tokens == 10 and final.stop_reason == "end_turn"
    first, second = bedrock.received
    assert (first.action, second.action) == ("invoke", "invoke-with-response-stream")
    for sent in (first, second):
        assert sent.body["anthropic_version"] == "bedrock-2023-05-31"
        assert "model" not in sent.body and "stream" not in sent.body
    assert second.body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    rows = await log_rows(gateway)
    assert [(r["endpoint"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        ("messages", 39, 12),
        ("messages", 39, 12),
    ]


async def test_anthropic_front_door_to_a_non_claude_model_is_bridged(gateway, bedrock):
    async with claude_sdk(gateway) as client:
        message = await client.messages.create(
            model="llama", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].text == "Hello from Bedrock"
    assert bedrock.received[0].action == "converse"


async def test_responses_bridge_on_bedrock(gateway, bedrock):
    async with sdk(gateway) as client:
        response = await client.responses.create(model="llama", input="Say hello")
    assert response.output_text == "Hello from Bedrock"
    assert response.usage.input_tokens == 31


async def test_titan_embeddings_one_call_per_input(gateway, bedrock):
    async with sdk(gateway) as client:
        result = await client.embeddings.create(
            model="titan", input=["one two", "three"], dimensions=3
        )
        packed = await client.embeddings.create(
            model="titan", input="one two", dimensions=3, encoding_format="base64"
        )
    # (the SDK asks for base64 and decodes float32: hence approx)
    assert [d.embedding for d in result.data] == [
        pytest.approx([0.07, 0.08, 0.09]),
        pytest.approx([0.05, 0.06, 0.07]),
    ]
    assert result.usage.prompt_tokens == 3  # Titan's inputTextTokenCount, summed
    calls = [r.body for r in bedrock.received]
    assert calls[:2] == [
        {"inputText": "one two", "dimensions": 3},
        {"inputText": "three", "dimensions": 3},
    ] or calls[:2] == [
        {"inputText": "three", "dimensions": 3},
        {"inputText": "one two", "dimensions": 3},
    ]
    assert {r.action for r in bedrock.received} == {"invoke"}
    raw = base64.b64decode(packed.data[0].embedding)
    assert list(struct.unpack("<3f", raw)) == pytest.approx([0.07, 0.08, 0.09])


async def test_cohere_embeddings_in_one_call(gateway, bedrock):
    async with sdk(gateway) as client:
        result = await client.embeddings.create(model="cohere", input=["a", "bb"])
    assert [len(d.embedding) for d in result.data] == [4, 4]
    [sent] = bedrock.received
    assert sent.body == {"texts": ["a", "bb"], "input_type": "search_document"}


async def test_a_chat_model_refuses_embeddings(gateway, bedrock):
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.embeddings.create(model="llama", input="hi")
    assert caught.value.body["code"] == "model_not_supported"
    assert bedrock.received == []


async def test_credentials_the_aws_chain_cannot_find_are_a_502(
    bedrock, upstream, tmp_path, monkeypatch
):
    config = bedrock_config(bedrock, upstream.base_url, tmp_path)
    del config["providers"]["aws"]["access_key_id"], config["providers"]["aws"]["secret_access_key"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_PROFILE", "missing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    running = await start_gateway(config)
    try:
        async with sdk(running) as client:
            with pytest.raises(openai.APIStatusError) as caught:
                await client.chat.completions.create(
                    model="llama", messages=[{"role": "user", "content": "hi"}]
                )
    finally:
        await running.close()
    assert caught.value.status_code == 502
    assert "could not get AWS credentials" in caught.value.message
    assert bedrock.received == []


async def test_structured_output_through_the_forced_tool(gateway, bedrock):
    bedrock.converse.pieces = []
    bedrock.converse.tool = Tool(name="json_answer", fragments=['{"ok": ', "true}"])
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="claude-bedrock",
            messages=[{"role": "user", "content": "ok?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        )
    assert json.loads(answer.choices[0].message.content) == {"ok": True}
    assert answer.choices[0].finish_reason == "stop"
    config = bedrock.received[0].body["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": "json_answer"}}
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}


async def test_a_failing_bedrock_deployment_cools_down_and_its_peer_serves(
    bedrock, upstream, tmp_path
):
    bedrock.status = 500
    config = bedrock_config(bedrock, upstream.base_url, tmp_path)
    config["routing"].update(cooldown_failures=2, cooldown_s=30, max_attempts=2)
    config["models"]["mixed"] = {
        "provider": "aws",
        "model": "meta.llama3-70b-instruct-v1:0",
        "fallbacks": ["fake-model"],
    }
    running = await start_gateway(config)
    try:
        async with sdk(running) as client:
            for _ in range(4):
                answer = await client.chat.completions.create(
                    model="mixed", messages=[{"role": "user", "content": "hi"}]
                )
                assert answer.choices[0].message.content  # the peer answered
        async with aiohttp.ClientSession() as http, http.get(f"{running.url}/metrics") as resp:
            metrics = await resp.text()
    finally:
        await running.close()
    # Two failures put Bedrock in cooldown: later requests went to the peer without trying it.
    assert len(bedrock.received) == 2
    assert 'gateway_upstream_errors_total{provider="aws",reason="http_500"} 2.0' in metrics


async def test_expiring_credentials_are_refreshed_in_a_thread(
    bedrock, upstream, tmp_path, monkeypatch
):
    # A profile whose credential_process hands out temporary keys that expire in 5 minutes:
    # inside botocore's refresh window, so every request refreshes them (off the event loop).
    bedrock.session_token = "FwoGZXIvYXdzEProcessToken"
    runs = tmp_path / "runs"
    script = tmp_path / "credentials.py"
    script.write_text(
        "import datetime, json, pathlib, sys\n"
        f"pathlib.Path({str(runs)!r}).open('a').write('run\\n')\n"
        "soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': sys.argv[1],"
        " 'SecretAccessKey': sys.argv[2], 'SessionToken': sys.argv[3],"
        " 'Expiration': soon.strftime('%Y-%m-%dT%H:%M:%SZ')}))\n"
    )
    (tmp_path / "aws-config").write_text(
        "[profile gw]\n"
        f"credential_process = {sys.executable} {script} {ACCESS_KEY} {SECRET_KEY}"
        f" {bedrock.session_token}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_PROFILE", "gw")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = bedrock_config(bedrock, upstream.base_url, tmp_path)
    del config["providers"]["aws"]["access_key_id"], config["providers"]["aws"]["secret_access_key"]
    running = await start_gateway(config)
    try:
        async with sdk(running) as client:
            for _ in range(2):
                answer = await client.chat.completions.create(
                    model="llama", messages=[{"role": "user", "content": "hi"}]
                )
                assert answer.choices[0].message.content == "Hello from Bedrock"
    finally:
        await running.close()
    assert bedrock.refused == []
    assert len(runs.read_text().split()) >= 3  # found once, then refreshed for each request


async def test_a_stream_throttled_before_its_first_event_is_retried(gateway, bedrock):
    bedrock.stream_throttles = 1
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from Bedrock"
    assert len(bedrock.received) == 2
    [row] = await log_rows(gateway)
    assert (row["status"], row["attempts"]) == ("ok", 2)


async def test_a_stream_throttled_every_time_is_a_429_on_both_front_doors(gateway, bedrock):
    bedrock.stream_throttles = 100
    async with sdk(gateway) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="llama", messages=[{"role": "user", "content": "hi"}], stream=True
            )
    assert caught.value.body["message"] == "Slow down"
    async with claude_sdk(gateway) as client:
        with pytest.raises(anthropic.RateLimitError) as refused:
            async with client.messages.stream(
                model="claude-bedrock", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                await stream.get_final_message()
    assert refused.value.body["error"] == {"type": "rate_limit_error", "message": "Slow down"}


async def test_models_list_what_each_bedrock_model_serves(gateway, bedrock):
    async with sdk(gateway) as client:
        listed = {m.id: m.model_extra["capabilities"] async for m in client.models.list()}
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="titan", messages=[{"role": "user", "content": "hi"}]
            )
    assert listed["titan"] == listed["cohere"] == ["embeddings"]
    assert listed["llama"] == listed["claude-bedrock"] == ["chat", "responses"]
    assert caught.value.body["code"] == "model_not_supported"
    assert bedrock.received == []
