-- The PostgreSQL schema of the first release (git ae029fe:schema.sql), for the upgrade test.

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

CREATE TABLE IF NOT EXISTS ai_user_quota (
    id         BIGSERIAL PRIMARY KEY,
    uid        TEXT NOT NULL UNIQUE,
    tier       TEXT,
    rpm        INTEGER,
    tpd        BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
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
CREATE INDEX IF NOT EXISTS ai_message_session_idx ON ai_message (session_id, id);

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
CREATE INDEX IF NOT EXISTS ai_api_key_updated_at_idx ON ai_api_key (updated_at);
CREATE INDEX IF NOT EXISTS ai_api_key_prefix_idx ON ai_api_key (key_prefix);
CREATE INDEX IF NOT EXISTS ai_api_key_uid_idx ON ai_api_key (uid);

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
CREATE INDEX IF NOT EXISTS ai_request_log_uid_created_idx ON ai_request_log (uid, created_at);
