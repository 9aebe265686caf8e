"""Off-the-request-path persistence: batches request logs and messages into a Store, in order.
Bounded memory, a local spill file when the queue overflows or the process stops, replay on start.

Rules:
- submit() is synchronous: it never waits on the database and never raises. Past max_queue rows
  in memory, the OLDEST rows move to the spill file (one write per chunk, not per row).
- Order is: in-flight batch < unread spill lines < memory. Rows leave only from the oldest end
  and one batch is committed at a time, so rows reach the database in submit order.
- A failed batch is kept and retried every retry_interval_s until it commits. write_batch is
  idempotent (request_id, message_id), so a batch that committed but looked failed, or a spill
  file replayed twice, writes nothing twice.
- A batch the database keeps refusing for a reason other than an outage (a row it cannot store)
  is written row by row after POISON_AFTER failures; the refused rows go, in order, to
  `<spill_path>.rejected` for an operator, so one bad row never stops persistence.
- Progress is a count, not per-row state: the n-th row submitted is committed once
  `committed >= n`. flush() and wait_session() wait for such a target.
- close() writes everything uncommitted to the spill file, in order; the next Writer on the same
  spill_path replays it before anything else. A spill file is read from disk in batches, never
  loaded whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from gateway.store.base import RequestLogRow, Store, StoreUnavailable, WriteItem
from gateway.store.spill import SpillFile, decode_item, encode_item

__all__ = ["Writer", "decode_item", "encode_item"]

log = logging.getLogger(__name__)

POISON_AFTER = 3  # failures of one batch, not caused by an outage, before rows are isolated


class Writer:
    """Batching, ordered, at-least-once-delivered (exactly-once-stored) writer over a Store.

    A spill file left at spill_path by a previous process is found when the Writer is built
    and replayed first once start() runs.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.05,
        max_queue: int = 10000,
        spill_path: str,
        retry_interval_s: float = 1.0,
        on_depth: Callable[[int], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be positive")
        self._store = store
        self._batch_size = batch_size
        self._flush_interval = flush_interval_s
        self._max_queue = max_queue
        self._retry_interval = retry_interval_s
        self._on_depth = on_depth
        self._on_failure = on_failure

        self._spill_file = SpillFile(spill_path)
        self._mem: deque[WriteItem] = deque()
        # A previous process's leftover spill rows are the first ordinals, replayed first.
        self._replayed = self._spill_file.recover()
        self._submitted = self._replayed  # rows accepted (ordinals 1.._submitted)
        self._committed = 0  # rows known written: always a prefix of the submit order
        self._session_last: dict[str, int] = {}  # session id -> ordinal of its newest row
        self._urgent = 0  # someone waits for this ordinal: do not linger before it
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set and replaced after each commit

        self._inflight: list[WriteItem] = []
        self._inflight_spilled = False  # the in-flight batch is the head of the spill file

        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._down = False
        self._reported_depth = -1

    # -- producer side -----------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Rows submitted and not yet committed (memory, spill file and the in-flight batch)."""
        return self._submitted - self._committed

    def submit(self, item: WriteItem) -> None:
        """Queue a row. Never blocks on the database, never raises."""
        try:
            self._submitted += 1
            if item.session_id is not None:
                self._session_last[item.session_id] = self._submitted
            if self._closed:
                if not self._spill([item]):
                    log.error("persist: writer closed and spill failed; row %s lost", _ident(item))
                return
            self._mem.append(item)
            size = len(self._mem)
            if size > self._max_queue:
                self._overflow()
            # Wake an idle worker, or end its lingering once a batch is full; not per row.
            if size == 1 or size >= self._batch_size:
                self._wake.set()
        except Exception:  # pragma: no cover - a bug must not reach the request path
            log.exception("persist: submit failed for %s", _ident(item))

    def pending_for_session(self, session_id: str) -> bool:
        """True while rows already submitted for this session are not committed."""
        return self._committed < self._session_target(session_id)

    async def wait_session(self, session_id: str, timeout_s: float | None) -> bool:
        """Wait until the rows submitted so far for this session are committed (True) or the
        timeout passes (False): read-your-writes for the session endpoints."""
        return await self._wait_for(self._session_target(session_id), timeout_s)

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every row submitted before the call is committed (True) or timeout (False)."""
        return await self._wait_for(self._submitted, timeout_s)

    def _session_target(self, session_id: str) -> int:
        # Rows replayed from a previous process are not indexed by session: wait for all of them.
        target = self._session_last.get(session_id, 0)
        return max(target, self._replayed) if self._committed < self._replayed else target

    async def _wait_for(self, target: int, timeout_s: float | None) -> bool:
        if self._committed >= target:
            return True
        if self._closed or self._task is None:
            return False
        self._urgent = max(self._urgent, target)
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                while self._committed < target:
                    await self._progress.wait()
        except TimeoutError:
            return self._committed >= target
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (call from the running event loop)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="persist-writer")

    async def close(self, timeout_s: float = 10.0) -> None:
        """Flush for up to timeout_s, stop, and save whatever is left to the spill file."""
        if self._closed:
            return
        self._closing = True
        if self._task is not None:
            await self._wait_for(self._submitted, timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._closed = True
        self._persist_leftovers()
        self._report_depth()

    # -- worker ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._report_depth()
            if self._committed >= self._submitted:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._linger()
                await self._write_next()
            except Exception:
                # Only spill-file I/O gets here; the batch was put back, so just try again.
                log.exception("persist: writer step failed; retrying")
                await asyncio.sleep(self._retry_interval)

    async def _linger(self) -> None:
        """Give a partial batch up to flush_interval_s to fill, unless someone is waiting."""
        if self._flush_interval <= 0 or self._spill_file.unread:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_interval
        while (
            len(self._mem) < self._batch_size
            and self._urgent <= self._committed
            and not self._closing
        ):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            except TimeoutError:
                return

    async def _write_next(self) -> None:
        """Take the oldest batch, write it until it commits, then account for it."""
        spill = self._spill_file
        next_offset = spill.offset
        if spill.unread:
            # Reading a batch back is the spill file's slow part: off the event loop. It only
            # reads the bookkeeping that append() (on the loop) may grow meanwhile.
            batch, lines, next_offset = await asyncio.to_thread(spill.read, self._batch_size)
            if lines == 0:
                log.error(
                    "persist: spill file %s ended early; %d rows missing", spill.path, spill.unread
                )
                lines = spill.unread
            self._inflight, self._inflight_spilled = batch, True
        else:
            count = min(len(self._mem), self._batch_size)
            batch = [self._mem.popleft() for _ in range(count)]
            lines = count
            self._inflight, self._inflight_spilled = batch, False
        try:
            if batch:
                await self._write_until_committed(batch)
        except Exception:
            if not self._inflight_spilled:
                self._mem.extendleft(reversed(batch))
            self._inflight = []
            raise
        self._inflight = []
        if self._inflight_spilled:
            spill.consume(lines, next_offset)  # bookkeeping shared with append(): on the loop
        self._committed += lines
        for item in batch:
            sid = item.session_id
            if sid is not None and self._session_last.get(sid, 0) <= self._committed:
                self._session_last.pop(sid, None)
        self._progress.set()
        self._progress = asyncio.Event()

    async def _write_until_committed(self, batch: list[WriteItem]) -> None:
        failures = 0
        while True:
            try:
                await self._store.write_batch(batch)
            except Exception as exc:
                failures += 1
                self._notify_failure()
                if not self._down:
                    self._down = True
                    if isinstance(exc, StoreUnavailable):
                        log.warning(
                            "persist: database unavailable (%s); holding %d rows, retrying every"
                            " %.1fs",
                            exc,
                            self.depth,
                            self._retry_interval,
                        )
                    else:
                        log.exception(
                            "persist: write_batch of %d rows (first %s) failed; retrying every"
                            " %.1fs",
                            len(batch),
                            _ident(batch[0]),
                            self._retry_interval,
                        )
                else:
                    log.debug("persist: retry %d failed: %r", failures, exc)
                if (
                    not isinstance(exc, StoreUnavailable)
                    and failures >= POISON_AFTER
                    and await self._isolate(batch)
                ):
                    self._down = False
                    return
                self._report_depth()
                await self._spill_file.fsync()
                await asyncio.sleep(self._retry_interval)
                continue
            if self._down:
                self._down = False
                log.warning(
                    "persist: database is back after %d failed attempts; %d rows queued",
                    failures,
                    self.depth - len(batch),
                )
            return

    async def _isolate(self, batch: list[WriteItem]) -> bool:
        """Write rows one by one, setting aside refused ones; False if the database went down."""
        for item in batch:
            try:
                await self._store.write_batch([item])
            except StoreUnavailable:
                return False
            except Exception as exc:
                path = self._spill_file.path + ".rejected"
                await asyncio.to_thread(_append_line, path, encode_item(item))
                log.error("persist: row %s refused (%r); kept in %s", _ident(item), exc, path)
        return True

    # -- spill file --------------------------------------------------------------------------

    def _overflow(self) -> None:
        """Move the oldest rows past max_queue (plus a batch of headroom) to the spill file."""
        headroom = min(self._batch_size, self._max_queue)
        count = min(len(self._mem), len(self._mem) - self._max_queue + headroom)
        rows = [self._mem.popleft() for _ in range(count)]
        if not self._spill(rows):
            self._mem.extendleft(reversed(rows))  # keep them: memory beats losing rows
        self._report_depth()

    def _spill(self, rows: list[WriteItem]) -> bool:
        """Append rows to the spill file in one write; False (and logged) on I/O failure."""
        first = self._spill_file.unread == 0
        if not self._spill_file.append(rows):
            return False
        if first:
            log.warning(
                "persist: queue over %d rows; spilling the oldest to %s",
                self._max_queue,
                self._spill_file.path,
            )
        return True

    def _persist_leftovers(self) -> None:
        """At close: rewrite the spill file as in-flight + unread spill + memory, in order."""
        head = [] if self._inflight_spilled else self._inflight
        tail = list(self._mem)
        self._spill_file.close()
        try:
            if not self._spill_file.save(head, tail):
                return  # the file, if any, holds exactly the unread rows already
        except OSError as exc:
            log.critical(
                "persist: cannot save %d unwritten rows to %s: %s",
                self.depth,
                self._spill_file.path,
                exc,
            )
            return
        self._mem.clear()
        self._inflight = []

    # -- callbacks ---------------------------------------------------------------------------

    def _report_depth(self) -> None:
        depth = self.depth
        if depth != self._reported_depth and self._on_depth is not None:
            self._reported_depth = depth
            try:
                self._on_depth(depth)
            except Exception:
                log.exception("persist: on_depth callback failed")

    def _notify_failure(self) -> None:
        if self._on_failure is not None:
            try:
                self._on_failure()
            except Exception:
                log.exception("persist: on_failure callback failed")


def _ident(item: WriteItem) -> str:
    """A row's idempotency key, for log lines."""
    if isinstance(item, RequestLogRow):
        return f"request {item.request_id}"
    return f"message {item.message_id}"


def _append_line(path: str, line: bytes) -> None:
    with open(path, "ab") as f:
        f.write(line)
