"""Persistence records and the Store protocol that the PostgreSQL and SQLite backends satisfy.
Plain data only: no driver imports here, so every layer above may depend on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from gateway.store.audit import AuditLog
from gateway.store.request_query import RequestQuery

# Columns mirror_config may set, per table; the first one is the unique key upserts match on.
PROVIDER_COLUMNS = ("name", "display_name", "status", "models", "is_default", "sort")
MODEL_COLUMNS = ("model", "provider_name", "display_name", "max_tokens", "input_price",
                 "output_price", "status", "is_default", "sort")  # fmt: skip
TIER_COLUMNS = ("tier", "rpm", "tpd")

# Every table the schema creates; has_schema() checks that all of them exist.
TABLES = (
    "ai_provider",
    "ai_model",
    "ai_quota_tier",
    "ai_user_quota",
    "ai_session",
    "ai_message",
    "ai_api_key",
    "ai_request_log",
    "ai_response",
    "ai_team",
)
# Budget periods (UTC calendar periods; weeks start on Monday) and spend() groupings.
BUDGET_PERIODS = ("daily", "weekly", "monthly", "total")
SPEND_GROUPS = ("user", "key", "team", "model", "tag", "day")


class StoreUnavailable(Exception):
    """The database cannot be reached (connection refused or lost, locked, shut down).

    Backends translate their driver's connection errors into this at the boundary, so callers
    (the writer, /readyz, the web layer) handle one exception whatever the backend.
    """


class StoreConflict(ValueError):
    """A row with the same unique key (session_id, key_hash) already exists."""


@dataclass(slots=True)
class RequestLogRow:
    """One row of ai_request_log: one authenticated API request, failures included."""

    request_id: str
    uid: str
    key_id: str | None
    model: str
    provider: str | None
    upstream_model: str | None
    stream: bool
    status: str
    status_code: int
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    cost_usd: Decimal
    latency_ms: int
    ttft_ms: int | None
    session_id: str | None
    attempts: int
    error: str | None
    created_at: datetime
    endpoint: str = "chat"  # chat | embeddings | responses | completions | messages
    team: str | None = None
    tags: str | None = None  # JSON array of the request's X-Gateway-Tags
    key_metadata: str | None = None  # JSON object: the key's metadata
    # Parts of prompt_tokens (cache reads; cache writes) and of completion_tokens (reasoning).
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_savings_usd: Decimal = Decimal(0)  # the cost at the plain input price, less cost_usd
    # Response cache (SPEC 16): a hit's tokens and cost are 0; what it saved is here.
    cache_hit: bool = False
    cache_saved_tokens: int = 0
    cache_saved_usd: Decimal = Decimal(0)


@dataclass(slots=True)
class _MessageFields:
    """The columns of ai_message, shared by the row written and the message read back."""

    message_id: str
    session_id: str
    role: str
    content: str
    tokens: int
    model: str | None
    created_at: datetime


@dataclass(slots=True)
class MessageRow(_MessageFields):
    """One message to append to a session (written through the writer)."""


@dataclass(slots=True)
class Session:
    """A server-side conversation, owned by one uid."""

    session_id: str
    uid: str
    title: str
    model: str | None
    message_count: int
    total_tokens: int
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Message(_MessageFields):
    """A stored message of a session, as read back (a distinct type: never a write item)."""


@dataclass(slots=True)
class ApiKey:
    """A stored API key (its SHA-256 hash, never the key). `id` is the row id as a string."""

    id: str
    key_hash: str
    key_prefix: str
    uid: str
    name: str
    tier: str | None
    status: str
    created_at: datetime
    last_used_at: datetime | None = None
    # Scopes (SPEC 10); None = not restricted / not set.
    models: tuple[str, ...] | None = None  # public names or `prefix/*` globs it may use
    expires_at: datetime | None = None
    rpm: int | None = None  # on top of the user's limits
    tpd: int | None = None
    max_budget_usd: Decimal | None = None
    budget_period: str | None = None  # daily | weekly | monthly | total
    team: str | None = None
    metadata: dict[str, Any] | None = None  # logged with each request
    max_parallel_requests: int | None = None  # requests in flight at once (shared by all instances)
    mcp_tools: tuple[str, ...] | None = None  # MCP tools (`server__tool`, `server__*`) it may call


@dataclass(slots=True)
class QuotaOverride:
    """A user's quota override; None fields are not overridden (tier, then default tier apply)."""

    uid: str
    tier: str | None
    rpm: int | None
    tpd: int | None
    team: str | None = None
    max_budget_usd: Decimal | None = None
    budget_period: str | None = None
    max_parallel_requests: int | None = None


