"""The steps every proxied endpoint shares: route, admit, forward, answer or relay, account.
A handler composes them inside `exchange()`, which fills the outcome's ending in one place and
records the request once, whatever happened."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Protocol

from aiohttp import web

from ..access.governance import (
    BudgetExceeded,
    Scope,
    check_model,
    parse_tags,
    scope_for,
    team_of,
    worst_case_usd,
)
from ..accounting.recorder import Outcome
from ..accounting.tokens import Usage, estimate_tokens, usage_from_body
from ..adapters.base import Call, not_supported
from ..adapters.capabilities import serves
from ..cache import Entry
from ..errors import (
    GatewayError,
    InvalidRequest,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    RequestTooLarge,
    UpstreamRejected,
    clip,
)
from ..limits.budget import MAX_NANOS, from_nanos
from ..proxy.dispatch import Answer, DispatchFailed, dispatch
from ..proxy.relay import StreamRelay
from ..routing import Router, Target
from ..tracing import NO_TRACE
from ..validation import parse_json_object
from . import response_cache
from .keys import PRINCIPAL, REQUEST_ID, SERVICES, TRACE, UPSTREAM_S
from .ratelimit_headers import ratelimit_headers
from .respond import STREAM_HEADERS, read_body
from .services import Services

MAX_RESERVE_USD = from_nanos(MAX_NANOS)  # what the limiters can count in one budget
KEPT_WRITES = 3  # a stream's finish reasons are in its last events (then usage, then [DONE])


class Relay(Protocol):
    """Writes one upstream stream to the client and knows what it amounted to."""

    first_byte_at: float | None

    @property
    def complete(self) -> bool:
        """The stream's end marker has been relayed: the answer is whole."""
        ...

    async def run(
        self, first: bytes, rest: AsyncIterator[bytes], write: Callable[[bytes], Awaitable[None]]
    ) -> None: ...

    def error_event(self, error: GatewayError) -> bytes: ...

    def settle(self, outcome: Outcome) -> None:
        """Set the outcome's usage and answer text (and mark an upstream error event)."""
        ...


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an oversized body is a GatewayError (413) like any other."""
    try:
        body = await read_body(request)
    except web.HTTPRequestEntityTooLarge:
        raise RequestTooLarge("The request body is larger than this gateway accepts.") from None
    return parse_json_object(body)


class Exchange:
    """One proxied request on its way through the gateway."""

    def __init__(self, request: web.Request, endpoint: str):
        self.request = request
        self.s: Services = request.app[SERVICES]
        self.principal = request[PRINCIPAL]
        self.outcome = Outcome(
            request_id=request[REQUEST_ID], principal=self.principal, endpoint=endpoint
        )
        self.router: Router = self.s.router  # one routing table for the whole request
        self.headers: dict[str, str] | None = None  # rate-limit headers once admitted
        self.override = self.s.quotas.override_for(self.principal.user)
        self.team = self.s.teams.get(team_of(self.principal, self.override))
        self.targets: list[Target] = []
        # The stream's end marker has reached the client: a hang-up after it ends nothing.
        self.delivered = False
        self.trace = request.get(TRACE, NO_TRACE)
        self.answer: Answer | None = None
        self.cache_result: str | None = None  # hit | miss | bypass | refresh; None: cache off
        self.cache_slot: response_cache.Slot | None = None  # where this answer is to be kept
        self.kept: tuple[int, str, bytes] | None = None  # a JSON answer for the slot

    async def read_json(self) -> dict[str, Any]:
        """The body as a JSON object; an oversized one is refused (and logged as `rejected`)."""
        return await read_json(self.request)

    def plan(self, model: str, stream: bool = False) -> list[Target]:
        """The deployments to try for `model` that can serve this endpoint."""
        o = self.outcome
        o.model, o.stream = model, stream
        o.route_model = self.router.lookup(model)[0]
        check_model(model, self.principal, self.team)
        targets = self.router.plan(model, self.s.clock())
        usable = [t for t in targets if serves(t.provider.type, o.endpoint, t.upstream_model)]
        if targets and not usable:
            raise not_supported(targets[0].provider.type, o.endpoint)
        self.targets = usable
        o.route_prices = usable[0].prices if usable else None
        return usable

    async def cached(self, body: dict[str, Any], stream: bool = False) -> Entry | None:
        """The response cache's answer to `body` (after plan(): the model's entry says whether
        it has a cache), or None: go upstream (a miss is then kept once answered)."""
        model = self.outcome.route_model
        if model is None or model.cache is None:
            return None
        return await response_cache.consult(self, model.cache, body, stream)

    async def answer_cached(
        self, entry: Entry, stream: bool = False, wants_usage: bool | None = None
    ) -> web.StreamResponse:
        """Answer a cache hit (see response_cache.answer_hit)."""
        return await response_cache.answer_hit(self, entry, stream, wants_usage)

    async def keep_answer(self) -> None:
        """Keep the JSON answer of a miss or a refresh in the response cache."""
        if self.kept is not None and self.outcome.usage is not None:
            status, content_type, body = self.kept
            await response_cache.keep(self, status, content_type, body, self.outcome.usage)

    def _scope(self, in_flight: bool) -> Scope:
        user, principal = self.principal.user, self.principal
        limits = self.s.quotas.limits_for(user, principal.tier)
        return scope_for(principal, limits, self.override, self.team, in_flight=in_flight)

    def _reserve_usd(self, prompt_estimate: int, max_output: int | None, choices: int) -> Decimal:
        """The worst case over the planned deployments' prices (a fallback may cost more): all
        input at the full input price, of its highest tier; 400 when one of them is priced
        nowhere, since a budget cannot hold what it cannot price."""
        if not all(t.prices.priced for t in self.targets):
            raise InvalidRequest(
                f"The model `{clip(self.outcome.model)}` has no price, and a budget applies to"
                " this request: use a priced model, or ask the operator to price this one.",
                param="model",
                code="model_not_priced",
            )
        costs = [
            worst_case_usd(
                prompt_estimate,
                max_output if max_output is not None else t.model.max_tokens,
                t.prices.input.highest,
                t.prices.output.highest,
                choices,
            )
            for t in self.targets
        ]
        return max(costs, default=Decimal(0))

    async def admit(
        self,
        prompt_estimate: int = 0,
        max_output: int | None = None,
        choices: int = 1,
        *,
        costs: bool = True,
    ) -> None:
        """Count the request against every quota and reserve its worst-case cost (`choices`
        answers of `max_output` tokens) against every budget that applies (one atomic step), or
        refuse it with 429. A request that `costs` nothing counts against the rpm only."""
        s, o = self.s, self.outcome
        scope = self._scope(in_flight=costs)
        budgets = scope.budgets if costs else ()
        reserve = Decimal(0)
        if budgets:
            reserve = self._reserve_usd(prompt_estimate, max_output, choices)
            if reserve > MAX_RESERVE_USD:
                raise BudgetExceeded("This request could cost more than any budget can hold.")
        decision = await s.limiter.admit_all(
            scope.subjects, budgets, reserve, o.reservation_id, s.wall_clock()
        )
        self.headers = ratelimit_headers(decision)
        if self.cache_result is not None:
            self.headers[response_cache.HEADER] = self.cache_result
        if not decision.allowed:
            kind = decision.refused_by or "rpm"
            s.metrics.rate_limited.labels(kind).inc()
            if kind == "budget":
                raise BudgetExceeded(
                    "This request could cost more than the budget has left"
                    f" ({decision.refused_id}).",
                )
            if kind == "tpd":
                raise RateLimited(
                    "You have used your daily token quota.", code="daily_token_quota_exceeded"
                )
            if kind == "parallel":
                error = RateLimited(
                    f"Too many requests in flight at once ({decision.refused_id}):"
                    " wait for one to finish.",
                    code="parallel_requests_exceeded",
                )
                error.headers["Retry-After"] = "1"
                raise error
            raise RateLimited(f"Rate limit reached: {decision.limits.rpm} requests per minute.")
        o.scope = scope  # from here on, the request is settled when it ends

    def call(
        self,
        target: Target,
        payload: dict[str, Any] | None,
        *,
        endpoint: str | None = None,
        stream: bool = False,
        method: str = "POST",
        path: str = "",
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Call:
        """The Call for one attempt on `target`, with the payload's model rewritten."""
        if payload is not None:
            payload = {**payload, "model": target.upstream_model}
        return Call(
            endpoint=endpoint or self.outcome.endpoint,
            payload=payload,
            request_id=self.outcome.request_id,
            public_model=self.outcome.model,
            upstream_model=target.upstream_model,
            stream=stream,
            method=method,
            path=path,
            query=query or {},
            headers=headers or {},
            default_max_tokens=target.model.max_tokens,
        )

    async def forward(self, targets: list[Target], call_for: Callable[[Target], Call]) -> Answer:
        """The first answer of the plan; the attempts and the serving deployment are recorded."""
        s = self.s
        try:
            answer = await dispatch(
                targets,
                call_for,
                s.upstreams,
                self.router.health,
                s.config.routing,
                s.metrics,
                clock=s.clock,
                trace=self.trace,
            )
        except DispatchFailed as failed:
            self.request[UPSTREAM_S] = failed.upstream_s
            self.outcome.attempts, self.outcome.target = failed.attempts, failed.target
            raise failed.error from None
        self.request[UPSTREAM_S] = answer.upstream_s
        self.answer = answer
        self.outcome.target, self.outcome.attempts = answer.target, answer.attempts
        return answer

    async def answer_openai(
        self, answer: Answer, prompt_estimate: int, wants_usage: bool, need_text: bool = False
    ) -> web.StreamResponse:
        """An answer in OpenAI's format (chat or legacy completions): a stream relayed byte for
        byte (the usage event dropped or added as the client asked), or the body, billed from
        its usage (estimated when it has none)."""
        if answer.rest is not None:
            relay = StreamRelay(
                drop_usage_event=not wants_usage,
                prompt_estimate=prompt_estimate,
                add_usage=wants_usage,
                need_text=need_text or self.s.recorder.log_content or self.trace.capture_content,
            )
            return await self.relay(answer, relay, keep_upstream=True)
        usage, text = usage_from_body(answer.body)
        self.outcome.answer = text
        if usage is None:
            usage = Usage(prompt_estimate, estimate_tokens(text), estimated=True)
        return self.respond(answer.reply.status, answer.body, answer.reply.content_type, usage)

    def respond(self, status: int, body: bytes, content_type: str, usage: Usage) -> web.Response:
        """A whole answer; its usage is what the request is billed."""
        self.outcome.usage = usage
        if self.cache_slot is not None:
            self.kept = (status, content_type, body)
        self.trace.response(body)
        response = web.Response(status=status, body=body, headers=self.headers)
        response.headers["Content-Type"] = content_type
        return response

    async def relay(
        self,
        answer: Answer,
        relay: Relay,
        finish: Callable[[], Awaitable[None]] | None = None,
        keep_upstream: bool = False,
    ) -> web.StreamResponse:
        """Relay a stream that has begun; failures after this point are in-stream events.
        `finish` runs once the whole stream is written but before its end reaches the client,
        so a client that has read the answer to its end can follow up on it at once (and also
        when the client hangs up after the end marker, before upstream has closed).
        A miss of the response cache keeps the stream once whole: the bytes written to the
        client, or with `keep_upstream` those read from upstream (the chat relay drops or adds
        the usage event as each client asks, so the entry keeps upstream's)."""
        s, o = self.s, self.outcome
        slot = self.cache_slot
        first, rest = answer.first_chunk, answer.rest
        assert rest is not None
        if slot is not None and keep_upstream:
            slot.add(first)
            rest = _taped(rest, slot)
        response = web.StreamResponse(
            status=200, headers={**STREAM_HEADERS, **(self.headers or {})}
        )
        s.metrics.active_streams.inc()

        last: list[bytes] = []  # the stream's last writes, for the trace's finish reasons
        keep = self.trace.recording

        async def write(data: bytes) -> None:
            await response.write(data)
            self.delivered = self.delivered or relay.complete  # the end marker went out whole
            if keep:
                last.append(data)
                if len(last) > KEPT_WRITES:
                    del last[0]

        if slot is not None and not keep_upstream:
            write_on = write

            async def write(data: bytes) -> None:
                slot.add(data)
                await write_on(data)

        self.trace.response(answer.first_chunk)
        try:
            await response.prepare(self.request)
            await relay.run(first, rest, write)
            if finish is not None:
                finishing, finish = finish, None
                await finishing()
            if slot is not None and relay.complete:  # kept before the client sees the end
                await response_cache.keep_stream(self, relay.settle)
            await response.write_eof()
        except GatewayError as error:
            if not relay.complete:  # upstream failed mid-answer: tell the client, then close
                if answer.on_broken is not None:
                    answer.on_broken()
                answer.span.end(None, "mid_stream")
                o.status, o.status_code = "upstream_error", 200
                o.error = f"{error.code}: {error.message}"
                response.force_close()
                try:
                    await response.write(relay.error_event(error))
                    await response.write_eof()
                except ConnectionError:
                    pass
        except (ConnectionError, asyncio.CancelledError) as exc:
            # A client may hang up as soon as it has read the end marker (Codex and the Agents
            # SDK do), before upstream closes: that answer is whole, `ok`.
            if not self.delivered:
                o.status, o.status_code = "client_closed", 499
            elif finish is not None:  # the client has the whole answer: it may follow up on it
                with contextlib.suppress(Exception):  # the client is gone: nobody to tell
                    await finish()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            answer.reply.close()
            answer.span.end()
            if last:
                self.trace.stream_ended(b"".join(last))
            s.metrics.active_streams.dec()
            o.first_byte_at = relay.first_byte_at
            relay.settle(o)
        return response

    async def peek_headers(self) -> dict[str, str]:
        """Rate-limit headers for a request refused before admission (it consumed nothing)."""
        s, user = self.s, self.principal.user
        try:
            limits = s.quotas.limits_for(user, self.principal.tier)
            return ratelimit_headers(await s.limiter.peek(user, limits, s.wall_clock()))
        except Exception:
            return {}


