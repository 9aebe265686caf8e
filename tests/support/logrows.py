"""Reading what a gateway under test recorded: its request-log rows, once the writer has
committed them, straight from the SQLite file of the test's config."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from tests.support.gateway import RunningGateway


async def log_rows(gateway: RunningGateway) -> list[dict[str, Any]]:
    """Every ai_request_log row, oldest first."""
    assert await gateway.services.writer.flush(timeout_s=5)
    path = gateway.config.database.url.removeprefix("sqlite:///")
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM ai_request_log ORDER BY id").fetchall()
    finally:
        db.close()
    return [dict(r) for r in rows]


async def rows_when(
    gateway: RunningGateway, count: int, timeout_s: float = 5.0
) -> list[dict[str, Any]]:
    """The rows once there are at least `count` (bounded wait): a stream's row is recorded just
    after its last byte, so a client may have read it all before the row exists."""
    deadline = time.monotonic() + timeout_s
    rows = await log_rows(gateway)
    while len(rows) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        rows = await log_rows(gateway)
    return rows