@dataclass(slots=True)
class Team:
    """A team: a budget, a model allow-list and limits over the sum of its members' traffic."""

    id: str
    name: str
    max_budget_usd: Decimal | None = None
    budget_period: str | None = None
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpd: int | None = None
    status: str = "active"  # active | deleted (kept so the poll sees deletions)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    max_parallel_requests: int | None = None
    mcp_tools: tuple[str, ...] | None = None


@dataclass(slots=True)
class StoredResponse:
    """A Responses API answer the gateway made itself (bridged onto chat), kept for
    previous_response_id, GET, DELETE and input_items. The JSON fields are stored as text."""

    response_id: str
    uid: str
    model: str
    response: str  # the Response object
    input_items: str  # the request's input items, with ids
    history: str  # chat messages to replay before a follow-up's input
    created_at: datetime


WriteItem = RequestLogRow | MessageRow
# mirror_config input: one dict per row of a config table, keyed by column name.
ConfigRows = list[dict[str, Any]]

# Column names, in dataclass order: the tables use the same names as the records.
LOG_FIELDS = tuple(f.name for f in fields(RequestLogRow))
MESSAGE_FIELDS = tuple(f.name for f in fields(MessageRow))
SESSION_FIELDS = tuple(f.name for f in fields(Session))
KEY_FIELDS = tuple(f.name for f in fields(ApiKey))
RESPONSE_FIELDS = tuple(f.name for f in fields(StoredResponse))
QUOTA_FIELDS = tuple(f.name for f in fields(QuotaOverride))
TEAM_FIELDS = tuple(f.name for f in fields(Team))
# The ApiKey fields update_key may set: the name and the scopes (every field from `models` on).
KEY_SCOPE_FIELDS = ("name", *KEY_FIELDS[KEY_FIELDS.index("models") :])


def key_row_id(text: str) -> int | None:
    """A key id as the integer row id it stands for, or None when `text` cannot be one
    (static keys from config have ids that are not row ids)."""
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    return None


