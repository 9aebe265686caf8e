"""Persistence: the Store protocol and its records, and the batching writer. Plain data here:
the drivers load only through gateway.store.backends (open_store), which picks one by URL."""

from __future__ import annotations

from gateway.store.base import (
    ApiKey,
    Message,
    MessageRow,
    QuotaOverride,
    RequestLogRow,
    Session,
    Store,
    StoreConflict,
    StoredResponse,
    StoreUnavailable,
    Team,
    WriteItem,
)
from gateway.store.writer import Writer

__all__ = [
    "ApiKey",
    "Message",
    "MessageRow",
    "QuotaOverride",
    "RequestLogRow",
    "Session",
    "Store",
    "StoreConflict",
    "StoreUnavailable",
    "StoredResponse",
    "Team",
    "WriteItem",
    "Writer",
]
