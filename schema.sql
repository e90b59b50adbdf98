-- agentic: PostgreSQL schema. The SQLModel tables in src/agentic/store/tables.py describe the same
-- schema; tests/store/test_schema_sql.py loads this file and fails if the two ever drift apart.
-- Apply with:  psql "$DATABASE_URL" -f schema.sql     (or: agentic db init)

-- Jobs: chat generations and tile previews, from queueing to a terminal state.
CREATE TABLE IF NOT EXISTS llm_jobs (
    id                  TEXT        NOT NULL,  -- "job_" + 128 random bits; also the Inngest event id
    kind                TEXT        NOT NULL,  -- checked by the application: one spec per kind (agentic.service.kinds)
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

-- Jobs per (kind, status) for the metrics scrape, kept by the triggers below so a scrape never counts
-- llm_jobs. A count is the sum over its slot rows (slots spread concurrent writers; a slot may go negative).
CREATE TABLE IF NOT EXISTS llm_job_counts (
    kind   TEXT    NOT NULL,
    status TEXT    NOT NULL,
    slot   INTEGER NOT NULL,
    n      BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, status, slot)
);

-- The counting triggers, installed once with a backfill from the existing rows (the same text as
-- POSTGRES_INSTALL in src/agentic/store/counts.py, which explains the design).
DO $install$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'llm_jobs'::regclass AND tgname = 'llm_jobs_count_truncate')
    THEN RETURN;
    END IF;
    -- No writer may commit between the count below and the triggers' creation; installers queue here too.
    LOCK TABLE llm_jobs IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'llm_jobs'::regclass AND tgname = 'llm_jobs_count_truncate')
    THEN RETURN;  -- another installer finished while this one waited for the lock
    END IF;

    CREATE OR REPLACE FUNCTION llm_job_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        INSERT INTO llm_job_counts (kind, status, slot, n)
        SELECT kind, status, mod(pg_backend_pid(), 16), count(*) FROM new_rows
        GROUP BY kind, status ORDER BY kind, status
        ON CONFLICT (kind, status, slot) DO UPDATE SET n = llm_job_counts.n + EXCLUDED.n;
        RETURN NULL;
    END $f$;

    CREATE OR REPLACE FUNCTION llm_job_counts_update() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        INSERT INTO llm_job_counts (kind, status, slot, n)
        VALUES (OLD.kind, OLD.status, mod(pg_backend_pid(), 16), -1)
        ON CONFLICT (kind, status, slot) DO UPDATE SET n = llm_job_counts.n - 1;
        INSERT INTO llm_job_counts (kind, status, slot, n)
        VALUES (NEW.kind, NEW.status, mod(pg_backend_pid(), 16), 1)
        ON CONFLICT (kind, status, slot) DO UPDATE SET n = llm_job_counts.n + 1;
        RETURN NULL;
    END $f$;

    CREATE OR REPLACE FUNCTION llm_job_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        INSERT INTO llm_job_counts (kind, status, slot, n)
        SELECT kind, status, 16 + mod(pg_backend_pid(), 16), -count(*) FROM old_rows
        GROUP BY kind, status ORDER BY kind, status
        ON CONFLICT (kind, status, slot) DO UPDATE SET n = llm_job_counts.n + EXCLUDED.n;
        RETURN NULL;
    END $f$;

    CREATE OR REPLACE FUNCTION llm_job_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        DELETE FROM llm_job_counts;
        RETURN NULL;
    END $f$;

    DELETE FROM llm_job_counts;
    INSERT INTO llm_job_counts (kind, status, slot, n)
    SELECT kind, status, 0, count(*) FROM llm_jobs GROUP BY kind, status;

    CREATE TRIGGER llm_jobs_count_insert AFTER INSERT ON llm_jobs
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION llm_job_counts_insert();
    CREATE TRIGGER llm_jobs_count_update AFTER UPDATE OF kind, status ON llm_jobs FOR EACH ROW
        WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind)
        EXECUTE FUNCTION llm_job_counts_update();
    CREATE TRIGGER llm_jobs_count_delete AFTER DELETE ON llm_jobs
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION llm_job_counts_delete();
    CREATE TRIGGER llm_jobs_count_truncate AFTER TRUNCATE ON llm_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION llm_job_counts_truncate();
END
$install$;


-- The migration revision this file describes (src/agentic/store/migrations/versions/). A database made from
-- this file is at that revision; `agentic db init` upgrades it from there when a later release adds one.
-- This file is for a new database: on an existing one, run `agentic db init` (CREATE ... IF NOT EXISTS adds
-- no column to a table that exists). tests/store/test_schema_sql.py keeps it at the head revision.
CREATE TABLE IF NOT EXISTS alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) SELECT '0001' WHERE NOT EXISTS (SELECT 1 FROM alembic_version);