def checked_columns(row: Mapping[str, Any], allowed: Sequence[str], table: str) -> list[str]:
    """The row's keys in `allowed` order; raises ValueError for unknown keys or a missing key.

    Column names end up in SQL text, so they must come from this fixed list, never from input.
    """
    unknown = set(row) - set(allowed)
    if unknown:
        raise ValueError(f"{table}: unknown column(s) {sorted(unknown)}")
    if allowed[0] not in row:
        raise ValueError(f"{table}: missing key column {allowed[0]!r}")
    return [c for c in allowed if c in row]


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; naive datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@runtime_checkable
class Store(AuditLog, Protocol):
    """Everything the gateway persists. Methods raise StoreUnavailable when the DB is down."""

    async def migrate(self) -> None:
        """Apply the schema (idempotent)."""
        ...

    async def has_schema(self) -> bool:
        """True when every table of the schema exists."""
        ...

    async def ping(self) -> None:
        """Round-trip to the database; raises StoreUnavailable."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...

    async def write_batch(self, items: Sequence[WriteItem]) -> None:
        """Write request logs and messages in ONE transaction, idempotently.

        request_id / message_id conflicts are skipped, and session counters (message_count,
        total_tokens, updated_at) grow only by the message rows actually inserted, so a replayed
        batch never double-counts. Messages of a session that does not exist (deleted meanwhile)
        are dropped.
        """
        ...

    async def mirror_config(
        self, providers: ConfigRows, models: ConfigRows, tiers: ConfigRows
    ) -> None:
        """Upsert ai_provider / ai_model / ai_quota_tier rows (dict keys are column names)."""
        ...

    async def create_session(self, session: Session) -> None:
        """Insert a session; raises StoreConflict if its session_id exists."""
        ...

    async def get_session(self, uid: str, session_id: str) -> Session | None:
        """The session, or None if absent or another user's."""
        ...

    async def list_sessions(
        self, uid: str, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Session], bool]:
        """Newest updated first, after the `after` session (keyset cursor); (rows, has_more)."""
        ...

    async def update_session(
        self, uid: str, session_id: str, title: str | None, status: str | None
    ) -> Session | None:
        """Set the given fields (None = unchanged) and updated_at; None if not the user's."""
        ...

    async def delete_session(self, uid: str, session_id: str) -> bool:
        """Delete the session and its messages; False if not the user's."""
        ...

    async def list_messages(
        self, uid: str, session_id: str, limit: int, before: str | None
    ) -> tuple[list[Message], bool] | None:
        """The newest `limit` messages (older than `before`), oldest first; None if not theirs."""
        ...

    async def load_history(
        self, uid: str, session_id: str, max_messages: int
    ) -> tuple[Session, list[Message]] | None:
        """In one query: the session and its newest max_messages messages, oldest first."""
        ...

    async def create_key(self, key: ApiKey) -> ApiKey:
        """Insert a key (its `id` is ignored); returns it with the id filled."""
        ...

    async def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, whatever its status."""
        ...

    async def list_keys(self, uid: str | None) -> list[ApiKey]:
        """Keys of one user, or of everyone, oldest first."""
        ...

    async def revoke_key(self, id_or_prefix: str) -> int:
        """Revoke active keys matching the id or the key_prefix; returns how many."""
        ...

    async def keys_changed_since(self, since: datetime) -> list[ApiKey]:
        """Keys created or revoked after `since` (updated_at > since), for the key cache."""
        ...

    async def touch_keys(self, last_used: dict[str, datetime]) -> None:
        """Batched last_used_at updates (key id -> time); never moves a time backwards."""
        ...

    async def set_user_quota(self, q: QuotaOverride) -> None:
        """Upsert a user's override (every field replaced), updated_at = now."""
        ...

    async def quota_overrides_changed_since(self, since: datetime) -> list[QuotaOverride]:
        """Overrides set after `since` (updated_at > since)."""
        ...

    async def usage(self, uid: str | None, day: date) -> list[dict[str, Any]]:
        """Per (uid, model) for that UTC day: requests, prompt_tokens, completion_tokens,
        cost_usd (Decimal, exact), ordered by uid then model."""
        ...

    async def update_key(self, key_id: str, changes: Mapping[str, Any]) -> ApiKey | None:
        """Set some of a key's scope fields (models, expires_at, rpm, tpd, max_budget_usd,
        budget_period, team, metadata, name; a None value clears it) and updated_at; the key
        after the change, or None when there is no key with that id."""
        ...

    async def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id (any status), or None."""
        ...

    async def active_keys(self) -> list[ApiKey]:
        """Every active key (the key cache holds them all, so unknown keys cost no query)."""
        ...

    async def put_team(self, team: Team) -> Team:
        """Insert or replace a team (status active), updated_at = now; returns it as stored."""
        ...

    async def get_team(self, team_id: str) -> Team | None:
        """The team (deleted ones included, with status `deleted`), or None."""
        ...

    async def list_teams(self) -> list[Team]:
        """Active teams, by id."""
        ...

    async def delete_team(self, team_id: str) -> bool:
        """Mark an active team deleted (updated_at = now); False if there was none."""
        ...

    async def teams_changed_since(self, since: datetime) -> list[Team]:
        """Teams put or deleted after `since` (updated_at > since), for the team cache."""
        ...

    async def spend(
        self,
        group_by: str,
        start: datetime,
        end: datetime,
        uid: str | None = None,
        team: str | None = None,
    ) -> list[dict[str, Any]]:
        """ai_request_log rows with start <= created_at < end (of one user when `uid`, of one team
        when `team`), summed
        per group: `group_by` is user | key | team | model | tag | day. Each dict: group (str;
        the YYYY-MM-DD date for day; a row with several tags counts once per tag; None groups
        as null), requests, prompt_tokens, completion_tokens, cost_usd (Decimal, exact).
        Ordered by cost_usd descending, then group."""
        ...

    async def maintain(self, now: datetime, retention_days: int) -> list[str]:
        """Housekeeping of the request log: PostgreSQL makes this and the next months'
        partitions and drops those past `retention_days` (0 keeps everything); SQLite deletes
        the rows past it. Returns what was dropped (partition names, or `N rows`)."""
        ...

    async def save_response(self, row: StoredResponse) -> None:
        """Insert a bridged response (an existing id is left as it is)."""
        ...

    async def get_response(self, uid: str, response_id: str) -> StoredResponse | None:
        """The user's stored response, or None."""
        ...

    async def delete_response(self, uid: str, response_id: str) -> bool:
        """Delete the user's stored response; False if there was none."""
        ...

    async def count_request_logs(self) -> int:
        """Rows in ai_request_log."""
        ...

    async def search_requests(
        self, query: RequestQuery, limit: int, before: str | None
    ) -> tuple[list[RequestLogRow], bool]:
        """ai_request_log rows matching `query`, newest first (created_at, then row id, both
        descending), older than the `before` request (a keyset cursor: a request_id; an
        unknown one gives no rows); (at most `limit` rows, has_more)."""
        ...

    async def get_request(self, request_id: str, uid: str | None = None) -> RequestLogRow | None:
        """One request-log row (of that user only, when `uid` is given), or None."""
        ...

    async def request_failures(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Failed requests (status neither ok nor client_closed) with start <= created_at < end,
        counted per UTC day and status: dicts of day (YYYY-MM-DD), status, requests; ordered by
        day, then status."""
        ...
