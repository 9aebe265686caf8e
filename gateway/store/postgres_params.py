"""How record fields become asyncpg query parameters: aware UTC timestamps, JSON fields as text,
and client text without NUL (PostgreSQL text cannot hold it). Driver-free, like common.py."""

from __future__ import annotations

from typing import Any

from gateway.store.base import utc
from gateway.store.common import JSON_COLUMNS, TIME_COLUMNS, json_text


def marks(count: int) -> list[str]:
    """$1 .. $count."""
    return [f"${i}" for i in range(1, count + 1)]


def text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; one such character must not wedge the writer forever."""
    return value.replace("\x00", "") if value is not None and "\x00" in value else value


def param(column: str, value: Any) -> Any:
    """A record field as a query parameter (money stays a Decimal, for NUMERIC)."""
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return json_text(value)
    if isinstance(value, str):  # model, uid, content, ... come from clients
        return text(value)
    if column in TIME_COLUMNS:
        return utc(value)
    return value


class Args(list[Any]):
    """Query arguments that hand out their own `$n` placeholders, numbered as added."""

    def add(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"
