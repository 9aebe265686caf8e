"""POST /v1/responses and GET/DELETE /v1/responses/{id}[/input_items] (OpenAI's Responses API).
`openai`/`azure` deployments get the bytes unchanged and a response-id -> deployment affinity;
every other type is bridged through chat completions, its answers stored for follow-ups."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from ..access.governance import may_use, team_of
from ..accounting.tokens import (
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    image_tokens,
    usage_from_body,
)
from ..adapters.base import Call
from ..config import responses_bridged
from ..errors import GatewayError, InvalidRequest, NotFound, ProviderError, clip
from ..proxy.affinity import Remembered
from ..proxy.dispatch import Answer
from ..proxy.event_relay import PassthroughRelay, TranslatingRelay
from ..routing import Target
from ..store import StoredResponse, Team
from ..tracing import NO_ATTEMPT, AttemptTrace
from ..translate.responses import (
    ChatToResponsesStream,
    ResponseContext,
    chat_to_response,
    plan_tools,
    responses_to_chat,
    stored_history,
)
from ..translate.responses.usage import ResponsesStreamReader, response_summary
from ..validation import (
    check_ints,
    optional_positive_int,
    require_model,
    require_stream,
    reserialisable,
)
from .keys import PRINCIPAL, REQUEST_ID, SERVICES, TRACE
from .proxy import Exchange, exchange
from .respond import json_response, query_choice, query_int

ORDERS = ("asc", "desc")
DROPPED_TOOLS = "x-gateway-dropped-tools"


def _error_event(error: GatewayError, sequence_number: int) -> bytes:
    """A Responses stream's `error` event, numbered after the events already relayed."""
    event = {
        "type": "error",
        "code": "stream_error",
        "message": error.message,
        "param": None,
        "sequence_number": sequence_number,
    }
    return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"


def _previous_id(body: dict[str, Any]) -> str | None:
    value = body.get("previous_response_id")
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidRequest(
            "`previous_response_id` must be a non-empty string.",
            param="previous_response_id",
            code="invalid_type",
        )
    return value


def input_items(body: dict[str, Any], response_id: str) -> list[dict[str, Any]]:
    """The request's input as Responses items with ids (for GET .../input_items)."""
    value = body.get("input")
    raw = [{"role": "user", "content": value}] if isinstance(value, str) else value or []
    items = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        item = dict(item)
        item.setdefault("type", "message")
        if not isinstance(item.get("id"), str) or not item["id"]:  # the client's, if usable
            item["id"] = f"item_{response_id.removeprefix('resp_')}_{i}"
        if item["type"] == "message":
            if isinstance(item.get("content"), str):
                item["content"] = [{"type": "input_text", "text": item["content"]}]
            item.setdefault("status", "completed")
        items.append(item)
    return items


class _Plan:
    """Where a Responses request goes: native targets relay, bridged ones go through chat."""

    def __init__(self, ex: Exchange, body: dict[str, Any], stream: bool, targets: list[Target]):
        self.ex = ex
        self.body = body
        self.stream = stream
        self.history: list[dict[str, Any]] = []
        self._chat: dict[str, Any] | None = None
        # A bridged model may refuse hosted tools rather than have them left out.
        self.reject_hosted = any(
            t.model.hosted_tools == "reject" and responses_bridged(t.provider, t.model)
            for t in targets
        )

    def dropped_tools(self) -> list[str]:
        """The hosted tools a bridge leaves out (named in the x-gateway-dropped-tools header)."""
        tools = self.body.get("tools")
        return plan_tools(tools, self.reject_hosted).dropped if tools else []

    def replay(self, history: list[dict[str, Any]]) -> None:
        """Put a stored response's turns before this request's input."""
        self.history = history
        self._chat = None  # a payload built before (to validate the input) lacks the history

    def chat_payload(self) -> dict[str, Any]:
        if self._chat is None:
            self._chat = responses_to_chat(self.body, self.history, self.reject_hosted)
        return self._chat

    def call(self, target: Target) -> Call:
        if not responses_bridged(target.provider, target.model):
            return self.ex.call(target, self.body, stream=self.stream)
        return self.ex.call(target, self.chat_payload(), endpoint="chat", stream=self.stream)


async def _route_follow_up(
    ex: Exchange, plan: _Plan, targets: list[Target], previous: str
) -> list[Target]:
    """A follow-up goes where its previous response was made: the remembered deployment, or a
    bridged deployment replaying the stored response as history."""
    s = ex.s
    remembered = await s.affinity.lookup(previous)
    if remembered is not None and _owns(ex.request, remembered.user, remembered.model):
        pinned = [t for t in targets if t.deployment_id == remembered.deployment_id]
        if pinned:
            return pinned[:1]
    bridged = [t for t in targets if responses_bridged(t.provider, t.model)]
    if not bridged:
        # Upstream would answer any id made with the provider's key: only the caller's own go.
        if remembered is None or not _owns(ex.request, remembered.user, remembered.model):
            raise _previous_not_found(previous)
        return targets
    stored = await s.store.get_response(ex.principal.user, previous)
    if stored is None or not _owns(ex.request, stored.uid, stored.model):
        raise _previous_not_found(previous)
    plan.replay(orjson.loads(stored.history))
    return bridged


