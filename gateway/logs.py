"""Logging: one JSON object per line on stderr, with structured fields passed as `extra`.
Never given keys, prompts or answers unless content logging is on (the caller decides)."""

from __future__ import annotations

import logging
import sys
import time

import orjson


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", ...fields} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(level: str = "INFO") -> None:
    """Send every gateway log line to stderr as JSON; quiet aiohttp's own access log."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The JSON lines carry no thread or process fields, so skip gathering them for every record
    # (the public switches of the logging HOWTO's "Optimization" table).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
