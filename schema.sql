-- agentic: PostgreSQL schema. The SQLModel tables in src/agentic/store/tables.py describe the same
-- schema; tests/store/test_schema_sql.py loads this file and fails if the two ever drift apart.
-- Apply with:  psql "$DATABASE_URL" -f schema.sql     (or: agentic db init)

-- Jobs: chat generations and tile previews, from queueing to a terminal state.
CREATE TABLE IF NOT EXISTS llm_jobs (
    id                  TEXT        NOT NULL,  -- "job_" + 128 random bits; also the Inngest event id
    kind                TEXT        NOT NULL,  -- checked by the application: one spec per kind (agentic.kinds)
    user_id             TEXT        NOT NULL,  -- owner; the per-user throttle key
    status              TEXT        NOT NULL,
    provider            TEXT,                  -- resolved when the job is queued
    model               TEXT,
    request             JSONB       NOT NULL,  -- the validated request; never contains secrets
    response            JSONB,
    partial_output      TEXT        NOT NULL DEFAULT '',  -- streamed text while processing
    error_code          TEXT,                  -- agentic.domain.errors.ErrorCode
    error_message       TEXT,
    attempts            INTEGER     NOT NULL DEFAULT 0,
    prompt_tokens       INTEGER,
    completion_tokens   INTEGER,
    total_tokens        INTEGER,
    idempotency_key     TEXT,
    created_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    started_at          TIMESTAMP WITH TIME ZONE,
    finished_at         TIMESTAMP WITH TIME ZONE,
    cancel_requested_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    CONSTRAINT ck_llm_jobs_status CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    CONSTRAINT ck_llm_jobs_attempts CHECK (attempts >= 0),
    -- One job per (user, Idempotency-Key); NULL keys never conflict.
    CONSTRAINT uq_llm_jobs_user_idempotency UNIQUE (user_id, idempotency_key)
);

-- The owner's jobs, newest first, and the keyset cursor that pages them.
CREATE INDEX IF NOT EXISTS ix_llm_jobs_user_created ON llm_jobs (user_id, created_at, id);
-- Stuck-job sweeps and queue depth: by status, then last change.
CREATE INDEX IF NOT EXISTS ix_llm_jobs_status_updated ON llm_jobs (status, updated_at);
-- Cleanup of finished jobs by finish time.
CREATE INDEX IF NOT EXISTS ix_llm_jobs_finished ON llm_jobs (finished_at);

-- API keys: only a SHA-256 hash of each key is stored; the key itself is shown once.
CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    label        TEXT,
    created_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    revoked_at   TIMESTAMP WITH TIME ZONE,
    last_used_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
);

CREATE INDEX IF NOT EXISTS ix_api_keys_user ON api_keys (user_id);