_UPSTREAM_FAILURES = (UpstreamRejected, ProviderError, ProviderTimeout)


async def _taped(rest: AsyncIterator[bytes], slot: response_cache.Slot) -> AsyncIterator[bytes]:
    """Upstream's chunks, each also gathered into the cache slot."""
    async for chunk in rest:
        slot.add(chunk)
        yield chunk


@asynccontextmanager
async def exchange(request: web.Request, endpoint: str) -> AsyncIterator[Exchange]:
    """An Exchange whose ending (ok, refused, failed upstream, client gone, bug) is recorded."""
    ex = Exchange(request, endpoint)
    o = ex.outcome
    o.team = ex.team.id if ex.team else team_of(ex.principal, ex.override)
    try:
        o.tags = parse_tags(request.headers.get("X-Gateway-Tags"))
        yield ex
        if ex.kept is not None:  # before the answer goes out: the next request may hit it
            await ex.keep_answer()
    except GatewayError as error:
        upstream = o.target is not None and isinstance(error, _UPSTREAM_FAILURES)
        o.status = "upstream_error" if upstream else "rejected"
        o.status_code = error.status
        o.error = f"{error.code}: {error.message}"
        headers = ex.headers
        if headers is None and error.status != 401:
            headers = await ex.peek_headers()
        error.headers.update(headers or {})
        raise
    except asyncio.CancelledError:
        if not ex.delivered:  # not an answer whose end the client read before hanging up
            o.status, o.status_code = "client_closed", 499
        raise
    except Exception as exc:  # a bug: the middleware answers 500; the log row must say so too
        o.status, o.status_code = "error", 500
        o.error = f"internal_error: {type(exc).__name__}"
        raise
    finally:
        if ex.answer is not None:
            ex.answer.span.end()  # a stream that never reached the relay
        cost = ex.s.recorder.finish(o)
        ex.trace.outcome(o, cost)
