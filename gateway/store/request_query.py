"""A search of the request log: the statuses a row can have and the filters a query sets. Plain
data; the stores turn it into SQL (request_log.py, postgres_request_log.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The statuses a request-log row can have (`error`: the gateway failed); as a search filter,
# FAILED stands for every failure.
REQUEST_STATUSES = ("ok", "client_closed", "upstream_error", "rejected", "error")
NOT_FAILED = ("ok", "client_closed")
FAILED = "error"  # in a search: every failure, any status but the NOT_FAILED ones


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """A search of the request log; each field that is set narrows it (None: any)."""

    uid: str | None = None
    model: str | None = None
    status: str | None = None  # a status of REQUEST_STATUSES; FAILED means every failure
    endpoint: str | None = None
    team: str | None = None
    start: datetime | None = None  # created_at >= start
    end: datetime | None = None  # created_at < end
