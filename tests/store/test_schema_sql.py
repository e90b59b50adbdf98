"""schema.sql and the SQLModel tables must describe the same PostgreSQL schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, text
from sqlmodel import SQLModel

from agentic.store.counts import POSTGRES_INSTALL, TRIGGERS
from agentic.store.engine import init_db

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "schema.sql"


def describe(engine: Engine) -> dict[str, Any]:
    """Everything that matters about the schema, in comparable form."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": {c["name"]: (str(c["type"]), c["nullable"], c.get("default"))
                        for c in insp.get_columns(table)},
            "primary_key": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(table)),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
            "checks": sorted((c["name"], " ".join(c["sqltext"].split())) for c in insp.get_check_constraints(table)),
        }
    with engine.connect() as conn:
        # The counting triggers (store/counts.py) and the functions they run, as PostgreSQL prints them.
        out["triggers"] = sorted(conn.execute(text(
            "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")).all())
        out["functions"] = sorted(conn.execute(text(
            "SELECT proname, pg_get_functiondef(p.oid) FROM pg_proc p "
            "WHERE p.pronamespace = current_schema()::regnamespace")).all())
    return out


def test_schema_sql_matches_the_models(postgres_url: str) -> None:
    from_sql = create_engine(postgres_url)
    with from_sql.begin() as conn:
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
    expected = describe(from_sql)
    with from_sql.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(text(f'DROP TABLE "{table.name}"'))
        for name, _ in expected["functions"]:
            conn.execute(text(f'DROP FUNCTION "{name}"'))
    init_db(from_sql)
    actual = describe(from_sql)
    from_sql.dispose()

    assert set(expected) == {"llm_jobs", "api_keys", "llm_job_counts", "triggers", "functions"}
    assert [name for name, _ in expected["triggers"]] == sorted(TRIGGERS)
    assert actual == expected


def test_schema_sql_installs_the_counters_as_init_db_does() -> None:
    assert POSTGRES_INSTALL.strip() in SCHEMA_SQL.read_text()


def test_schema_sql_is_idempotent(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
    assert set(inspect(engine).get_table_names()) == {"llm_jobs", "api_keys", "llm_job_counts"}
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
    removes it, so a new kind can be stored without a migration."""
    engine = create_engine(postgres_url)
    try:
        init_db(engine)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE llm_jobs ADD CONSTRAINT ck_llm_jobs_kind "
                              "CHECK (kind IN ('generate', 'preview'))"))
        init_db(engine)
        checks = {c["name"] for c in inspect(engine).get_check_constraints("llm_jobs")}
        assert "ck_llm_jobs_kind" not in checks
    finally:
        engine.dispose()
