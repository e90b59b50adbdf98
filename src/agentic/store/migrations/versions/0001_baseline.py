"""Baseline: the schema as the last release before migrations made it (``create_all`` + counting triggers).

Written to be idempotent, so that a database that release created (tables present, no ``alembic_version``) is
taken as it is and only stamped: every table and index is created only where missing, the counting triggers are
installed (and backfilled) only where missing, and PostgreSQL's old ``ck_llm_jobs_kind`` check is dropped. The
tables are frozen here, not imported from ``agentic.store.tables``: later revisions change those.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agentic.store import counts

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_STATUSES = "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')"


def _tables() -> sa.MetaData:
    """The three tables of the last release before migrations, exactly as its models created them."""
    metadata = sa.MetaData()
    sa.Table(
        "llm_jobs", metadata,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("provider", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("request", _JSON, nullable=False),
        sa.Column("response", _JSON),
        sa.Column("partial_output", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(_STATUSES, name="ck_llm_jobs_status"),
        sa.CheckConstraint("attempts >= 0", name="ck_llm_jobs_attempts"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_llm_jobs_user_idempotency"),
        sa.Index("ix_llm_jobs_user_created", "user_id", "created_at", "id"),
        sa.Index("ix_llm_jobs_finished", "finished_at"),
        sa.Index("ix_llm_jobs_status_updated", "status", "updated_at"),
    )
    sa.Table(
        "api_keys", metadata,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.Index("ix_api_keys_user", "user_id"),
    )
    sa.Table(
        "llm_job_counts", metadata,
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    )
    return metadata


def upgrade() -> None:
    conn = op.get_bind()
    _tables().create_all(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        # Kinds are the application's (one spec each): a database from before that still has the check.
        op.execute("ALTER TABLE llm_jobs DROP CONSTRAINT IF EXISTS ck_llm_jobs_kind")
    counts.install(conn)


def downgrade() -> None:
    raise NotImplementedError("the baseline is where migrations start: there is nothing to go back to")
