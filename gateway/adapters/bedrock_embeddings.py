"""Embeddings on Bedrock through InvokeModel: Titan (one text per call, so a list of inputs is
several calls, a few at a time) and Cohere (one call for the list), answered in OpenAI's shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..accounting.tokens import estimate_tokens
from ..errors import InvalidRequest, clip
from ..translate import bedrock as tr
from ..translate.bedrock import embeddings as emb
from .base import Call
from .http import HttpReply
from .translated import TranslatedReply, unchanged

if TYPE_CHECKING:
    from .bedrock import BedrockUpstream

Json = dict[str, Any]
TITAN_CONCURRENCY = 8  # Titan calls of one request in flight at once


class MadeReply:
    """A whole answer the adapter made from several upstream answers."""

    __slots__ = ("body", "content_type", "retry_after", "status")

    def __init__(self, body: bytes):
        self.status = 200
        self.content_type = "application/json"
        self.retry_after: str | None = None
        self.body = body

    async def read(self) -> bytes:
        return self.body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.body

    def close(self) -> None:
        pass


async def embed(upstream: BedrockUpstream, call: Call) -> TranslatedReply | MadeReply:
    assert call.payload is not None
    family = emb.embedding_family(call.upstream_model)
    if family is None:
        raise InvalidRequest(
            f"The Bedrock model `{clip(call.upstream_model)}` is not a Titan or Cohere embedding"
            " model: the embeddings endpoint cannot use it.",
            param="model",
            code="model_not_supported",
        )
    items = emb.texts(call.payload)
    fmt = str(call.payload.get("encoding_format") or "float")
    if family == "cohere":
        [reply] = await _all(upstream, call, [emb.cohere_body(items)])
        if reply.status >= 400:
            return _failed(reply)
        vectors = emb.cohere_vectors(await reply.read())
        tokens = sum(max(1, estimate_tokens(t)) for t in items)  # Cohere reports none
        return MadeReply(emb.to_openai(vectors, call.public_model, fmt, tokens))
    dimensions = call.payload.get("dimensions")
    replies = await _all(upstream, call, [emb.titan_body(t, dimensions) for t in items])
    failed = next((r for r in replies if r.status >= 400), None)
    if failed is not None:
        for reply in replies:
            if reply is not failed:
                reply.close()
        return _failed(failed)
    answers = [emb.titan_vector(await r.read()) for r in replies]
    vectors = [vector for vector, _ in answers]
    tokens = sum(count for _, count in answers)
    return MadeReply(emb.to_openai(vectors, call.public_model, fmt, tokens))


async def _all(upstream: BedrockUpstream, call: Call, bodies: list[Json]) -> list[HttpReply]:
    """Every body's reply, a few in flight at once; on a transport failure the others close."""
    gate = asyncio.Semaphore(TITAN_CONCURRENCY)

    async def one(body: Json) -> HttpReply:
        async with gate:
            return await upstream.post(call, call.upstream_model, "invoke", body)

    results = await asyncio.gather(*(one(b) for b in bodies), return_exceptions=True)
    error = next((r for r in results if isinstance(r, BaseException)), None)
    if error is not None:
        for r in results:
            if isinstance(r, HttpReply):
                r.close()
        raise error
    return [r for r in results if isinstance(r, HttpReply)]


def _failed(reply: HttpReply) -> TranslatedReply:
    """An upstream error answer, in OpenAI's shape."""
    return TranslatedReply(reply, body=unchanged, error=tr.error_to_openai, stream=None)
