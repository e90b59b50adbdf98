"""Alembic's environment for agentic: run only through :mod:`agentic.store.migrate`, which passes the open
connection (inside its transaction and, on PostgreSQL, its advisory lock) in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from agentic.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata for autogenerate)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite alters a table by copying it (batch mode); a revision written by autogenerate says so itself.
    render_as_batch=True,
    compare_type=True,
    compare_server_default=True,
)
with context.begin_transaction():
    context.run_migrations()