def _previous_not_found(previous: str) -> InvalidRequest:
    """One answer for a previous response that is missing and for one that is someone else's."""
    return InvalidRequest(
        f"Previous response with id `{clip(previous)}` was not found.",
        param="previous_response_id",
        code="unsupported_parameter",
    )


def _owns(request: web.Request, user: str, model: str) -> bool:
    """Whether the caller may see a response of `user` made with `model`: the same user, and
    the key's (and its team's) model list allows the model."""
    principal = request[PRINCIPAL]
    return principal.user == user and may_use(model, principal, _team(request))


def _team(request: web.Request) -> Team | None:
    """The caller's team (in-memory caches: no round trip)."""
    principal, s = request[PRINCIPAL], request.app[SERVICES]
    return s.teams.get(team_of(principal, s.quotas.override_for(principal.user)))


def _prompt_estimate(body: dict[str, Any]) -> int:
    """The worst case's prompt: input, instructions, tools and the text format by JSON size."""
    sent = {k: body.get(k) for k in ("input", "instructions", "tools", "tool_choice", "text")}
    return estimate_tokens(orjson.dumps(sent).decode()) + image_tokens(body.get("input"))


async def create_response(request: web.Request) -> web.StreamResponse:
    async with exchange(request, "responses") as ex:
        body = await ex.read_json()
        model, stream = require_model(body), require_stream(body)
        max_output = optional_positive_int(body, "max_output_tokens")
        check_ints(body, ("top_logprobs", "max_tool_calls"))
        reserialisable(body)  # relayed, or echoed back in the Response: either way re-written
        previous = _previous_id(body)
        targets = ex.plan(model, stream)
        plan = _Plan(ex, body, stream, targets)
        if any(responses_bridged(t.provider, t.model) for t in targets):
            plan.chat_payload()  # bad input is refused before admission, whoever serves it
        if previous is not None:
            targets = await _route_follow_up(ex, plan, targets, previous)
        entry = await ex.cached(body, stream)
        if entry is not None:
            return await ex.answer_cached(entry, stream)
        await ex.admit(_prompt_estimate(body), max_output)
        answer = await ex.forward(targets, plan.call)
        if answer.call.endpoint == "responses":
            return await _relayed(ex, answer, body, stream)
        return await _bridged(ex, answer, plan)


async def _relayed(
    ex: Exchange, answer: Answer, body: dict[str, Any], stream: bool
) -> web.StreamResponse:
    """An openai/azure answer: bytes unchanged; its id remembered with the deployment."""
    prompt_estimate = estimate_tokens(orjson.dumps(body.get("input")).decode())
    p = ex.principal
    entry = Remembered(answer.target.deployment_id, p.user, p.key_id, ex.outcome.model)
    if stream:
        reader = ResponsesStreamReader()
        relay = PassthroughRelay(reader, _error_event, prompt_estimate)

        async def remember() -> None:
            if reader.response_id:
                await ex.s.affinity.remember(reader.response_id, entry)

        response = await ex.relay(answer, relay, finish=remember)
        if not relay.complete:
            await remember()  # a stream cut short: its response may still be asked for upstream
        return response
    response_id, usage, _ = response_summary(answer.body)
    if response_id and answer.reply.status < 400:
        await ex.s.affinity.remember(response_id, entry)
    if usage is None:
        usage = Usage(prompt_estimate, 0, estimated=True)
    return ex.respond(answer.reply.status, answer.body, answer.reply.content_type, usage)


async def _bridged(ex: Exchange, answer: Answer, plan: _Plan) -> web.StreamResponse:
    """A chat answer turned into a Response (or its events), stored when `store` is not false."""
    o = ex.outcome
    dropped = plan.dropped_tools()
    if dropped:
        ex.headers = {**(ex.headers or {}), DROPPED_TOOLS: ",".join(dropped)}
    # Not the request id: a client chooses that (X-Request-Id), and ids must not collide.
    response_id = f"resp_{uuid.uuid4().hex}"
    ctx = ResponseContext.from_request(
        plan.body, response_id=response_id, model=o.model, created_at=int(time.time())
    )
    messages = plan.chat_payload()["messages"]
    prompt_estimate = estimate_prompt_tokens(messages)
    if plan.stream:
        translator = ChatToResponsesStream(ctx)

        async def store() -> None:
            final = translator.final_response()
            if final is not None and ctx.store:
                await _store(ex, plan, final, messages)

        relay = TranslatingRelay(translator, prompt_estimate)
        return await ex.relay(answer, relay, finish=store)
    if answer.reply.status >= 400:  # an upstream 4xx the adapter put in OpenAI's shape
        usage = Usage(prompt_estimate, 0, estimated=True)
        return ex.respond(answer.reply.status, answer.body, "application/json", usage)
    reported, text = usage_from_body(answer.body)
    o.answer = text
    result = chat_to_response(answer.body, ctx)
    if ctx.store:
        await _store(ex, plan, result, messages)
    usage = reported or Usage(prompt_estimate, estimate_tokens(text), estimated=True)
    return ex.respond(200, orjson.dumps(result), "application/json", usage)


