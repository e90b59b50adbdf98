"""Bring a database to the current schema, and say where it stands: Alembic revisions shipped in the package.

``upgrade`` handles every database ``agentic db init`` can meet:

- empty: the tables are created from the models in one go (``create_all``, the counting triggers) and stamped
  at the head revision, Alembic's own recipe for a new database (a test proves it equal to running every
  revision from the baseline);
- made by the last release before migrations (tables, no ``alembic_version``): the baseline revision is
  idempotent, so the database is taken as it is, then upgraded;
- at an earlier revision: the revisions after it run, in one transaction on PostgreSQL.

On PostgreSQL the whole upgrade holds an advisory lock, so two deploys (or ``agentic serve`` starting beside a
``db init``) never migrate at once; the second finds the work done. Alembic is imported here only, never on the
request path.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

from agentic.store import counts, tables  # noqa: F401  (tables: registers them on SQLModel.metadata)

MIGRATIONS = Path(__file__).with_name("migrations")
#: pg_advisory_xact_lock key: "agentic" in ASCII, so an operator can recognise it in pg_locks.
ADVISORY_LOCK = 0x61_67_65_6E_74_69_63


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands. ``current`` is None for an empty database and for one made before migrations
    (``unversioned``: it has the tables but no revision yet)."""

    current: str | None
    head: str
    pending: tuple[str, ...]
    unversioned: bool = False

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, pointed at the revisions inside the package (no alembic.ini to ship)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    """The revisions, read once per process."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package always ships the baseline
        raise RuntimeError("no migration revisions found")
    return head


def upgrade(engine: Engine) -> SchemaStatus:
    """Bring the database to the head revision (idempotent); returns the status it was found in."""
    with _migrating(engine) as conn:
        before = _status(conn)
        if before.current is None and not before.unversioned:
            SQLModel.metadata.create_all(conn)
            counts.install(conn)
            MigrationContext.configure(conn).stamp(script_directory(), head_revision())
        elif not before.up_to_date:
            run_revisions(conn)
    return before


def run_revisions(conn: Connection, target: str = "head") -> None:
    """Run the revisions from the database's current one up to ``target`` on ``conn`` (in its transaction)."""
    command.upgrade(alembic_config(conn), target)


def status(engine: Engine) -> SchemaStatus:
    with engine.connect() as conn:
        return _status(conn)


def _status(conn: Connection) -> SchemaStatus:
    current = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    unversioned = current is None and inspect(conn).has_table("llm_jobs")
    if current == head:
        pending: tuple[str, ...] = ()
    else:
        lower = "base" if current is None else current
        revisions = script_directory().iterate_revisions(head, lower)
        pending = tuple(reversed([r.revision for r in revisions]))
    return SchemaStatus(current=current, head=head, pending=pending, unversioned=unversioned)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
        yield conn


__all__ = ["SchemaStatus", "alembic_config", "head_revision", "run_revisions", "status", "upgrade"]
