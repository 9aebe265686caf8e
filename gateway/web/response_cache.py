"""The response cache on the request path (SPEC 16): consult it before admission, answer a hit
(JSON, or the stored SSE events), keep a miss's answer once it is whole and fine.
A model without `cache:` never reaches this module (Exchange checks one attribute)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..accounting.recorder import Outcome
from ..accounting.tokens import Usage
from ..cache import Entry, Mode, cache_key, cacheable, mode_of
from ..config import CacheConfig
from ..proxy.relay import StreamRelay
from .respond import STREAM_HEADERS

if TYPE_CHECKING:
    from .proxy import Exchange

HEADER = "x-gateway-cache"


@dataclass(slots=True)
class Slot:
    """Where a miss's (or a refresh's) answer goes, and what it has gathered of a stream."""

    key: str
    config: CacheConfig
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    too_large: bool = False

    def add(self, chunk: bytes) -> None:
        """Gather one chunk of a stream; past max_entry_bytes the stream is not kept."""
        if self.too_large:
            return
        self.size += len(chunk)
        if self.size > self.config.max_entry_bytes:
            self.too_large, self.chunks = True, []
            return
        self.chunks.append(chunk)


def scope_of(ex: Exchange) -> str:
    """The cache scope: the key's team, else its user. One tenant never reads another's entry."""
    team = ex.outcome.team
    return f"t:{team}" if team else f"u:{ex.principal.user}"


async def consult(
    ex: Exchange, config: CacheConfig, body: dict[str, Any], stream: bool
) -> Entry | None:
    """The entry answering this request, or None; a miss or a refresh leaves `ex.cache_slot`
    set so that the answer is kept. Sets the request's cache result (header and metric)."""
    s, o = ex.s, ex.outcome
    mode = mode_of(ex.request.headers.get(HEADER))
    if mode is Mode.BYPASS or not cacheable(o.endpoint, body):
        _result(ex, "bypass")
        return None
    key = cache_key(s.config.redis.prefix, o.endpoint, stream, scope_of(ex), body)
    if mode is Mode.USE:
        value = await s.cache.get(key)
        entry = None if value is None else Entry.decode(value)
        if entry is not None and entry.age_s(s.wall_clock()) < config.ttl_s:
            ex.cache_result = "hit"  # counted once admitted (answer_hit)
            return entry
    ex.cache_slot = Slot(key, config)
    _result(ex, "refresh" if mode is Mode.REFRESH else "miss")
    return None


def _result(ex: Exchange, result: str) -> None:
    ex.cache_result = result
    ex.s.metrics.cache_requests.labels(result).inc()


async def answer_hit(
    ex: Exchange, entry: Entry, stream: bool, wants_usage: bool | None = None
) -> web.StreamResponse:
    """Answer from `entry`: admitted against the rpm only (nothing reserved, nothing charged),
    logged as a cache hit with the tokens it saved. `wants_usage` (chat and legacy completions
    streams): whether the client asked for the usage event; None replays the events as stored."""
    await ex.admit(costs=False)
    ex.s.metrics.cache_requests.labels("hit").inc()
    o = ex.outcome
    o.cache_hit = True
    o.usage = _usage(entry.usage)
    headers = {**(ex.headers or {}), "Age": str(int(entry.age_s(ex.s.wall_clock())))}
    if not stream:
        response = web.Response(status=entry.status, body=entry.body, headers=headers)
        response.headers["Content-Type"] = entry.content_type
        return response
    body = entry.body if wants_usage is None else _chat_events(entry, wants_usage)
    streamed = web.StreamResponse(status=200, headers={**STREAM_HEADERS, **headers})
    try:
        await streamed.prepare(ex.request)
        await streamed.write(body)
        o.first_byte_at = time.perf_counter()
        await streamed.write_eof()
    except ConnectionError:
        o.status, o.status_code = "client_closed", 499
    return streamed


def _usage(counts: tuple[int, ...]) -> Usage:
    """The Usage an entry stored as `dataclasses.astuple(usage)`."""
    c = (*counts, 0, 0, 0, 0, 0, 0, 0)
    return Usage(c[0], c[1], bool(c[2]), c[3], c[4], c[5], c[6])


def _chat_events(entry: Entry, wants_usage: bool) -> bytes:
    """A stored chat (or completions) stream as this client asked for it: its usage-only event
    dropped, or the gateway's own added when upstream sent none, exactly as the relay does."""
    prompt = entry.usage[0] if entry.usage else 0
    relay = StreamRelay(
        drop_usage_event=not wants_usage, prompt_estimate=prompt, add_usage=wants_usage
    )
    return relay.outgoing(entry.body) + relay.tail()


async def keep(ex: Exchange, status: int, content_type: str, body: bytes, usage: Usage) -> None:
    """Store a whole, successful answer under the request's slot (if it fits)."""
    slot = ex.cache_slot
    ex.cache_slot = None
    if slot is None or not 200 <= status < 300 or len(body) > slot.config.max_entry_bytes:
        return
    entry = Entry(ex.s.wall_clock(), status, content_type, dataclasses.astuple(usage), body)
    await ex.s.cache.put(slot.key, entry.encode(), slot.config.ttl_s)


async def keep_stream(ex: Exchange, settle: Callable[[Outcome], None]) -> None:
    """Store a stream that reached its end marker, unless it carried an error: `settle` is the
    relay's settle, run on a scratch Outcome to learn the stream's usage and status."""
    slot = ex.cache_slot
    if slot is None or slot.too_large:
        return
    scratch = Outcome(request_id=ex.outcome.request_id, principal=ex.principal)
    settle(scratch)
    if scratch.status != "ok" or scratch.usage is None:
        return
    body = b"".join(slot.chunks)
    await keep(ex, 200, "text/event-stream", body, scratch.usage)
