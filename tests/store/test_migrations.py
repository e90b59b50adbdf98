"""Schema migrations, on SQLite and PostgreSQL: a database from the last release before migrations, holding jobs,
keys and counters, is upgraded in place by ``agentic db init`` with every row kept; a new database made in one go
equals one made by running every revision; the models and the revisions never drift apart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, Table, create_engine, inspect, text
from sqlmodel import SQLModel

from agentic.cli import main
from agentic.domain.jobs import JobKind, JobStatus
from agentic.store import counts
from agentic.store.engine import create_db_engine, init_db
from agentic.store.jobs import JobStore
from agentic.store.migrate import head_revision, run_revisions, script_directory, status
from tests.cli.cli_support import cli_env
from tests.store.schema_shape import PRE_MIGRATIONS, describe, drop_everything

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def bare(database_url: str) -> Iterator[Engine]:
    """An engine on an empty database (no init_db)."""
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def _load_pre_migrations(engine: Engine) -> None:
    """Make the database exactly as the last release before migrations did (its dumped schema)."""
    ddl = PRE_MIGRATIONS[engine.dialect.name].read_text()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.connection.executescript(ddl)  # type: ignore[attr-defined]
        else:
            conn.exec_driver_sql(ddl)


def _fill_as_the_release_did(engine: Engine) -> None:
    """Jobs of both kinds in every status (moved there by UPDATEs, so the counting triggers run), a deleted
    job, keys live and revoked: the columns that release had, written through its column types (reflected)."""
    metadata = MetaData()
    jobs = Table("llm_jobs", metadata, autoload_with=engine)
    keys = Table("api_keys", metadata, autoload_with=engine)
    with engine.begin() as conn:
        for n in range(12):
            job_id, created = f"job_{n:02d}", T0 + timedelta(minutes=n)
            conn.execute(jobs.insert().values(
                id=job_id, kind=("generate", "preview")[n % 2], user_id=f"user-{n % 3}", status="pending",
                provider="openrouter", model="anthropic/claude-sonnet-4.5", partial_output="", attempts=0,
                request={"messages": [{"role": "user", "content": f"question {n} é ✓"}]},
                idempotency_key=f"idem-{n}" if n % 4 == 0 else None, created_at=created, updated_at=created))
            status_ = ("pending", "processing", "completed", "failed", "cancelled")[n % 5]
            if status_ == "pending":
                continue
            done = status_ != "processing"
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(
                status=status_, attempts=n % 3, prompt_tokens=7, completion_tokens=11, total_tokens=18,
                response={"content": "answer ✓", "finish_reason": "stop"} if status_ == "completed" else None,
                partial_output="answer ✓" if status_ == "completed" else "answer so far",
                error_code="provider_error" if status_ == "failed" else None,
                error_message="upstream 502" if status_ == "failed" else None,
                updated_at=created + timedelta(seconds=5), started_at=created + timedelta(seconds=1),
                finished_at=created + timedelta(seconds=9) if done else None,
                cancel_requested_at=created + timedelta(seconds=8) if status_ == "cancelled" else None))
        conn.execute(jobs.delete().where(jobs.c.id == "job_11"))
        for n in range(3):
            conn.execute(keys.insert().values(
                id=f"key_{n}", user_id=f"user-{n}", key_hash=f"{n:064x}", label=f"laptop {n}" if n else None,
                created_at=T0, revoked_at=T0 + timedelta(days=1) if n == 2 else None,
                last_used_at=T0 + timedelta(hours=n) if n else None))


def _rows(engine: Engine, columns: dict[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    with engine.connect() as conn:
        for table, names in columns.items():
            order = ", ".join(name for name in names if name in ("id", "kind", "status", "slot"))
            result = conn.execute(text(f"SELECT {', '.join(names)} FROM {table} ORDER BY {order}"))
            out[table] = [dict(row._mapping) for row in result]
    return out


def test_a_release_database_with_data_is_upgraded_in_place_keeping_every_row(bare: Engine) -> None:
    _load_pre_migrations(bare)
    _fill_as_the_release_did(bare)
    old_columns = {table: [c["name"] for c in inspect(bare).get_columns(table)]
                   for table in ("llm_jobs", "api_keys", "llm_job_counts")}
    before = _rows(bare, old_columns)
    with bare.connect() as conn:
        counts_before = counts.read(conn)
    found = status(bare)
    assert (found.current, found.unversioned) == (None, True)
    assert found.pending == tuple(reversed([r.revision for r in script_directory().walk_revisions()]))

    code = CliRunner().invoke(main, ["db", "init"], env=cli_env(str(bare.url.render_as_string(False))))
    assert code.exit_code == 0, code.output
    assert "upgraded from a database from before migrations" in code.output

    assert status(bare).up_to_date
    assert _rows(bare, old_columns) == before
    assert len(before["llm_jobs"]) == 11 and len(before["api_keys"]) == 3
    with bare.connect() as conn:
        assert counts.read(conn) == counts_before
        assert counts_before == {(kind, st): n for kind, st, n in conn.execute(text(
            "SELECT kind, status, COUNT(*) FROM llm_jobs GROUP BY kind, status"))}
    # The new code reads the old rows, writes new ones, and the counting triggers still count them.
    store = JobStore(bare)
    old = store.get("job_02")
    assert old is not None and old.status is JobStatus.COMPLETED and old.kind is JobKind.GENERATE
    job, _ = store.create(kind=JobKind.GENERATE, user_id="user-0", model="m", provider="mock",
                          request={"messages": [{"role": "user", "content": "after the upgrade"}], "model": "m"})
    assert store.get(job.id) is not None
    with bare.connect() as conn:
        assert counts.read(conn)[("generate", "pending")] == counts_before[("generate", "pending")] + 1


def test_a_new_database_made_in_one_go_equals_every_revision_run_from_empty(bare: Engine) -> None:
    init_db(bare)  # the fast path: create_all, the counting triggers, stamped at the head
    at_once = describe(bare)
    drop_everything(bare)
    assert inspect(bare).get_table_names() == []
    with bare.begin() as conn:
        run_revisions(conn)
    assert describe(bare) == at_once
    assert at_once["revision"] == [head_revision()]


def test_the_models_and_the_revisions_describe_the_same_schema(bare: Engine) -> None:
    """Fails when a model changes without a revision: Alembic's autogenerate finds nothing to add."""
    with bare.begin() as conn:
        run_revisions(conn)
    with bare.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_every_revision_has_a_downgrade_or_says_why_not() -> None:
    """A revision's file is complete: one head, a linear history starting at the baseline."""
    revisions = list(script_directory().walk_revisions())
    assert [r.revision for r in revisions if r.down_revision is None] == ["0001"]
    assert len(script_directory().get_heads()) == 1
    assert all(r.module.__doc__ for r in revisions)


def test_db_status_says_behind_until_db_init_then_current(database_url: str) -> None:
    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), env=cli_env(database_url), catch_exceptions=False)
        return result.exit_code, result.output

    code, output = run("db", "status")
    assert code == 1
    assert "revision: none, empty (no tables)" in output
    assert f"head:     {head_revision()}" in output and "behind by" in output
    assert run("db", "init")[0] == 0
    code, output = run("db", "status")
    assert (code, output.splitlines()[-1]) == (0, "status:   current")
    assert f"revision: {head_revision()}" in output


@pytest.mark.postgres
def test_concurrent_db_inits_on_postgresql_migrate_once(postgres_url: str) -> None:
    """Two deploys running db init at once: the advisory lock makes the second find the work done."""
    engines = [create_engine(postgres_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def init(engine: Engine) -> None:
        barrier.wait()
        try:
            init_db(engine)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=init, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    for engine in engines:
        engine.dispose()
