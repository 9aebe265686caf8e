"""POST /v1/embeddings and POST /v1/completions (legacy text completions): validated, routed,
admitted and accounted like chat; the answer is relayed as upstream (or the adapter) gave it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import InvalidRequest
from ..relay import StreamRelay
from ..tokens import Usage, estimate_tokens, usage_from_body
from ..validation import optional_positive_int, require_model, require_stream
from .proxy import exchange

ENCODINGS = ("float", "base64")


def _input_estimate(value: Any) -> int:
    """Prompt tokens when upstream reports none: text by the usual estimate, token ids as is."""
    if isinstance(value, str):
        return estimate_tokens(value)
    if isinstance(value, list):
        return sum(
            len(v) if isinstance(v, list) else 1 if isinstance(v, int) else _input_estimate(v)
            for v in value
        )
    return 0


def _validate_embeddings(payload: dict[str, Any]) -> str:
    model = require_model(payload)
    value = payload.get("input")
    if value is None:
        raise InvalidRequest(
            "`input` is required.", param="input", code="missing_required_parameter"
        )
    if not isinstance(value, str | list) or value in ("", []):
        raise InvalidRequest(
            "`input` must be a non-empty string or array.", param="input", code="invalid_type"
        )
    fmt = payload.get("encoding_format")
    if fmt is not None and fmt not in ENCODINGS:
        raise InvalidRequest("`encoding_format` must be float or base64.", param="encoding_format")
    optional_positive_int(payload, "dimensions")
    return model


async def embeddings(request: web.Request) -> web.StreamResponse:
    async with exchange(request, "embeddings") as ex:
        payload = await ex.read_json()
        model = _validate_embeddings(payload)
        targets = ex.plan(model)
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
    return model, require_stream(payload)


async def completions(request: web.Request) -> web.StreamResponse:
    async with exchange(request, "completions") as ex:
        payload = await ex.read_json()
        model, stream = _validate_completions(payload)
        targets = ex.plan(model, stream)
        asked = payload.get("max_tokens")
        await ex.admit(
            _input_estimate(payload.get("prompt")),
            asked if isinstance(asked, int) else 16,  # the legacy API's default max_tokens
        )
        options = payload.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        sent = payload
        if stream:
            sent = {**payload, "stream_options": {**(options or {}), "include_usage": True}}
        answer = await ex.forward(targets, lambda target: ex.call(target, sent, stream=stream))
        prompt_estimate = _input_estimate(payload.get("prompt"))
        if stream:
            relay = StreamRelay(
                drop_usage_event=not wants_usage,
                prompt_estimate=prompt_estimate,
                add_usage=wants_usage,
                need_text=ex.s.recorder.log_content,
            )
            return await ex.relay(answer, relay)
        usage, text = usage_from_body(answer.body)
        ex.outcome.answer = text
        if usage is None:
            usage = Usage(prompt_estimate, estimate_tokens(text), estimated=True)
        return ex.respond(answer.reply.status, answer.body, answer.reply.content_type, usage)
