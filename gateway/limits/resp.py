"""One pipelined connection to a single Redis server for the limiter's scripts: hiredis packs the
commands and parses the replies; the calls of one event-loop turn go out in one write.

The same rules as autopipeline.py (which serves Clusters and Sentinel-watched masters through
redis-py), without redis-py's per-pipeline machinery, which cost more CPU than the scripts:
- evalsha() queues a call and waits for its own reply; replies come back in order on the one
  connection, so a call sent after another (a settlement, then the caller's next admission) is
  run after it. A call made while nothing is waiting for a reply goes out at once (one request
  at a time pays no extra loop turn); while replies are awaited, calls gather until the end of
  the turn and go out together.
- A call may linger (settlements do): it waits up to `linger_s` for company and goes out with
  the next call that does not linger, ahead of it; so at one request at a time, a request's
  settlement rides the next request's admission, and is still run before it. close() sends
  what lingers and waits for the replies.
- A reply that is an error is raised to its own caller only, as redis-py's exception for it.
  Every script is loaded when the connection is made; NOSCRIPT after that (SCRIPT FLUSH on a
  live connection): the script is loaded once and every call that hit it is sent again, once
  (then after calls sent meanwhile: the one case where order is not kept).
- A transport failure, or no reply within the address's timeout, fails every call waiting on
  the connection with a ConnectionError or TimeoutError (both OSErrors) and drops the
  connection; the next call connects again.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.exceptions import NoScriptError, ResponseError


@dataclass(frozen=True, slots=True)
class Address:
    """Where the server listens and how to log in: a TCP host and port, or a unix socket."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    timeout_s: float = 0.5  # to connect, and for a reply once calls wait


@dataclass(slots=True)
class _Call:
    command: tuple[Any, ...]
    future: asyncio.Future[Any]
    retried: bool = False


class _Protocol(asyncio.Protocol):
    """Feeds what arrives to the pipeline that owns the connection."""

    def __init__(self, owner: RespPipeline) -> None:
        self._owner = owner
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._transport is self._owner.transport:
            self._owner.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is self._owner.transport:
            self._owner.lost(exc)


