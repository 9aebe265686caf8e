"""Export of finished spans over OTLP/HTTP (protobuf): a bounded queue the request path appends to,
and one task on the event loop that encodes and posts a batch at a time.

Rules:
- `add` never waits: a span that finds `max_queue_size` spans waiting is dropped and counted
  ("queue_full"); a batch the collector refuses or never receives is counted ("export").
- One export at a time, every `SCHEDULE_DELAY_S` or as soon as `MAX_BATCH` spans wait. Batches
  are small on purpose: 512-span batches measured about 5% more CPU per request than 64 or 128
  (most likely, spans waiting in memory crowd the request path's data out of the CPU's caches).
- What OTLP/HTTP calls retryable (429, 502, 503, 504, no connection, a timeout) is tried again
  with backoff while the batch is younger than `export_timeout_s`; then its spans count as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import aiohttp

from ..config import TelemetryConfig
from . import OnFailure
from .wire import Envelope, SpanRecord, span

log = logging.getLogger("gateway.tracing")

SCHEDULE_DELAY_S = 1.0
MAX_BATCH = 128
RETRYABLE = frozenset({429, 502, 503, 504})
FIRST_BACKOFF_S = 0.5


class OtlpExporter:
    """Batches of spans to `telemetry.otlp_endpoint`; `start` and `close` run on the loop."""

    def __init__(self, config: TelemetryConfig, envelope: Envelope, on_failure: OnFailure):
        self.endpoint = config.otlp_endpoint
        self.timeout_s = config.export_timeout_s
        self.max_queue = config.max_queue_size
        self.headers = {**config.headers, "Content-Type": "application/x-protobuf"}
        self.envelope = envelope
        self.on_failure = on_failure
        self.queue: deque[SpanRecord] = deque()
        self.wake = asyncio.Event()
        self.exporting = asyncio.Lock()
        self.closing = False
        self.failing = False  # the last export failed (its warning is logged once)
        self.session: aiohttp.ClientSession | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        self.task = asyncio.create_task(self._run(), name="trace-export")

    def add(self, record: SpanRecord) -> None:
        """Queue a finished span, or drop and count it when the queue is full."""
        queue = self.queue
        if len(queue) >= self.max_queue:
            self.on_failure(1, "queue_full")
            return
        queue.append(record)
        if len(queue) >= MAX_BATCH:
            self.wake.set()

    async def flush(self) -> None:
        """Export every span queued now."""
        await self._export(whole=True)

    async def _export(self, whole: bool) -> None:
        """Export the spans queued now in batches of MAX_BATCH, and the rest too when `whole`
        (later spans wait for the next turn, so a busy gateway sends full batches)."""
        async with self.exporting:
            queue = self.queue
            left = len(queue)
            while left >= MAX_BATCH or (whole and left):
                batch = [queue.popleft() for _ in range(min(MAX_BATCH, left))]
                left -= len(batch)
                try:
                    exported = await self._post(self._encode(batch))
                except asyncio.CancelledError:
                    self.on_failure(len(batch), "export")
                    raise
                except Exception:  # a bug here must not stop tracing, nor reach a request
                    log.exception("trace export failed")
                    exported = False
                if not exported:
                    self.on_failure(len(batch), "export")

    async def close(self) -> None:
        """Export what is queued (within the export timeout), then stop; what is left is lost."""
        self.closing = True
        self.wake.set()
        if self.task is not None:
            with contextlib.suppress(TimeoutError):  # the task is cancelled, its batch counted
                await asyncio.wait_for(self.task, self.timeout_s + 1)
        if self.queue:
            self.on_failure(len(self.queue), "export")
            self.queue.clear()
        if self.session is not None:
            await self.session.close()

    async def _run(self) -> None:
        while not self.closing:
            waited = False
            if len(self.queue) < MAX_BATCH:
                try:
                    await asyncio.wait_for(self.wake.wait(), SCHEDULE_DELAY_S)
                except TimeoutError:
                    waited = True  # a quiet second: what is queued goes, even if few
            self.wake.clear()
            await self._export(whole=waited)
        await self._export(whole=True)  # closing: the rest

    def _encode(self, batch: list[SpanRecord]) -> bytes:
        return self.envelope.wrap(b"".join([span(record) for record in batch]))

    async def _post(self, body: bytes) -> bool:
        """Whether the collector accepted `body`, retrying what may pass later."""
        assert self.session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        backoff = FIRST_BACKOFF_S
        while True:
            timeout = aiohttp.ClientTimeout(total=max(deadline - loop.time(), 0.001))
            try:
                async with self.session.post(
                    self.endpoint, data=body, headers=self.headers, timeout=timeout
                ) as resp:
                    await resp.read()
                    if resp.status < 300:
                        self._recovered()
                        return True
                    retry, why = resp.status in RETRYABLE, f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as error:
                retry, why = True, f"{type(error).__name__}: {error}"
            if not retry or loop.time() + backoff >= deadline:
                self._failed(why)
                return False
            await asyncio.sleep(backoff)
            backoff *= 2

    def _failed(self, why: str) -> None:
        if not self.failing:
            self.failing = True
            log.warning(
                "trace export to %s failed (%s): spans are dropped until it answers",
                self.endpoint,
                why,
            )

    def _recovered(self) -> None:
        if self.failing:
            self.failing = False
            log.info("trace export to %s works again", self.endpoint)
