"""Engines suited to both worlds: SQLite embedded (WAL, busy timeout) and PostgreSQL (pool, liveness check)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool, StaticPool

from agentic.store import tables  # noqa: F401  (registers them on SQLModel.metadata)
from agentic.store.liveness import check_on_checkout

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(
    url: str, *, serverless: bool = False, pool_size: int = 5, echo: bool = False,
) -> Engine:
    """Build the engine for ``url``. ``serverless`` drops pooling: each request opens its own connection."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    # hide_parameters: a database error's message (logged with its traceback) must not carry prompts or keys.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if serverless:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=300, pool_timeout=10)
    engine = create_engine(url, connect_args={"connect_timeout": 5}, **kwargs)
    check_on_checkout(engine)  # instead of pool_pre_ping, which costs a round trip on every checkout
    return engine


def is_in_memory_sqlite(url: str) -> bool:
    """A database that lives in this process only (one connection, shared by its threads)."""
    return url in ("sqlite://", "sqlite:///:memory:")


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    in_memory = is_in_memory_sqlite(url)
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        poolclass=StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def init_db(engine: Engine) -> None:
    """Bring the database to the current schema (idempotent): :func:`agentic.store.migrate.upgrade`.

    An empty database gets the tables, indexes and counting triggers at once; one from an earlier release is
    upgraded in place by the Alembic revisions in ``store/migrations`` (a database from before migrations is
    taken as the baseline). On a database from before the job counters, the baseline counts the jobs once
    (locking ``llm_jobs`` against writes for that scan: about a second per ten million rows on PostgreSQL).
    """
    from agentic.store import migrate  # Alembic stays off the request path: only db init and serve run this

    migrate.upgrade(engine)
