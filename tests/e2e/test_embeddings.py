"""POST /v1/embeddings through the openai SDK (SPEC 8): relayed byte for byte to `openai` and
`azure` providers with the provider's credentials, answered by `echo` itself, refused for
`anthropic`, rate-limited, and billed from upstream's usage at the model's input price."""

from __future__ import annotations

import base64
import math
import struct
from decimal import Decimal

import aiohttp
import openai
import pytest

from tests.support.clients import bearer, sdk
from tests.support.gateway import USER_KEY, base_config, start_gateway
from tests.support.logrows import log_rows

SLOW_KEY = "sk-test-two-a-minute"
AZURE_KEY = "azure-secret"
API_VERSION = "2024-10-21"
TEXTS = ["first text", "second text"]


@pytest.fixture
def config(upstream, tmp_path):
    config = base_config(upstream.base_url, tmp_path)
    config["providers"]["az"] = {
        "type": "azure",
        "base_url": upstream.root_url,
        "api_key": AZURE_KEY,
        "api_version": API_VERSION,
    }
    # Nothing listens on port 9: reaching for the network would answer 502, not 400.
    config["providers"]["claude"] = {
        "type": "anthropic",
        "base_url": "http://127.0.0.1:9",
        "api_key": "sk-ant-unused",
    }
    config["models"]["az-embed"] = {"provider": "az", "model": "my-embedding-deployment"}
    config["models"]["claude"] = {"provider": "claude", "model": "claude-sonnet-4-5"}
    config["auth"]["keys"].append({"key": SLOW_KEY, "user": "carol", "tier": "slow"})
    config["quota"]["tiers"]["slow"] = {"rpm": 2, "tpd": 0}
    return config


@pytest.fixture
async def gateway(config):
    running = await start_gateway(config)
    yield running
    await running.close()


async def post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.read()


def unpack(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize("fmt", ["float", "base64"])
async def test_openai_embeddings_are_upstream_bytes_with_the_providers_key(gateway, upstream, fmt):
    upstream.behaviour.embedding_tokens = 7
    async with sdk(gateway) as client:
        raw = await client.embeddings.with_raw_response.create(
            model="fake-model", input=TEXTS, encoding_format=fmt, user="u-1"
        )
    got = raw.content
    assert got == upstream.answered[-1]
    sent = upstream.received[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.body == {
        "model": "upstream-model", "input": TEXTS, "encoding_format": fmt, "user": "u-1"
    }  # fmt: skip
    assert sent.headers["Authorization"] == "Bearer sk-upstream-secret"
    assert not any(USER_KEY in value for value in sent.headers.values())

    # The same body straight to the fake (deterministic vectors) gives the very same bytes.
    status, direct = await post(f"{upstream.base_url}/embeddings", sent.body, {})
    assert status == 200 and direct == got
    status, relayed = await post(
        f"{gateway.url}/v1/embeddings", {**sent.body, "model": "fake-model"}, bearer(USER_KEY)
    )
    assert status == 200 and relayed == got

    result = raw.parse()
    vectors = [d.embedding if fmt == "float" else unpack(d.embedding) for d in result.data]
    assert [d.index for d in result.data] == [0, 1] and vectors[0] != vectors[1]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vectors)
    assert (result.usage.prompt_tokens, result.model) == (7, "upstream-model")

    rows = await log_rows(gateway)
    assert len(rows) == 2
    for row in rows:
        assert (row["endpoint"], row["status"], row["model"]) == ("embeddings", "ok", "fake-model")
        assert (row["provider"], row["upstream_model"]) == ("fake", "upstream-model")
        assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (7, 0, 0)
        assert Decimal(row["cost_usd"]) == 7 * Decimal("1.5") / 10**6


async def test_the_sdk_default_base64_decodes_to_the_float_vectors(client, upstream):
    floats = await client.embeddings.create(
        model="fake-model", input=TEXTS, encoding_format="float"
    )
    decoded = await client.embeddings.create(model="fake-model", input=TEXTS)
    assert upstream.received[-1].body["encoding_format"] == "base64"  # what the SDK asks for
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]


async def test_echo_embeds_deterministic_unit_vectors(gateway, upstream):
    async with sdk(gateway) as client:
        five = await client.embeddings.create(
            model="echo", input=["alpha", "beta"], dimensions=5, encoding_format="float"
        )
        again = await client.embeddings.create(
            model="echo", input="alpha", dimensions=5, encoding_format="float"
        )
        default = await client.embeddings.create(model="echo", input="alpha")
        packed = await client.embeddings.create(
            model="echo", input="alpha", dimensions=5, encoding_format="base64"
        )
    alpha, beta = (d.embedding for d in five.data)
    assert len(alpha) == len(beta) == 5 and alpha != beta
    assert again.data[0].embedding == alpha
    assert len(default.data[0].embedding) == 16
    assert unpack(packed.data[0].embedding) == pytest.approx(alpha, rel=1e-6)
    for vector in (alpha, beta, default.data[0].embedding):
        assert math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-6)  # float32 on the wire
    assert five.usage.prompt_tokens > 0 and upstream.received == []
    row = (await log_rows(gateway))[0]
    assert (row["endpoint"], row["provider"], row["prompt_tokens"]) == (
        "embeddings", "echo", five.usage.prompt_tokens
    )  # fmt: skip


async def test_an_anthropic_model_is_refused_before_any_network(gateway):
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.embeddings.create(model="claude", input="hello")
    assert refused.value.code == "model_not_supported"
    assert refused.value.body["param"] == "model"
    [row] = await log_rows(gateway)
    assert (row["endpoint"], row["status"], row["status_code"]) == ("embeddings", "rejected", 400)
    assert row["attempts"] == 0


async def test_rpm_is_enforced_on_embeddings(gateway, upstream):
    async with sdk(gateway, SLOW_KEY) as client:
        for _ in range(2):
            await client.embeddings.create(model="fake-model", input="hi")
        with pytest.raises(openai.RateLimitError) as limited:
            await client.embeddings.create(model="fake-model", input="hi")
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["Retry-After"]) >= 1
    assert len(upstream.received) == 2
    statuses = [(r["endpoint"], r["status"]) for r in await log_rows(gateway)]
    assert statuses == [("embeddings", "ok")] * 2 + [("embeddings", "rejected")]


async def test_azure_gets_its_deployment_path_api_version_and_api_key(gateway, upstream):
    async with sdk(gateway) as client:
        raw = await client.embeddings.with_raw_response.create(
            model="az-embed", input="hello", encoding_format="float"
        )
    assert raw.content == upstream.answered[-1]
    sent = upstream.received[-1]
    assert (sent.method, sent.path) == (
        "POST",
        "/openai/deployments/my-embedding-deployment/embeddings",
    )
    assert sent.query == {"api-version": API_VERSION}
    assert sent.headers["api-key"] == AZURE_KEY and "Authorization" not in sent.headers
    assert sent.body["model"] == "my-embedding-deployment"
    assert len(raw.parse().data[0].embedding) == 8
    [row] = await log_rows(gateway)
    assert (row["endpoint"], row["provider"], row["prompt_tokens"]) == ("embeddings", "az", 5)