class RespPipeline:
    """Sends EVALSHA calls of known scripts in batches over one connection it owns."""

    def __init__(self, address: Address, scripts: Mapping[str, str]) -> None:
        self._address = address
        self._scripts = dict(scripts)  # sha1 -> source, for loading after NOSCRIPT
        self._timeout_s = address.timeout_s
        self.transport: asyncio.Transport | None = None  # the live connection
        self._connecting: asyncio.Future[None] | None = None
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._queue: list[_Call] = []  # to send on the next loop turn
        self._waiting: collections.deque[_Call] = collections.deque()  # sent, in reply order
        self._flush_scheduled = False
        self._linger: asyncio.TimerHandle | None = None
        self._replies = 0  # replies read so far: the watchdog's sign of progress
        self._watchdog: asyncio.TimerHandle | None = None

    async def evalsha(
        self, sha: str, keys: Sequence[Any], args: Sequence[Any], linger_s: float = 0.0
    ) -> Any:
        """The script's reply; raises what the server or the transport raised."""
        return await self.execute(("EVALSHA", sha, len(keys), *keys, *args), linger_s)

    async def execute(self, command: tuple[Any, ...], linger_s: float = 0.0) -> Any:
        """Any command's reply, sent with the others of this loop turn (or lingering)."""
        if self.transport is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        call = _Call(command, loop.create_future())
        self._enqueue(call, loop, linger_s)
        return await call.future

    async def close(self) -> None:
        """Send what lingers and wait (bounded) for every reply; then drop the connection."""
        if self.transport is not None and (self._queue or self._waiting):
            futures = [call.future for call in (*self._waiting, *self._queue)]
            self._flush()
            await asyncio.wait(futures, timeout=self._timeout_s)
        transport = self.transport
        if transport is not None:
            self.lost(ConnectionError("redis connection closed"))
            transport.close()

    def _enqueue(self, call: _Call, loop: asyncio.AbstractEventLoop, linger_s: float = 0) -> None:
        self._queue.append(call)
        if self._flush_scheduled:
            return
        if not linger_s:
            if not self._waiting:  # idle: nothing this turn has been sent; go now, not later
                self._flush()
                return
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        elif self._linger is None:
            self._linger = loop.call_later(linger_s, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        batch, self._queue = self._queue, []
        live = [call for call in batch if not call.future.done()]
        if not live:
            return
        if self.transport is None:  # lost between queueing and sending
            _fail(live, ConnectionError("redis connection lost"))
            return
        pack = hiredis.pack_command
        self.transport.write(b"".join([pack(call.command) for call in live]))
        self._waiting.extend(live)
        if self._watchdog is None:
            self._watch(self._replies)

    def _watch(self, replies_before: int) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self._timeout_s, self._check, replies_before)

    def _check(self, replies_before: int) -> None:
        """Every timeout: no reply since the last check while calls wait means the server hangs."""
        self._watchdog = None
        if not self._waiting:
            return
        if self._replies == replies_before and self.transport is not None:
            transport = self.transport
            self.lost(TimeoutError(f"no reply from redis within {self._timeout_s} s"))
            transport.abort()
            return
        self._watch(self._replies)

    def received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        while self._waiting:
            reply = reader.gets()
            if reply is False:
                return
            self._replies += 1
            call = self._waiting.popleft()
            if isinstance(reply, ResponseError):
                self._answer_error(call, reply)
            elif not call.future.done():
                call.future.set_result(reply)

    def _answer_error(self, call: _Call, error: ResponseError) -> None:
        message = str(error)
        if message.startswith("NOSCRIPT") and call.command[0] == "EVALSHA":
            source = self._scripts.get(call.command[1])
            if source is not None and not call.retried:
                # SCRIPT LOAD goes out before the retry, so the retry finds the script.
                loop = asyncio.get_running_loop()
                load = _Call(("SCRIPT", "LOAD", source), loop.create_future())
                load.future.add_done_callback(_ignore)
                self._enqueue(load, loop)
                call.retried = True
                self._enqueue(call, loop)
                return
            error = NoScriptError(message)
        if not call.future.done():
            call.future.set_exception(error)

    def lost(self, exc: Exception | None) -> None:
        """The connection is gone: every call sent on it fails."""
        if self.transport is None:
            return
        self.transport = None
        self._reader = hiredis.Reader(replyError=ResponseError)
        queued, self._queue = self._queue, []
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = list(self._waiting), collections.deque()
        if not isinstance(exc, OSError):
            exc = ConnectionError(f"redis connection lost: {exc}")
        _fail([*waiting, *queued], exc)

    async def _connect(self) -> None:
        """Connect (callers arriving meanwhile wait for the same attempt) and log in."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> None:
        """Connect, log in, select the database and load the scripts."""
        loop = asyncio.get_running_loop()
        a = self._address
        async with asyncio.timeout(self._timeout_s):
            if a.path is not None:
                transport, _ = await loop.create_unix_connection(lambda: _Protocol(self), a.path)
            else:
                transport, _ = await loop.create_connection(lambda: _Protocol(self), a.host, a.port)
        self.transport = transport
        self._reader = hiredis.Reader(replyError=ResponseError)
        login: list[tuple[Any, ...]] = []
        if a.password is not None:
            login.append(("AUTH", a.username, a.password) if a.username else ("AUTH", a.password))
        if a.db:
            login.append(("SELECT", a.db))
        # Every script loaded up front: a NOSCRIPT retry would run its call after later ones.
        login += [("SCRIPT", "LOAD", source) for source in self._scripts.values()]
        try:
            for command in login:
                call = _Call(command, loop.create_future())
                self._enqueue(call, loop)
                await call.future
        except BaseException:
            await self.close()
            raise


def _fail(calls: Sequence[_Call], exc: BaseException) -> None:
    for call in calls:
        if not call.future.done():
            call.future.set_exception(exc)


def _ignore(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
