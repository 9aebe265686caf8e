"""Redis auto-pipelining: the scripts called during one event-loop turn go out as one pipeline.
Concurrent requests share one write and one read instead of paying a round trip each.

Rules:
- evalsha() queues a call and waits for its own reply. The queue is sent on the next loop turn,
  in order, with at most one pipeline in flight; calls queued meanwhile go in the next one. A
  burst of N admissions therefore costs about two round trips and one pooled connection.
- A reply that is an error is raised to its own caller only. A transport failure is raised to
  every caller of that pipeline, as the redis client's own exception (the caller translates).
- NOSCRIPT (the server restarted or flushed its scripts): each missing script is loaded once
  (on every primary of a Cluster) and the calls that hit it are sent again, so a burst after a
  restart costs one SCRIPT LOAD.
- On a Cluster the pipeline sends each node its own calls (every call's keys in one slot).
- A caller cancelled while waiting leaves the pipeline alone; its reply is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import NoScriptError

_Call = tuple[tuple[Any, ...], asyncio.Future[Any]]


class AutoPipeline:
    """Sends commands (EVALSHA of known scripts, MGET) in batches over a caller-owned client."""

    def __init__(self, client: Redis | RedisCluster, scripts: Mapping[str, str]) -> None:
        self._client = client
        self._scripts = dict(scripts)  # sha1 -> source, for reloading after NOSCRIPT
        self._queue: list[_Call] = []
        self._task: asyncio.Task[None] | None = None

    async def evalsha(
        self, sha: str, keys: Sequence[Any], args: Sequence[Any], linger_s: float = 0.0
    ) -> Any:
        """The script's reply; raises what the server or the transport raised."""
        return await self.execute(("EVALSHA", sha, len(keys), *keys, *args), linger_s)

    async def execute(self, command: tuple[Any, ...], linger_s: float = 0.0) -> Any:
        """Any command's reply (its keys in one slot on a Cluster), sent with the others of this
        loop turn. Nothing lingers here (`linger_s` is for resp.py's one connection: a Cluster's
        calls to one node may go out on different connections, out of order)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((command, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever built it."""

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._send(batch)
        finally:
            self._task = None
            if self._queue:  # cancelled (loop shutting down): fail the rest, never hang them
                batch, self._queue = self._queue, []
                _fail(batch, ConnectionError("redis pipeline stopped"))

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._execute([command for command, _ in batch])
            missing = {
                command[1]
                for (command, _), reply in zip(batch, replies, strict=True)
                if isinstance(reply, NoScriptError) and command[1] in self._scripts
            }
            if missing:
                await asyncio.gather(
                    *(self._client.script_load(self._scripts[sha]) for sha in missing)
                )
                again = [
                    i
                    for i, ((command, _), reply) in enumerate(zip(batch, replies, strict=True))
                    if isinstance(reply, NoScriptError)
                ]
                retried = await self._execute([batch[i][0] for i in again])
                for i, reply in zip(again, retried, strict=True):
                    replies[i] = reply
        except Exception as exc:
            _fail(batch, exc)
            return
        except BaseException:
            _fail(batch, ConnectionError("redis pipeline stopped"))
            raise
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)


def _fail(batch: list[_Call], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