async def _store(
    ex: Exchange, plan: _Plan, response: dict[str, Any], messages: list[dict[str, Any]]
) -> None:
    response_id = str(response["id"])
    row = StoredResponse(
        response_id=response_id,
        uid=ex.principal.user,
        model=ex.outcome.model,
        response=orjson.dumps(response).decode(),
        input_items=orjson.dumps(input_items(plan.body, response_id)).decode(),
        history=orjson.dumps(stored_history(messages, response)).decode(),
        created_at=ex.outcome.created_at,
    )
    await ex.s.store.save_response(row)


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id `{clip(response_id)}` not found.", param="response_id")


async def _stored(request: web.Request, response_id: str) -> StoredResponse:
    """The caller's stored (bridged) response, or 404 when it is missing or out of its scope."""
    s = request.app[SERVICES]
    stored = await s.store.get_response(request[PRINCIPAL].user, response_id)
    if stored is None or not _owns(request, stored.uid, stored.model):
        raise _not_found(response_id)
    return stored


async def _forward_to_owner(
    request: web.Request, method: str, path: str, query: dict[str, str] | None = None
) -> web.Response | None:
    """GET/DELETE on a response made by an openai/azure deployment: asked of that deployment
    (with `query`, the parameters the gateway checked); its 5xx is our 502, like any upstream's."""
    s = request.app[SERVICES]
    response_id = request.match_info["response_id"]
    remembered = await s.affinity.lookup(response_id)
    if remembered is None:
        return None
    if not _owns(request, remembered.user, remembered.model):
        raise _not_found(response_id)  # exactly as for an id nobody made
    provider_name, _, upstream_model = remembered.deployment_id.partition("/")
    upstream = s.upstreams.clients.get(provider_name)
    if upstream is None:
        return None
    call = Call(
        endpoint="responses",
        payload=None,
        request_id=request[REQUEST_ID],
        public_model="",
        upstream_model=upstream_model,
        method=method,
        path=path,
        query=query or {},
    )
    span = _attempt_span(request, remembered, upstream_model, call)
    call.trace.update(span.headers)
    try:
        reply = await upstream.send(call)
        try:
            body = await reply.read()
        finally:
            reply.close()
    except BaseException as exc:
        span.end(None, type(exc).__name__)
        raise
    span.end(reply.status)
    if reply.status >= 500:
        raise ProviderError(f"The provider failed (HTTP {reply.status}).")
    if reply.status == 404:  # deleted upstream: our own 404, as documented (code not_found)
        raise _not_found(response_id)
    response = web.Response(status=reply.status, body=body)
    response.headers["Content-Type"] = reply.content_type
    return response


def _attempt_span(
    request: web.Request, remembered: Remembered, upstream_model: str, call: Call
) -> AttemptTrace:
    """The client span of a call on a stored response, when the request is traced and its
    model and provider are still configured."""
    trace = request[TRACE]
    if not trace.recording:
        return NO_ATTEMPT
    s = request.app[SERVICES]
    provider = s.config.providers.get(remembered.deployment_id.partition("/")[0])
    try:
        model, _ = s.router.lookup(remembered.model)
    except GatewayError:
        return NO_ATTEMPT
    if provider is None:
        return NO_ATTEMPT
    return trace.attempt(Target(model, provider, upstream_model), call, 1)


async def get_response(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    forwarded = await _forward_to_owner(request, "GET", f"/{response_id}")
    if forwarded is not None:
        return forwarded
    stored = await _stored(request, response_id)
    return web.Response(body=stored.response.encode(), content_type="application/json")


async def delete_response(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    forwarded = await _forward_to_owner(request, "DELETE", f"/{response_id}")
    if forwarded is not None:
        return forwarded
    s, principal = request.app[SERVICES], request[PRINCIPAL]
    team = _team(request)
    if principal.models is not None or (team is not None and team.models is not None):
        await _stored(request, response_id)  # a scoped key deletes only what it may read
    if not await s.store.delete_response(principal.user, response_id):
        raise _not_found(response_id)
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


async def list_input_items(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    order = query_choice(request, "order", ORDERS) or "desc"
    limit = query_int(request, "limit", 20, 1, 100)
    after = request.query.get("after") or None
    query = {"order": order, "limit": str(limit), **({"after": after} if after else {})}
    forwarded = await _forward_to_owner(request, "GET", f"/{response_id}/input_items", query)
    if forwarded is not None:
        return forwarded
    stored = await _stored(request, response_id)
    items: list[dict[str, Any]] = orjson.loads(stored.input_items)
    if order == "desc":
        items.reverse()
    if after is not None:  # an unknown cursor gives an empty page, as for sessions
        at = [i for i, item in enumerate(items) if item["id"] == after]
        items = items[at[0] + 1 :] if at else []
    page = items[:limit]
    return json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/v1/responses/{response_id}", get_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
