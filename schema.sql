-- AI gateway schema for PostgreSQL: config mirrors, quotas, sessions, keys, request log, teams.
-- Idempotent (CREATE ... IF NOT EXISTS): `gateway migrate` and `gateway serve` apply it freely.

-- Mirrored from config.yaml at start, for reporting.
CREATE TABLE IF NOT EXISTS ai_provider (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'active',
    models       JSONB NOT NULL DEFAULT '[]'::jsonb,
    is_default   BOOLEAN NOT NULL DEFAULT FALSE,
    sort         INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ai_model (
    id            BIGSERIAL PRIMARY KEY,
    provider_name TEXT NOT NULL,
    model         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL DEFAULT '',
    max_tokens    INTEGER NOT NULL DEFAULT 0,
    input_price   NUMERIC NOT NULL DEFAULT 0,
    output_price  NUMERIC NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'active',
    is_default    BOOLEAN NOT NULL DEFAULT FALSE,
    sort          INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ai_quota_tier (
    id         BIGSERIAL PRIMARY KEY,
    tier       TEXT NOT NULL UNIQUE,
    rpm        INTEGER NOT NULL DEFAULT 0,   -- 0 = unlimited
    tpd        BIGINT NOT NULL DEFAULT 0,    -- 0 = unlimited
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per-user overrides, edited through the admin API. NULL = not overridden.
CREATE TABLE IF NOT EXISTS ai_user_quota (
    id         BIGSERIAL PRIMARY KEY,
    uid        TEXT NOT NULL UNIQUE,
    tier       TEXT,
    rpm        INTEGER,
    tpd        BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Instances poll for changes (updated_at > since).
CREATE INDEX IF NOT EXISTS ai_user_quota_updated_at_idx ON ai_user_quota (updated_at);

CREATE TABLE IF NOT EXISTS ai_session (
    id            BIGSERIAL PRIMARY KEY,
    session_id    TEXT NOT NULL UNIQUE,
    uid           TEXT NOT NULL,
    title         TEXT NOT NULL DEFAULT '',
    model         TEXT,
    message_count INTEGER NOT NULL DEFAULT 0,
    total_tokens  BIGINT NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A user's sessions, newest updated first, keyset-paginated on (updated_at, session_id).
CREATE INDEX IF NOT EXISTS ai_session_uid_updated_idx
    ON ai_session (uid, updated_at DESC, session_id);

CREATE TABLE IF NOT EXISTS ai_message (
    id         BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    tokens     INTEGER NOT NULL DEFAULT 0,
    model      TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A session's messages in insertion order (the id), read newest-N first.
CREATE INDEX IF NOT EXISTS ai_message_session_idx ON ai_message (session_id, id);

-- Keys are stored only as SHA-256 hashes; key_prefix is for humans (list, revoke).
CREATE TABLE IF NOT EXISTS ai_api_key (
    id           BIGSERIAL PRIMARY KEY,
    key_hash     TEXT NOT NULL UNIQUE,
    key_prefix   TEXT NOT NULL,
    uid          TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    tier         TEXT,
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ
);
-- The key cache polls for changes (updated_at > since); last_used_at does not bump updated_at.
CREATE INDEX IF NOT EXISTS ai_api_key_updated_at_idx ON ai_api_key (updated_at);
CREATE INDEX IF NOT EXISTS ai_api_key_prefix_idx ON ai_api_key (key_prefix);
CREATE INDEX IF NOT EXISTS ai_api_key_uid_idx ON ai_api_key (uid);

-- One row per authenticated chat request, failures included; written in batches, idempotently.
CREATE TABLE IF NOT EXISTS ai_request_log (
    id                BIGSERIAL PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    uid               TEXT NOT NULL,
    key_id            TEXT,
    model             TEXT NOT NULL,
    provider          TEXT,
    upstream_model    TEXT,
    stream            BOOLEAN NOT NULL DEFAULT FALSE,
    status            TEXT NOT NULL,
    status_code       INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    usage_estimated   BOOLEAN NOT NULL DEFAULT FALSE,
    cost_usd          NUMERIC(20, 9) NOT NULL DEFAULT 0,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    ttft_ms           INTEGER,
    session_id        TEXT,
    attempts          INTEGER NOT NULL DEFAULT 1,
    error             TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Per-user usage for a UTC day.
CREATE INDEX IF NOT EXISTS ai_request_log_uid_created_idx ON ai_request_log (uid, created_at);
CREATE TABLE IF NOT EXISTS ai_response (
    response_id TEXT PRIMARY KEY,
    uid         TEXT NOT NULL,
    model       TEXT NOT NULL,
    response    TEXT NOT NULL,
    input_items TEXT NOT NULL,
    history     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ai_response_created_idx ON ai_response (created_at);
-- Upgrades of a database made by an earlier release, in place.
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS endpoint TEXT NOT NULL DEFAULT 'chat';

-- Governance (SPEC 10): budgets in USD, scoped keys, teams, request tags.
-- A key's scopes; NULL = not restricted. models: JSON array of public names or `prefix/*`.
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS models TEXT;
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS rpm INTEGER;
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS tpd BIGINT;
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS max_budget_usd NUMERIC(20, 9);
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS budget_period TEXT;  -- daily|weekly|monthly|total
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS team TEXT;
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS metadata TEXT;       -- JSON object, logged
ALTER TABLE ai_user_quota ADD COLUMN IF NOT EXISTS team TEXT;
ALTER TABLE ai_user_quota ADD COLUMN IF NOT EXISTS max_budget_usd NUMERIC(20, 9);
ALTER TABLE ai_user_quota ADD COLUMN IF NOT EXISTS budget_period TEXT;
-- The request's X-Gateway-Tags (JSON array) and its key's metadata (JSON object).
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS team TEXT;
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS tags TEXT;
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS key_metadata TEXT;
-- Exact cost (SPEC 13): the parts of prompt_tokens read from and written to the provider's
-- prompt cache, and the part of completion_tokens spent reasoning. On a partitioned log the
-- parent's new columns reach every partition.
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS cache_savings_usd NUMERIC(20, 9) NOT NULL DEFAULT 0;
-- Response cache (SPEC 16): a hit is logged with no tokens and no cost; these say what it saved.
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS cache_hit BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS cache_saved_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ai_request_log ADD COLUMN IF NOT EXISTS cache_saved_usd NUMERIC(20, 9) NOT NULL DEFAULT 0;

-- Teams: limits and a budget over the sum of their members' traffic. Deleting one marks it
-- `deleted` (bumping updated_at) so that polling instances see the deletion.
CREATE TABLE IF NOT EXISTS ai_team (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    max_budget_usd NUMERIC(20, 9),
    budget_period  TEXT,
    models         TEXT,
    rpm            INTEGER,
    tpd            BIGINT,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ai_team_updated_at_idx ON ai_team (updated_at);
-- Requests in flight at once (per gateway process) of a key, a user, a team; NULL = no cap.
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS max_parallel_requests INTEGER;
ALTER TABLE ai_user_quota ADD COLUMN IF NOT EXISTS max_parallel_requests INTEGER;
ALTER TABLE ai_team ADD COLUMN IF NOT EXISTS max_parallel_requests INTEGER;
-- MCP tools (SPEC 17) a key or team may call: JSON array of `server__tool` or `server__*`.
ALTER TABLE ai_api_key ADD COLUMN IF NOT EXISTS mcp_tools TEXT;
ALTER TABLE ai_team ADD COLUMN IF NOT EXISTS mcp_tools TEXT;
-- The console's request-log search (GET /admin/requests): newest first, keyset-paged on
-- (created_at, id); by model; by endpoint; and the failures (the search's status=error, and
-- GET /admin/errors). A user's search uses ai_request_log_uid_created_idx.
CREATE INDEX IF NOT EXISTS ai_request_log_created_id_idx ON ai_request_log (created_at, id);
CREATE INDEX IF NOT EXISTS ai_request_log_model_created_idx
    ON ai_request_log (model, created_at, id);
CREATE INDEX IF NOT EXISTS ai_request_log_endpoint_created_idx
    ON ai_request_log (endpoint, created_at, id);
CREATE INDEX IF NOT EXISTS ai_request_log_failed_idx ON ai_request_log (created_at, id)
    WHERE status NOT IN ('ok', 'client_closed');
-- The audit log (SPEC 19): every change made through the admin API or the console (keys, teams,
-- quotas, budgets), who made it in which role, and the object before and after (JSON).
CREATE TABLE IF NOT EXISTS ai_audit_log (
    id         BIGSERIAL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    team       TEXT,
    before     JSONB,
    after      JSONB
);
CREATE INDEX IF NOT EXISTS ai_audit_log_created_idx ON ai_audit_log (created_at, id);
CREATE INDEX IF NOT EXISTS ai_audit_log_actor_created_idx ON ai_audit_log (actor, created_at);
