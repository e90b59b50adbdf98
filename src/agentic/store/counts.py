"""Jobs per (kind, status), maintained by database triggers, so a metrics scrape reads a few dozen rows
instead of counting the whole jobs table (whose history can hold millions of finished jobs).

Every INSERT, status change and DELETE on ``llm_jobs`` adjusts ``llm_job_counts`` in the same
transaction, whichever code path wrote it (the job store, cleanup, an operator's ``psql``), so the
counts are exact: a committed change is counted, a rolled-back one is not.

PostgreSQL: each key has ``SLOTS`` rows for inserts and status changes and ``SLOTS`` more for deletes;
a connection writes to the slot of its backend pid, so concurrent completions rarely wait on one row
lock. A status change locks its old status's row before its new one and transitions never go back,
so those locks follow one global order; INSERT and DELETE statements count their rows once per
statement (transition tables) in sorted key order, deletes in slots of their own. So no two
transitions, inserts or deletes can deadlock; only two multi-row status updates at once in the same
slot (two stuck-job sweeps) could, which PostgreSQL detects and the step's retry absorbs.
Progress writes (``partial_output``) do not fire anything: the UPDATE trigger is limited to
``kind``/``status`` changes. SQLite serializes writers anyway: row triggers, one slot.

Installing the triggers backfills the counts from the existing rows once, atomically (the jobs
table is locked against writes while it is counted): see :func:`install`. The install is skipped once
the triggers exist, so a later change to a trigger function must drop them first (the next install
then recounts).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

#: Counter rows per (kind, status) for inserts and status changes (and as many again for deletes).
SLOTS = 16
TRIGGERS = ("llm_jobs_count_insert", "llm_jobs_count_update", "llm_jobs_count_delete", "llm_jobs_count_truncate")

#: Functions and triggers, installed with the backfill in one statement (a DO block is one transaction).
#: schema.sql carries this same text; tests/store/test_schema_sql.py compares the objects it creates.
POSTGRES_INSTALL = f"""
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
        SELECT kind, status, mod(pg_backend_pid(), {SLOTS}), count(*) FROM new_rows
        GROUP BY kind, status ORDER BY kind, status
        ON CONFLICT (kind, status, slot) DO UPDATE SET n = llm_job_counts.n + EXCLUDED.n;
        RETURN NULL;
    END $f$;

    CREATE OR REPLACE FUNCTION llm_job_counts_update() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        INSERT INTO llm_job_counts (kind, status, slot, n)
        VALUES (OLD.kind, OLD.status, mod(pg_backend_pid(), {SLOTS}), -1)
        ON CONFLICT (kind, status, slot) DO UPDATE SET n = llm_job_counts.n - 1;
        INSERT INTO llm_job_counts (kind, status, slot, n)
        VALUES (NEW.kind, NEW.status, mod(pg_backend_pid(), {SLOTS}), 1)
        ON CONFLICT (kind, status, slot) DO UPDATE SET n = llm_job_counts.n + 1;
        RETURN NULL;
    END $f$;

    CREATE OR REPLACE FUNCTION llm_job_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        INSERT INTO llm_job_counts (kind, status, slot, n)
        SELECT kind, status, {SLOTS} + mod(pg_backend_pid(), {SLOTS}), -count(*) FROM old_rows
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
"""  # noqa: S608  (SLOTS is our constant, not input)

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS llm_jobs_count_insert AFTER INSERT ON llm_jobs FOR EACH ROW BEGIN
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (NEW.kind, NEW.status, 0, 1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n + 1;
END""",
    """CREATE TRIGGER IF NOT EXISTS llm_jobs_count_update AFTER UPDATE OF kind, status ON llm_jobs FOR EACH ROW
WHEN OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind BEGIN
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (OLD.kind, OLD.status, 0, -1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n - 1;
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (NEW.kind, NEW.status, 0, 1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n + 1;
END""",
    """CREATE TRIGGER IF NOT EXISTS llm_jobs_count_delete AFTER DELETE ON llm_jobs FOR EACH ROW BEGIN
    INSERT INTO llm_job_counts (kind, status, slot, n) VALUES (OLD.kind, OLD.status, 0, -1)
    ON CONFLICT (kind, status, slot) DO UPDATE SET n = n - 1;
END""",
)

_READ = text("SELECT kind, status, SUM(n) FROM llm_job_counts GROUP BY kind, status HAVING SUM(n) <> 0")


def install(conn: Connection) -> None:
    """Create the counting triggers if they are missing, backfilling the counts from the rows once.

    Runs inside ``conn``'s transaction; the count and the triggers' creation commit together, and no
    write to ``llm_jobs`` commits in between, so nothing is counted twice or missed.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(POSTGRES_INSTALL)
        return
    present = {name for (name,) in conn.execute(text(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'llm_jobs'"))}
    if present.issuperset(TRIGGERS[:3]):
        return
    # The DELETE opens the write transaction first (SQLite has one writer), so the count is exact.
    conn.execute(text("DELETE FROM llm_job_counts"))
    conn.execute(text("INSERT INTO llm_job_counts (kind, status, slot, n) "
                      "SELECT kind, status, 0, COUNT(*) FROM llm_jobs GROUP BY kind, status"))
    for ddl in _SQLITE_TRIGGERS:
        conn.exec_driver_sql(ddl)


def read(conn: Connection) -> dict[tuple[str, str], int]:
    """(kind, status) -> number of jobs, from the counter rows (at most 2 x SLOTS per key)."""
    return {(kind, status): int(n) for kind, status, n in conn.execute(_READ)}


__all__ = ["POSTGRES_INSTALL", "SLOTS", "TRIGGERS", "install", "read"]
