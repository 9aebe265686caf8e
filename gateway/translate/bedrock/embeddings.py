"""OpenAI embeddings requests -> Bedrock InvokeModel bodies of Titan and Cohere embedding models,
and their answers -> OpenAI's embeddings list. Pure: dicts and bytes in and out."""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import InvalidRequest, ProviderError
from ..gemini import gemini_embeddings_to_openai

Json = dict[str, Any]


def embedding_family(model_id: str) -> str | None:
    """ "titan" or "cohere" for a Bedrock embedding model id (or profile ARN), else None."""
    if "titan-embed" in model_id:
        return "titan"
    if "cohere.embed" in model_id:
        return "cohere"
    return None


def texts(payload: Json) -> list[str]:
    """The request's inputs as text; Bedrock's embedding models take no token ids (400)."""
    value = payload.get("input")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise InvalidRequest(
            "This model takes text inputs only: `input` must be a string or an array of strings.",
            param="input",
            code="invalid_value",
        )
    return items


def titan_body(text: str, dimensions: object) -> Json:
    """One Titan request (Titan embeds one text per call)."""
    body: Json = {"inputText": text}
    if isinstance(dimensions, int):
        body["dimensions"] = dimensions
    return body


def cohere_body(items: list[str]) -> Json:
    """One Cohere request for every text; OpenAI's embeddings are for documents by default."""
    return {"texts": items, "input_type": "search_document"}


def titan_vector(body: bytes) -> tuple[list[Any], int]:
    """(the embedding, its input token count) of a Titan answer."""
    answer = _load(body)
    vector, tokens = answer.get("embedding"), answer.get("inputTextTokenCount")
    if not isinstance(vector, list):
        raise ProviderError("The provider sent an embeddings answer without `embedding`.")
    return vector, tokens if isinstance(tokens, int) else 0


def cohere_vectors(body: bytes) -> list[list[Any]]:
    """The embeddings of a Cohere answer (`embeddings` a list, or `{"float": [...]}`)."""
    found = _load(body).get("embeddings")
    if isinstance(found, dict):
        found = found.get("float")
    if not isinstance(found, list) or not all(isinstance(v, list) for v in found):
        raise ProviderError("The provider sent an embeddings answer without `embeddings`.")
    return found


def to_openai(
    vectors: list[list[Any]], public_model: str, encoding_format: str, prompt_tokens: int
) -> bytes:
    """OpenAI's embeddings list (base64: little-endian float32, as for every provider)."""
    batch = orjson.dumps({"embeddings": [{"values": v} for v in vectors]})
    return gemini_embeddings_to_openai(batch, public_model, encoding_format, prompt_tokens)


def _load(body: bytes) -> Json:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise ProviderError("The provider's answer could not be read.")
    return answer
