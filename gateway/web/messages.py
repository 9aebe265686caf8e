"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API at the gateway.
`anthropic` deployments get the body unchanged (model rewritten) and the answer is relayed byte
for byte; every other type is bridged through chat completions and translated back."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..access.governance import check_model
from ..accounting.tokens import Usage, estimate_tokens, usage_from_body
from ..adapters.base import Call
from ..adapters.capabilities import relays_messages
from ..errors import GatewayError, InvalidRequest, UpstreamRejected
from ..proxy.dispatch import Answer, DispatchFailed, dispatch
from ..proxy.event_relay import PassthroughRelay, TranslatingRelay
from ..routing import Target
from ..tracing import NO_TRACE
from ..translate.messages import (
    ChatToMessagesStream,
    chat_to_message,
    estimate_input_tokens,
    messages_to_chat,
    openai_error_to_anthropic,
    validate_messages_request,
)
from ..translate.messages.usage import MessagesStreamReader, message_usage
from .keys import REQUEST_ID, SERVICES, TRACE, UPSTREAM_S
from .proxy import Exchange, exchange, read_json

# Client headers that travel to an `anthropic` provider: the API version and beta flags are the
# client's business with Anthropic (a new beta flag must not need a gateway release).
FORWARDED = ("anthropic-version", "anthropic-beta")


def _forwarded(request: web.Request) -> dict[str, str]:
    """The forwarded headers; 400 for a value that is not printable ASCII (bad bytes included;
    a tab is allowed inside a header value, as HTTP allows it)."""
    found = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    for name, value in found.items():
        if not (value.isascii() and value.replace("\t", " ").isprintable()):
            raise InvalidRequest(f"`{name}` must be printable ASCII.", param=name)
    return found


def _relayed(target: Target) -> bool:
    return relays_messages(target.provider.type, target.upstream_model)


def _counted(target: Target) -> bool:
    """count_tokens asks Anthropic's own endpoint; the clouds' Claude models are estimated."""
    return target.provider.type == "anthropic"


def _error_event(error: GatewayError, _events: int = 0) -> bytes:
    """Anthropic's in-stream `error` event."""
    payload = {"type": "error", "error": {"type": "api_error", "message": error.message}}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


class _Plan:
    def __init__(self, ex: Exchange, body: dict[str, Any], stream: bool):
        self.ex = ex
        self.body = body
        self.stream = stream
        self.headers = _forwarded(ex.request)
        self._chat: dict[str, Any] | None = None

    def chat(self) -> dict[str, Any]:
        if self._chat is None:
            self._chat = messages_to_chat(self.body)
        return self._chat

    def call(self, target: Target) -> Call:
        if _relayed(target):
            return self.ex.call(
                target, self.body, endpoint="messages", stream=self.stream, headers=self.headers
            )
        return self.ex.call(target, self.chat(), endpoint="chat", stream=self.stream)


async def create_message(request: web.Request) -> web.StreamResponse:
    async with exchange(request, "messages") as ex:
        body = await ex.read_json()
        validate_messages_request(body)
        stream = body.get("stream") is True
        targets = ex.plan(str(body["model"]), stream)
        plan = _Plan(ex, body, stream)
        if not all(_relayed(t) for t in targets):
            plan.chat()  # bad input is refused before admission, whoever serves it
        estimate = estimate_input_tokens(body)
        await ex.admit(estimate, int(body["max_tokens"]))
        try:
            answer = await ex.forward(targets, plan.call)
        except UpstreamRejected as error:
            target = ex.outcome.target
            if target is not None and not _relayed(target):  # an OpenAI-shaped 4xx body
                error.raw_body = openai_error_to_anthropic(error.status, error.raw_body)
                error.content_type = "application/json"
            raise
        if answer.call.endpoint == "messages":
            return await _relay(ex, answer, stream, estimate)
        return await _bridge(ex, answer, stream, estimate)


async def _relay(ex: Exchange, answer: Answer, stream: bool, estimate: int) -> web.StreamResponse:
    if stream:
        relay = PassthroughRelay(MessagesStreamReader(), _error_event, estimate)
        return await ex.relay(answer, relay)
    usage, text = message_usage(answer.body)
    ex.outcome.answer = text
    if usage is None:
        usage = Usage(estimate, estimate_tokens(text), estimated=True)
    return ex.respond(answer.reply.status, answer.body, answer.reply.content_type, usage)


async def _bridge(ex: Exchange, answer: Answer, stream: bool, estimate: int) -> web.StreamResponse:
    o = ex.outcome
    message_id = f"msg_{o.request_id}"
    if stream:
        translator = ChatToMessagesStream(o.model, message_id, estimate)
        return await ex.relay(answer, TranslatingRelay(translator, estimate))
    usage, text = usage_from_body(answer.body)
    o.answer = text
    if usage is None:
        usage = Usage(estimate, estimate_tokens(text), estimated=True)
    body = chat_to_message(answer.body, o.model, message_id, input_tokens_estimate=estimate)
    return ex.respond(200, body, "application/json", usage)


async def count_tokens(request: web.Request) -> web.Response:
    """{"input_tokens": N}: Anthropic's own count for `anthropic` deployments, else an estimate.
    Held to the key's model list and counted against the rpm like any request; it reserves no
    budget, charges no tokens and writes no request-log row."""
    s = request.app[SERVICES]
    body = await read_json(request)
    validate_messages_request(body, count_tokens=True)
    ex = Exchange(request, "count_tokens")
    router = ex.router
    model = str(body["model"])
    ex.outcome.route_model = router.lookup(model)[0]  # unknown model: 404
    check_model(model, ex.principal, ex.team)
    try:
        await ex.admit(costs=False)
    except GatewayError as error:
        error.headers.update(ex.headers or {})
        raise
    targets = [t for t in router.plan(model, s.clock()) if _counted(t)]
    if targets:

        def call_for(target: Target) -> Call:
            return Call(
                endpoint="count_tokens",
                payload={**body, "model": target.upstream_model},
                request_id=request[REQUEST_ID],
                public_model=model,
                upstream_model=target.upstream_model,
                headers=_forwarded(request),
            )

        try:
            answer = await dispatch(
                targets, call_for, s.upstreams, router.health, s.config.routing, s.metrics,
                clock=s.clock, trace=request.get(TRACE, NO_TRACE),
            )  # fmt: skip
        except DispatchFailed as failed:
            request[UPSTREAM_S] = failed.upstream_s
            raise failed.error from None
        request[UPSTREAM_S] = answer.upstream_s
        response = web.Response(status=answer.reply.status, body=answer.body, headers=ex.headers)
        response.headers["Content-Type"] = answer.reply.content_type
        return response
    return web.Response(
        body=orjson.dumps({"input_tokens": estimate_input_tokens(body)}),
        content_type="application/json",
        headers=ex.headers,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", create_message)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
