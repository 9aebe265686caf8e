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
import os
from collections import deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from gateway.store.base import MessageRow, RequestLogRow, Store, StoreUnavailable, WriteItem

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


def encode_item(item: WriteItem) -> bytes:
    """One spill-file line (JSON, newline-terminated)."""
    kind = "log" if isinstance(item, RequestLogRow) else "msg"
    return orjson.dumps(
        {"k": kind, "v": item}, default=_json_default, option=orjson.OPT_APPEND_NEWLINE
    )


def decode_item(line: bytes) -> WriteItem:
    """The row a spill-file line holds; raises ValueError (or KeyError/TypeError) if corrupt."""
    obj = orjson.loads(line)
    fields: dict[str, Any] = obj["v"]
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    if obj["k"] == "log":
        fields["cost_usd"] = Decimal(str(fields["cost_usd"]))
        return RequestLogRow(**fields)
    if obj["k"] == "msg":
        return MessageRow(**fields)
    raise ValueError(f"unknown spill row kind {obj['k']!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot serialise {type(value).__name__}")


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
        self._spill_path = spill_path
        self._retry_interval = retry_interval_s
        self._on_depth = on_depth
        self._on_failure = on_failure

        self._mem: deque[WriteItem] = deque()
        self._submitted = 0  # rows accepted, replayed ones included (ordinals 1.._submitted)
        self._committed = 0  # rows known written: always a prefix of the submit order
        self._replayed = 0  # ordinals that came from a previous process's spill file
        self._session_last: dict[str, int] = {}  # session id -> ordinal of its newest row
        self._urgent = 0  # someone waits for this ordinal: do not linger before it
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set and replaced after each commit

        self._spill_fd: int | None = None  # append-only handle, opened on first spill
        self._spill_unread = 0  # lines in the spill file not yet committed
        self._spill_offset = 0  # byte offset of the first of them
        self._spill_dirty = False  # written but not fsynced

        self._inflight: list[WriteItem] = []
        self._inflight_spilled = False  # the in-flight batch is the head of the spill file

        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._down = False
        self._reported_depth = -1
        self._recover_spill()

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
        if self._flush_interval <= 0 or self._spill_unread:
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
        next_offset = self._spill_offset
        if self._spill_unread:
            batch, lines, next_offset = self._read_spill()
            if lines == 0:
                log.error(
                    "persist: spill file %s ended early; %d rows missing",
                    self._spill_path,
                    self._spill_unread,
                )
                lines = self._spill_unread
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
            self._spill_offset = next_offset
            self._spill_unread -= min(lines, self._spill_unread)
            if self._spill_unread == 0:
                self._drop_spill()
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
                self._report_depth()
                await self._fsync_spill()
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
        data = b"".join(encode_item(r) for r in rows)
        try:
            if self._spill_fd is None:
                self._spill_fd = os.open(
                    self._spill_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
                )
            view = memoryview(data)
            while view:
                view = view[os.write(self._spill_fd, view) :]
        except OSError as exc:
            log.error("persist: cannot write spill file %s: %s", self._spill_path, exc)
            return False
        if self._spill_unread == 0:
            log.warning(
                "persist: queue over %d rows; spilling the oldest to %s",
                self._max_queue,
                self._spill_path,
            )
        self._spill_unread += len(rows)
        self._spill_dirty = True
        return True

    async def _fsync_spill(self) -> None:
        """fsync off the event loop; the data already survives a process crash without it."""
        fd = self._spill_fd
        if fd is None or not self._spill_dirty:
            return
        self._spill_dirty = False
        with contextlib.suppress(OSError):
            await asyncio.to_thread(os.fsync, fd)

    def _read_spill(self) -> tuple[list[WriteItem], int, int]:
        """Up to batch_size rows from the unread part: (rows, lines consumed, next offset)."""
        rows: list[WriteItem] = []
        lines = 0
        try:
            f = open(self._spill_path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return rows, 0, self._spill_offset
        with f:
            f.seek(self._spill_offset)
            while lines < min(self._batch_size, self._spill_unread):
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                lines += 1
                try:
                    rows.append(decode_item(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("persist: skipping corrupt spill line: %s", exc)
            return rows, lines, f.tell() if lines else self._spill_offset

    def _drop_spill(self) -> None:
        """The spill file is fully replayed: remove it."""
        if self._spill_fd is not None:
            os.close(self._spill_fd)
            self._spill_fd = None
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._spill_path)
        self._spill_offset = 0
        self._spill_dirty = False
        log.warning("persist: spill file replayed and removed")

    def _recover_spill(self) -> None:
        """Count the rows a previous process left; cut a torn last line (a crash mid-write)."""
        try:
            f = open(self._spill_path, "r+b")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with f:
            count, end, pos = 0, 0, 0
            while chunk := f.read(_READ_CHUNK):
                newlines = chunk.count(b"\n")
                if newlines:
                    count += newlines
                    end = pos + chunk.rindex(b"\n") + 1
                pos += len(chunk)
            if end < pos:
                log.warning("persist: dropping a torn last line of %s", self._spill_path)
                f.truncate(end)
        if count == 0:
            os.remove(self._spill_path)
            return
        log.warning("persist: %d rows left in %s will be replayed first", count, self._spill_path)
        self._spill_unread = count
        self._submitted = self._replayed = count

    def _persist_leftovers(self) -> None:
        """At close: rewrite the spill file as in-flight + unread spill + memory, in order."""
        head = [] if self._inflight_spilled else self._inflight
        tail = list(self._mem)
        if self._spill_fd is not None:
            os.close(self._spill_fd)
            self._spill_fd = None
        if not head and not tail and self._spill_offset == 0:
            return  # the file, if any, holds exactly the unread rows already
        tmp = self._spill_path + ".tmp"
        try:
            with open(tmp, "wb") as out:
                out.write(b"".join(encode_item(r) for r in head))
                if self._spill_unread:
                    with open(self._spill_path, "rb") as old:
                        old.seek(self._spill_offset)
                        while chunk := old.read(_READ_CHUNK):
                            out.write(chunk)
                out.write(b"".join(encode_item(r) for r in tail))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._spill_path)
        except OSError as exc:
            log.critical(
                "persist: cannot save %d unwritten rows to %s: %s",
                self.depth,
                self._spill_path,
                exc,
            )
            return
        saved = len(head) + self._spill_unread + len(tail)
        if saved == 0:
            os.remove(self._spill_path)
        else:
            log.warning("persist: %d unwritten rows saved to %s", saved, self._spill_path)
        self._mem.clear()
        self._inflight = []
        self._spill_unread, self._spill_offset = saved, 0

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
