-- The SQLite schema the last release before migrations (94a6018) created with `agentic db init`, dumped from
-- sqlite_master. tests/store/test_migrations.py upgrades a database made from it.

CREATE TABLE llm_jobs (
	id TEXT NOT NULL, 
	kind TEXT NOT NULL, 
	user_id TEXT NOT NULL, 
	status TEXT NOT NULL, 
	provider TEXT, 
	model TEXT, 
	request JSON NOT NULL, 
	response JSON, 
	partial_output TEXT DEFAULT '' NOT NULL, 
	error_code TEXT, 
	error_message TEXT, 
	attempts INTEGER DEFAULT 0 NOT NULL, 
	prompt_tokens INTEGER, 
	completion_tokens INTEGER, 
	total_tokens INTEGER, 
	idempotency_key TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	cancel_requested_at DATETIME, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_llm_jobs_status CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')), 
	CONSTRAINT ck_llm_jobs_attempts CHECK (attempts >= 0), 
	CONSTRAINT uq_llm_jobs_user_idempotency UNIQUE (user_id, idempotency_key)
);

CREATE TABLE api_keys (
	id TEXT NOT NULL, 
	user_id TEXT NOT NULL, 
	key_hash TEXT NOT NULL, 
	label TEXT, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	last_used_at DATETIME, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
);

CREATE TABLE llm_job_counts (
	kind TEXT NOT NULL, 
	status TEXT NOT NULL, 
	slot INTEGER NOT NULL, 
	n BIGINT DEFAULT 0 NOT NULL, 
	PRIMARY KEY (kind, status, slot)
);

CREATE INDEX ix_llm_jobs_user_created ON llm_jobs (user_id, created_at, id);

CREATE INDEX ix_llm_jobs_finished ON llm_jobs (finished_at);

CREATE INDEX ix_llm_jobs_status_updated ON llm_jobs (status, updated_at);

CREATE INDEX ix_api_keys_user ON api_keys (user_id);

CREATE TRIGGER llm_jobs_count_insert AFTER INSERT ON llm_jobs FOR EACH ROW BEGIN
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (NEW.kind, NEW.status, 0, 1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER llm_jobs_count_update AFTER UPDATE OF kind, status ON llm_jobs FOR EACH ROW
WHEN OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind BEGIN
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (OLD.kind, OLD.status, 0, -1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n - 1;
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (NEW.kind, NEW.status, 0, 1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER llm_jobs_count_delete AFTER DELETE ON llm_jobs FOR EACH ROW BEGIN
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (OLD.kind, OLD.status, 0, -1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n - 1;
END;

