"""A database's schema in comparable form, on SQLite and PostgreSQL: what the schema tests compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, text

_RELEASES = Path(__file__).with_name("releases")
#: The schema the last release before migrations created, by dialect (see the files' headers).
PRE_MIGRATIONS = {
    "sqlite": _RELEASES / "pre-migrations-sqlite.sql",
    "postgresql": _RELEASES / "pre-migrations-postgres.sql",
}


def describe(engine: Engine) -> dict[str, Any]:
    """Tables (columns, keys, indexes, constraints), triggers, PostgreSQL's functions, and the revision."""
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
        if engine.dialect.name == "postgresql":
            # The counting triggers (store/counts.py) and the functions they run, as PostgreSQL prints them.
            out["triggers"] = sorted(conn.execute(text(
                "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")).all())
            out["functions"] = sorted(conn.execute(text(
                "SELECT proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                "WHERE p.pronamespace = current_schema()::regnamespace")).all())
        else:
            out["triggers"] = sorted(conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all())
        if "alembic_version" in out:
            out["revision"] = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return out


def drop_everything(engine: Engine) -> None:
    """Empty the database (tables, and PostgreSQL's trigger functions), as if it were new."""
    with engine.begin() as conn:
        for table in inspect(conn).get_table_names():
            conn.execute(text(f'DROP TABLE "{table}"' + (" CASCADE" if engine.dialect.name == "postgresql" else "")))
        if engine.dialect.name == "postgresql":
            for (name,) in conn.execute(text(
                    "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace")).all():
                conn.execute(text(f'DROP FUNCTION "{name}"'))
