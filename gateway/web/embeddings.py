"""POST /v1/embeddings and POST /v1/completions (legacy text completions): validated, routed,
admitted and accounted like chat; the answer is relayed as upstream (or the adapter) gave it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..accounting.tokens import Usage, estimate_tokens, usage_from_body
from ..errors import InvalidRequest
from ..validation import (
    MAX_CHOICES,
    check_ints,
    client_wants_usage,
    is_token_id,
    optional_positive_int,
    require_model,
    require_stream,
    reserialisable,
)
from .proxy import exchange

ENCODINGS = ("float", "base64")
MAX_INPUTS = 2048  # OpenAI's limit on the entries of one embeddings request
MAX_DIMENSIONS = 8192  # twice the widest embedding model there is; bounds the echo provider's work


def _input_estimate(value: Any) -> int:
    """Prompt tokens when upstream reports none: text by the usual estimate, token ids as is."""
    if isinstance(value, str):
        return estimate_tokens(value)
    if isinstance(value, list):
        return sum(_input_estimate(v) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return 1  # one token id
    return 0


def _check_input(value: Any) -> None:
    """`input`: a non-empty string, or 1 to 2048 non-empty strings, token ids (non-negative
    integers) or non-empty token-id arrays, all of one kind: what every provider type can take."""
    if value is None:
        raise InvalidRequest(
            "`input` is required.", param="input", code="missing_required_parameter"
        )
    if isinstance(value, str) and value:
        return
    if isinstance(value, list) and 0 < len(value) <= MAX_INPUTS:
        if all(isinstance(v, str) and v for v in value):
            return
        if all(is_token_id(v) for v in value):
            return
        if all(isinstance(v, list) and v and all(is_token_id(t) for t in v) for v in value):
            return
    raise InvalidRequest(
        "`input` must be a non-empty string, or an array of 1 to 2048 non-empty strings, token "
        "ids, or non-empty token-id arrays.",
        param="input",
        code="invalid_type" if not isinstance(value, str | list) else "invalid_value",
    )


def _validate_embeddings(payload: dict[str, Any]) -> str:
    model = require_model(payload)
    _check_input(payload.get("input"))
    fmt = payload.get("encoding_format")
    if fmt is not None and fmt not in ENCODINGS:
        raise InvalidRequest(
            "`encoding_format` must be float or base64.",
            param="encoding_format",
            code="invalid_value",
        )
    optional_positive_int(payload, "dimensions")
    dimensions = payload.get("dimensions")
    if dimensions is not None and dimensions > MAX_DIMENSIONS:
        raise InvalidRequest(
            f"`dimensions` must be at most {MAX_DIMENSIONS}.",
            param="dimensions",
            code="invalid_value",
        )
    reserialisable(payload)
    return model


async def embeddings(request: web.Request) -> web.StreamResponse:
    async with exchange(request, "embeddings") as ex:
        payload = await ex.read_json()
        model = _validate_embeddings(payload)
        targets = ex.plan(model)
        entry = await ex.cached(payload)
        if entry is not None:
            return await ex.answer_cached(entry)
        await ex.admit(_input_estimate(payload.get("input")), 0)
        answer = await ex.forward(targets, lambda target: ex.call(target, payload))
        usage, _ = usage_from_body(answer.body)
        if usage is None:
            usage = Usage(_input_estimate(payload.get("input")), 0, estimated=True)
        return ex.respond(answer.reply.status, answer.body, answer.reply.content_type, usage)


def _validate_completions(payload: dict[str, Any]) -> tuple[str, bool]:
    model = require_model(payload)
    prompt = payload.get("prompt")
    if prompt is None:
        raise InvalidRequest(
            "`prompt` is required.", param="prompt", code="missing_required_parameter"
        )
    optional_positive_int(payload, "max_tokens")
    optional_positive_int(payload, "n", MAX_CHOICES)
    optional_positive_int(payload, "best_of", MAX_CHOICES)
    check_ints(payload, ("seed", "logprobs"))
    client_wants_usage(payload)  # stream_options: an object, or 400 (it is merged into below)
    stream = require_stream(payload)
    reserialisable(payload)
    return model, stream


async def completions(request: web.Request) -> web.StreamResponse:
    async with exchange(request, "completions") as ex:
        payload = await ex.read_json()
        model, stream = _validate_completions(payload)
        targets = ex.plan(model, stream)
        entry = await ex.cached(payload, stream)
        if entry is not None:
            return await ex.answer_cached(entry, stream, client_wants_usage(payload))
        asked = optional_positive_int(payload, "max_tokens")
        choices = max(optional_positive_int(payload, f, MAX_CHOICES) or 1 for f in ("n", "best_of"))
        await ex.admit(
            _input_estimate(payload.get("prompt")),
            asked or 16,  # the legacy API's default max_tokens
            choices,  # best_of answers are made (and billed) upstream, n of them returned
        )
        options = payload.get("stream_options")
        wants_usage = client_wants_usage(payload)
        # Sent explicitly: the legacy API's default is what was reserved, whoever answers.
        sent = payload if asked else {**payload, "max_tokens": 16}
        if stream:
            options = payload.get("stream_options") or {}
            sent = {**sent, "stream_options": {**options, "include_usage": True}}
        answer = await ex.forward(targets, lambda target: ex.call(target, sent, stream=stream))
        return await ex.answer_openai(answer, _input_estimate(payload.get("prompt")), wants_usage)
