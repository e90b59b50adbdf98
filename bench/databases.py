"""The databases a run measures: a SQLite file in a temporary directory, and a PostgreSQL schema of its
own on the local server (``?options=-csearch_path=<schema>``, as the tests do), dropped at the end."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from agentic.store.engine import create_db_engine, init_db

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Database:
    name: str  # "sqlite" | "postgres"
    url: str
    version: str

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def postgres_unreachable(url: str) -> str | None:
    """Why the server at ``url`` cannot be used, or None."""
    try:
        probe = create_engine(url, connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


@contextmanager
def sqlite_database() -> Iterator[Database]:
    import sqlite3

    with tempfile.TemporaryDirectory(prefix="agentic-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        _create_tables(url)
        yield Database("sqlite", url, f"SQLite {sqlite3.sqlite_version}")


@contextmanager
def postgres_database(base_url: str) -> Iterator[Database]:
    schema = "bench_" + secrets.token_hex(5)
    admin = create_engine(base_url, connect_args={"connect_timeout": 5})
    with admin.begin() as conn:
        version = str(conn.execute(text("SHOW server_version")).scalar())
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = with_search_path(base_url, schema)
        _create_tables(url)
        yield Database("postgres", url, f"PostgreSQL {version.split(maxsplit=1)[0]}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def fresh_like(db: Database) -> Iterator[Database]:
    """An empty database of the same kind as ``db`` (for a benchmark that must control the row count)."""
    if not db.is_postgres:
        with sqlite_database() as fresh:
            yield fresh
        return
    url = make_url(db.url)
    base = url.set(query={k: v for k, v in url.query.items() if k != "options"})
    with postgres_database(base.render_as_string(hide_password=False)) as fresh:
        yield fresh


def _create_tables(url: str) -> None:
    engine = create_db_engine(url)
    init_db(engine)
    engine.dispose()
