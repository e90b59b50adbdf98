"""schema.sql must describe the schema the migrations make (and the models, by test_migrations), at the head
revision."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from agentic.store.counts import POSTGRES_INSTALL, TRIGGERS
from agentic.store.engine import init_db
from agentic.store.migrate import head_revision, run_revisions
from tests.store.schema_shape import PRE_MIGRATIONS, describe, drop_everything

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "schema.sql"


def test_schema_sql_matches_the_migrated_database(postgres_url: str) -> None:
    """schema.sql describes what running every revision from an empty database makes, at the head revision."""
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
    expected = describe(engine)
    drop_everything(engine)
    with engine.begin() as conn:
        run_revisions(conn)
    actual = describe(engine)
    engine.dispose()

    assert set(expected) >= {"llm_jobs", "api_keys", "llm_job_counts", "alembic_version", "triggers", "functions"}
    assert [name for name, _ in expected["triggers"]] == sorted(TRIGGERS)
    assert expected["revision"] == [head_revision()]
    assert actual == expected


def test_schema_sql_installs_the_counters_as_init_db_does() -> None:
    assert POSTGRES_INSTALL.strip() in SCHEMA_SQL.read_text()


def test_schema_sql_is_idempotent(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
    assert set(inspect(engine).get_table_names()) == {"llm_jobs", "api_keys", "llm_job_counts", "alembic_version"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    engine.dispose()


def test_status_is_enforced_by_the_database(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO llm_jobs (id, kind, user_id, status, request, created_at, updated_at) "
            "VALUES ('j', 'generate', 'u', 'running', '{}', now(), now())"))
    engine.dispose()


def test_init_db_drops_the_old_kind_check_of_an_existing_database(postgres_url: str) -> None:
    """A database made before kinds became the application's kept ``ck_llm_jobs_kind``: ``agentic db init``
    (the baseline revision) removes it, so a new kind can be stored without a migration."""
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(PRE_MIGRATIONS["postgresql"].read_text())
            conn.execute(text("ALTER TABLE llm_jobs ADD CONSTRAINT ck_llm_jobs_kind "
                              "CHECK (kind IN ('generate', 'preview'))"))
        init_db(engine)
        checks = {c["name"] for c in inspect(engine).get_check_constraints("llm_jobs")}
        assert "ck_llm_jobs_kind" not in checks
    finally:
        engine.dispose()
