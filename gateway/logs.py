"""Logging: one JSON object per line on stderr, with structured fields passed as `extra`.
Never given keys, prompts or answers unless content logging is on (the caller decides).

Lines written during one event-loop turn go out in one write at the end of the turn; request
lines may linger up to 0.1 s for company (LineSink); outside a running loop, and at exit, at
once. The request line skips the logging module's record machinery once `configure` has run
(`line`); elsewhere (tests in-process) it is an ordinary record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import threading
import time
from typing import Any

import orjson


class LineSink:
    """Whole lines to a file descriptor; thread-safe. On an event loop a line goes out at the end
    of its turn, or, when it may linger (request lines), within LINGER_S or once LINGER_BYTES
    are waiting, with whatever comes before then: one write for many lines even when every
    request is a turn of its own. Outside a loop, and on flush(), at once."""

    LINGER_S = 0.1
    LINGER_BYTES = 64 * 1024

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._soon: asyncio.AbstractEventLoop | None = None  # the loop a turn-end flush is due on
        self._later: asyncio.TimerHandle | None = None  # the lingering lines' flush
        self._later_loop: asyncio.AbstractEventLoop | None = None

    def write(self, line: bytes, linger: bool = False) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending.append(line)
            self._size += len(line)
            if loop is None or self._soon is loop:
                pass  # written below, or already due at the end of this turn
            elif not linger or self._size >= self.LINGER_BYTES:
                self._soon = loop
                loop.call_soon(self.flush)
            elif self._later_loop is not loop:
                self._later_loop = loop
                self._later = loop.call_later(self.LINGER_S, self.flush)
        if loop is None:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._pending, self._size = self._pending, [], 0
            self._soon = self._later_loop = None
            if self._later is not None:
                self._later.cancel()
                self._later = None
        if not lines:
            return
        data = b"".join(lines)
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:
            pass  # stderr gone (closed pipe): nothing else to tell it to


_SINK: LineSink | None = None


@functools.lru_cache(maxsize=4)
def _second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _encode(created: float, level: str, logger: str, msg: str, fields: Any) -> bytes:
    """One line: {"ts" (ISO 8601 UTC to the millisecond), "level", "logger", "msg", ...fields}."""
    second = int(created)
    ts = f"{_second(second)}.{int((created - second) * 1000):03d}Z"
    line = {"ts": ts, "level": level, "logger": logger, "msg": msg}
    if fields:
        line.update(fields)
    return orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE)


class JsonLineHandler(logging.Handler):
    """Writes each record as one JSON line into a LineSink (an exception as a field)."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = getattr(record, "fields", None)
            if record.exc_info:
                fields = {
                    **(fields or {}),
                    "exception": _formatter.formatException(record.exc_info),
                }
            line = _encode(
                record.created, record.levelname.lower(), record.name, record.getMessage(), fields
            )
            self.sink.write(line)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.sink.flush()


_formatter = logging.Formatter()  # only for its traceback text


def line(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """An INFO line with `fields` (the caller has checked the level): straight into the sink
    once configured, else through the logging module."""
    sink = _SINK
    if sink is None:
        # Logger.info without its stack walk for the caller's file and line (not in the lines)
        record = logger.makeRecord(
            logger.name, logging.INFO, "", 0, msg, (), None, extra={"fields": fields}
        )
        logger.handle(record)
        return
    sink.write(_encode(time.time(), "info", logger.name, msg, fields), linger=True)


def configure(level: str = "INFO") -> None:
    """Send every gateway log line to stderr as JSON; quiet aiohttp's own access log."""
    global _SINK
    sys.stderr.flush()
    _SINK = LineSink(sys.stderr.fileno())
    root = logging.getLogger()
    root.handlers[:] = [JsonLineHandler(_SINK)]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The JSON lines carry no thread or process fields, so skip gathering them for every record
    # (the public switches of the logging HOWTO's "Optimization" table).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
