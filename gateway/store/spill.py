"""The writer's spill file: rows as JSON lines, appended at the end and replayed from an offset.
It counts the lines not yet committed; which rows are in flight is the writer's business."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from gateway.store.base import MessageRow, RequestLogRow, WriteItem

# Spill events are the writer's to operators: log under its name.
log = logging.getLogger("gateway.store.writer")

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
        for money in ("cost_usd", "cache_savings_usd", "cache_saved_usd"):  # older lines lack some
            if money in fields:
                fields[money] = Decimal(str(fields[money]))
        return RequestLogRow(**fields)
    if obj["k"] == "msg":
        return MessageRow(**fields)
    raise ValueError(f"unknown spill row kind {obj['k']!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot serialise {type(value).__name__}")


class SpillFile:
    """An append-only file of rows at `path`; `unread` lines from byte `offset` on are not yet
    committed. Reads go from disk in batches, never the whole file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.unread = 0  # lines in the file not yet committed
        self.offset = 0  # byte offset of the first of them
        self._fd: int | None = None  # append-only handle, opened on first append
        self._dirty = False  # written but not fsynced

    def recover(self) -> int:
        """Count the rows a previous process left (they become `unread`) and return how many;
        cut a torn last line (a crash mid-write); remove a file that holds no row."""
        try:
            f = open(self.path, "r+b")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return 0
        with f:
            count, end, pos = 0, 0, 0
            while chunk := f.read(_READ_CHUNK):
                newlines = chunk.count(b"\n")
                if newlines:
                    count += newlines
                    end = pos + chunk.rindex(b"\n") + 1
                pos += len(chunk)
            if end < pos:
                log.warning("persist: dropping a torn last line of %s", self.path)
                f.truncate(end)
        if count == 0:
            os.remove(self.path)
            return 0
        log.warning("persist: %d rows left in %s will be replayed first", count, self.path)
        self.unread = count
        return count

    def append(self, rows: Sequence[WriteItem]) -> bool:
        """Append rows in one write; False (and logged) on I/O failure."""
        data = b"".join(encode_item(r) for r in rows)
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            log.error("persist: cannot write spill file %s: %s", self.path, exc)
            return False
        self.unread += len(rows)
        self._dirty = True
        return True

    async def fsync(self) -> None:
        """fsync off the event loop; the data already survives a process crash without it."""
        fd = self._fd
        if fd is None or not self._dirty:
            return
        self._dirty = False
        with contextlib.suppress(OSError):
            await asyncio.to_thread(os.fsync, fd)

    def read(self, limit: int) -> tuple[list[WriteItem], int, int]:
        """Up to `limit` rows from the unread part: (rows, lines consumed, next offset).
        Corrupt lines are consumed and skipped (logged); a torn line ends the read."""
        rows: list[WriteItem] = []
        lines = 0
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return rows, 0, self.offset
        with f:
            f.seek(self.offset)
            while lines < min(limit, self.unread):
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                lines += 1
                try:
                    rows.append(decode_item(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("persist: skipping corrupt spill line: %s", exc)
            return rows, lines, f.tell() if lines else self.offset

    def consume(self, lines: int, next_offset: int) -> None:
        """Rows read up to next_offset are committed; the file goes once nothing is unread."""
        self.offset = next_offset
        self.unread -= min(lines, self.unread)
        if self.unread == 0:
            self.drop()

    def drop(self) -> None:
        """The spill file is fully replayed: remove it."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        self.offset = 0
        self._dirty = False
        log.warning("persist: spill file replayed and removed")

    def close(self) -> None:
        """Close the append handle (the next append reopens it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def save(self, head: Sequence[WriteItem], tail: Sequence[WriteItem]) -> bool:
        """Rewrite the file as head + the unread lines + tail, in order, fsynced and swapped in
        atomically. False when the file already holds exactly what is unread (nothing to do).
        Raises OSError, leaving the file as it was. Call close() first."""
        if not head and not tail and self.offset == 0:
            return False
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as out:
            out.write(b"".join(encode_item(r) for r in head))
            if self.unread:
                with open(self.path, "rb") as old:
                    old.seek(self.offset)
                    while chunk := old.read(_READ_CHUNK):
                        out.write(chunk)
            out.write(b"".join(encode_item(r) for r in tail))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        saved = len(head) + self.unread + len(tail)
        if saved == 0:
            os.remove(self.path)
        else:
            log.warning("persist: %d unwritten rows saved to %s", saved, self.path)
        self.unread, self.offset = saved, 0
        return True


def spill_paths(base: str, workers: int) -> list[str]:
    """The spill files a gateway run uses: `base` alone, or `base.<n>` for each of N workers."""
    return [base] if workers <= 1 else [f"{base}.{n}" for n in range(workers)]


def adopt_orphans(base: str, workers: int) -> int:
    """Move rows left in spill files this run will not replay (another worker count before, or
    a single process) into the first one it will, so they are replayed too; returns the rows.

    Call it before any writer starts: the files must not be in use.
    """
    keep = spill_paths(base, workers)
    folder = os.path.dirname(os.path.abspath(base))
    name = os.path.basename(base)
    numbered = sorted(
        (int(f[len(name) + 1 :]), f)
        for f in os.listdir(folder)
        if f.startswith(name + ".") and f[len(name) + 1 :].isdigit()
    )
    candidates = [base] + [os.path.join(folder, f) for _, f in numbered]
    moved = 0
    for path in candidates:
        if path in keep or not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        data = data[: data.rfind(b"\n") + 1]  # a torn last line is dropped, as recover() does
        if data:
            with open(keep[0], "ab") as target:
                target.write(data)
                target.flush()
                os.fsync(target.fileno())
            moved += data.count(b"\n")
            log.warning("persist: %d rows of %s moved to %s", data.count(b"\n"), path, keep[0])
        os.remove(path)
    return moved
