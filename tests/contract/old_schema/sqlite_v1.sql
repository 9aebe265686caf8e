-- The SQLite schema of the first release (git ae029fe:gateway/store/sqlite.py), for the upgrade test.
CREATE TABLE IF NOT EXISTS ai_provider (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active', models TEXT NOT NULL DEFAULT '[]',
    is_default INTEGER NOT NULL DEFAULT 0, sort INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ai_model (
    id INTEGER PRIMARY KEY, provider_name TEXT NOT NULL, model TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '', max_tokens INTEGER NOT NULL DEFAULT 0,
    input_price TEXT NOT NULL DEFAULT '0', output_price TEXT NOT NULL DEFAULT '0',
    status TEXT NOT NULL DEFAULT 'active', is_default INTEGER NOT NULL DEFAULT 0,
    sort INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ai_quota_tier (
    id INTEGER PRIMARY KEY, tier TEXT NOT NULL UNIQUE, rpm INTEGER NOT NULL DEFAULT 0,
    tpd INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ai_user_quota (
    id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, tier TEXT, rpm INTEGER, tpd INTEGER,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_user_quota_updated_at_idx ON ai_user_quota (updated_at);
CREATE TABLE IF NOT EXISTS ai_session (
    id INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, uid TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '', model TEXT, message_count INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_session_uid_updated_idx
    ON ai_session (uid, updated_at DESC, session_id);
CREATE TABLE IF NOT EXISTS ai_message (
    id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, tokens INTEGER NOT NULL DEFAULT 0, model TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_message_session_idx ON ai_message (session_id, id);
CREATE TABLE IF NOT EXISTS ai_api_key (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL, uid TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', tier TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_used_at TEXT
);
CREATE INDEX IF NOT EXISTS ai_api_key_updated_at_idx ON ai_api_key (updated_at);
CREATE INDEX IF NOT EXISTS ai_api_key_prefix_idx ON ai_api_key (key_prefix);
CREATE INDEX IF NOT EXISTS ai_api_key_uid_idx ON ai_api_key (uid);
CREATE TABLE IF NOT EXISTS ai_request_log (
    id INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, uid TEXT NOT NULL, key_id TEXT,
    model TEXT NOT NULL, provider TEXT, upstream_model TEXT, stream INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, status_code INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    usage_estimated INTEGER NOT NULL DEFAULT 0, cost_usd TEXT NOT NULL DEFAULT '0',
    latency_ms INTEGER NOT NULL DEFAULT 0, ttft_ms INTEGER, session_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 1, error TEXT, created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_request_log_uid_created_idx ON ai_request_log (uid, created_at);
