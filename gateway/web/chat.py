"""POST /v1/chat/completions: validate, admit, route, forward, relay, then account off the path.
A failure before the first relayed byte is a JSON error; after it, one in-stream error event."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from ..accounting import Outcome
from ..dispatch import Answer, dispatch, record_failure
from ..errors import (
    GatewayError,
    RateLimited,
    RequestTooLarge,
    ServiceUnavailable,
    session_not_found,
    stream_error_event,
)
from ..history import storable, with_history
from ..ratelimit_headers import ratelimit_headers
from ..relay import StreamRelay
from ..services import Services
from ..store import StoreUnavailable
from ..tokens import Usage, estimate_prompt_tokens, estimate_tokens, usage_from_body
from ..validation import ChatRequest, parse_json_object, upstream_payload, validate_chat
from .keys import PRINCIPAL, REQUEST_ID, SERVICES

STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
SESSION_WAIT_S = 2.0


async def _messages_with_history(s: Services, chat: ChatRequest, uid: str) -> list[dict]:
    """The request's messages, with the session's history window when session_id is given."""
    if chat.session_id is None:
        return chat.messages
    try:
        await s.writer.wait_session(chat.session_id, SESSION_WAIT_S)
        loaded = await s.store.load_history(
            uid, chat.session_id, s.config.sessions.history_max_messages
        )
    except StoreUnavailable:
        raise ServiceUnavailable("Sessions are unavailable: the database is down.") from None
    if loaded is None:
        raise session_not_found(chat.session_id)
    _, history = loaded
    limits = s.config.sessions
    return with_history(
        history, chat.messages, limits.history_max_tokens, limits.history_max_messages
    )


async def chat_completions(request: web.Request) -> web.StreamResponse:
    s = request.app[SERVICES]
    principal = request[PRINCIPAL]
    outcome = Outcome(request_id=request[REQUEST_ID], principal=principal, model="")
    headers: dict[str, str] | None = None
    try:
        chat = validate_chat(parse_json_object(await _read_body(request)))
        outcome.model, outcome.stream, outcome.session_id = chat.model, chat.stream, chat.session_id
        router = s.router  # one routing table for the whole request, even across a reload
        outcome.route_model = router.lookup(chat.model)[0]
        targets = router.plan(chat.model, s.clock())
        messages = await _messages_with_history(s, chat, principal.user)
        limits = s.quotas.limits_for(principal.user, principal.tier)
        decision = await s.limiter.admit(principal.user, limits, time.time())
        headers = ratelimit_headers(decision)
        if not decision.allowed:
            s.metrics.rate_limited.labels(decision.refused_by).inc()
            if decision.refused_by == "tpd":
                raise RateLimited(
                    "You have used your daily token quota.", code="daily_token_quota_exceeded"
                )
            raise RateLimited(f"Rate limit reached: {limits.rpm} requests per minute.")
        outcome.new_messages = storable(chat.messages)
        answer = await dispatch(
            targets,
            lambda target: upstream_payload(chat, target.upstream_model, messages),
            s.upstreams,
            router.health,
            s.config.routing,
            s.metrics,
            outcome.request_id,
            chat.stream,
            clock=s.clock,
        )
        outcome.target, outcome.attempts = answer.target, answer.attempts
        prompt_estimate = estimate_prompt_tokens(messages)
        if chat.stream:
            return await _stream(request, s, answer, chat, outcome, headers, prompt_estimate)
        return _complete(answer, outcome, headers, prompt_estimate)
    except GatewayError as error:
        outcome.status = "rejected" if error.target is None else "upstream_error"
        outcome.status_code = error.status
        outcome.error = f"{error.code}: {error.message}"
        outcome.attempts = error.attempts
        outcome.target = error.target  # type: ignore[assignment]
        if headers is None and error.status != 401:
            headers = await _peek_headers(s, principal)
        error.headers.update(headers or {})
        raise
    except asyncio.CancelledError:
        outcome.status, outcome.status_code = "client_closed", 499
        raise
    except Exception as exc:  # a bug: the middleware answers 500; the log row must say so too
        outcome.status, outcome.status_code = "error", 500
        outcome.error = f"internal_error: {type(exc).__name__}"
        raise
    finally:
        _finish(s, outcome)


async def _read_body(request: web.Request) -> bytes:
    """The body; an oversized one is a GatewayError here so it is logged as `rejected`."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestTooLarge("The request body is larger than this gateway accepts.") from None


def _finish(s: Services, outcome: Outcome) -> None:
    # Per-message estimates are only stored with a session turn.
    tokens = (
        [estimate_prompt_tokens([m]) for m in outcome.new_messages] if outcome.session_id else []
    )
    s.recorder.finish(outcome, tokens)


async def _peek_headers(s: Services, principal) -> dict[str, str]:
    """Rate-limit headers for a request refused before admission (it consumed nothing)."""
    try:
        limits = s.quotas.limits_for(principal.user, principal.tier)
        return ratelimit_headers(await s.limiter.peek(principal.user, limits, time.time()))
    except Exception:
        return {}


def _complete(
    answer: Answer, outcome: Outcome, headers: dict[str, str], prompt_estimate: int
) -> web.Response:
    usage, text = usage_from_body(answer.body)
    if usage is None:
        usage = _estimated(prompt_estimate, text)
    outcome.usage, outcome.answer = usage, text
    response = web.Response(status=answer.reply.status, body=answer.body, headers=headers)
    response.headers["Content-Type"] = answer.reply.content_type
    return response


def _estimated(prompt_estimate: int, text: str) -> Usage:
    return Usage(prompt_estimate, estimate_tokens(text), estimated=True)


async def _stream(
    request: web.Request,
    s: Services,
    answer: Answer,
    chat: ChatRequest,
    outcome: Outcome,
    headers: dict[str, str],
    prompt_estimate: int,
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**STREAM_HEADERS, **headers})
    response.headers["X-Request-Id"] = outcome.request_id
    relay = StreamRelay(drop_usage_event=not chat.client_wants_usage)
    s.metrics.active_streams.inc()
    try:
        await response.prepare(request)
        assert answer.rest is not None
        await relay.run(answer.first_chunk, answer.rest, response.write)
        await response.write_eof()
    except GatewayError as error:  # upstream failed mid-stream: tell the client, then close
        outcome.status, outcome.status_code = "upstream_error", 200
        record_failure(s.router.health, s.metrics, answer.target, "mid_stream", s.clock())
        outcome.error = f"{error.code}: {error.message}"
        response.force_close()
        try:
            await response.write(stream_error_event(error))
            await response.write_eof()
        except ConnectionError:
            pass
    except (ConnectionError, asyncio.CancelledError) as exc:
        outcome.status, outcome.status_code = "client_closed", 499
        if isinstance(exc, asyncio.CancelledError):
            raise
    finally:
        answer.reply.close()
        s.metrics.active_streams.dec()
        acc = relay.accounting
        acc.settle(need_text=outcome.session_id is not None or s.recorder.log_content)
        outcome.first_byte_at = relay.first_byte_at
        outcome.answer = acc.text
        outcome.usage = acc.final_usage(prompt_estimate)
        if acc.error is not None and outcome.status == "ok":
            outcome.status, outcome.error = "upstream_error", "error event in upstream stream"
    return response
