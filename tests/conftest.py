"""Shared fixtures: a real database for each test, SQLite and PostgreSQL; the loopback Anthropic stand-in.

PostgreSQL tests use ``TEST_DATABASE_URL`` (``.ci/run`` points it at the local server). Each test gets a
schema of its own, dropped afterwards, so nothing is left on a server that later runs reuse.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text

from agentic.store.engine import create_db_engine, init_db
from agentic.store.jobs import JobStore
from tests.providers.anthropic_server import anthropic_server, anthropic_stand_in  # noqa: F401 (fixtures)

os.environ.setdefault("INNGEST_DEV", "1")  # before any app import: tests never reach Inngest Cloud

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


@functools.cache
def _postgres_skip_reason() -> str | None:
    """Why PostgreSQL tests cannot run here (probed once per session), or None when they can."""
    if not PG_URL:
        return "TEST_DATABASE_URL is not set (point it at a PostgreSQL server to run these tests)"
    try:
        probe = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
    except Exception as exc:
        return f"PostgreSQL at TEST_DATABASE_URL is unreachable: {type(exc).__name__}"
    return None


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose default schema is a fresh one, dropped after the test."""
    reason = _postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    schema = "t_" + secrets.token_hex(6)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_search_path(PG_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agentic.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that uses this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url, pool_size=20)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> JobStore:
    return JobStore(engine)
