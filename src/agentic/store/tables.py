"""The SQLModel tables. ``schema.sql`` is the same schema as PostgreSQL DDL; a test keeps them equal."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import JobKind, JobStatus


class JSONVariant(TypeDecorator[Any]):
    """JSON; JSONB on PostgreSQL. The PostgreSQL dialect is imported when a PostgreSQL engine first uses the
    type, not at start-up (``JSON().with_variant(JSONB(), ...)`` imported it on SQLite deployments too)."""

    impl = JSON
    cache_ok = True
    should_evaluate_none = True  # as JSON's default (none_as_null=False): the same behaviour as before

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; on SQLite (which keeps no zone) values are stored and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrEnumText(TypeDecorator[StrEnum]):
    """A ``StrEnum`` stored as TEXT: the row holds the value, Python sees the member (typed columns without a
    native database enum, so adding a value needs no ALTER TYPE)."""

    impl = Text
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: StrEnum | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobRow(SQLModel, table=True):
    __tablename__ = "llm_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", [s.value for s in JobStatus]), name="ck_llm_jobs_status"),
        CheckConstraint("attempts >= 0", name="ck_llm_jobs_attempts"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_llm_jobs_user_idempotency"),
        # The owner's jobs, newest first (and the keyset cursor that pages them).
        Index("ix_llm_jobs_user_created", "user_id", "created_at", "id"),
        # Cleanup of finished jobs by finish time.
        Index("ix_llm_jobs_finished", "finished_at"),
        # Stuck-job sweeps and queue depth: by status, then last change.
        Index("ix_llm_jobs_status_updated", "status", "updated_at"),
    )

    id: str = Field(sa_column=Column(Text, primary_key=True))
    # Kinds are checked by the application (one spec each, agentic.service.kinds), not by a CHECK constraint, so a
    # new kind needs no migration.
    kind: JobKind = Field(sa_column=Column(StrEnumText(JobKind), nullable=False))
    user_id: str = Field(sa_column=Column(Text, nullable=False))
    status: JobStatus = Field(sa_column=Column(StrEnumText(JobStatus), nullable=False))
    provider: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    model: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    request: dict[str, Any] = Field(sa_column=Column(JSONVariant, nullable=False))
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONVariant, nullable=True))
    partial_output: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=text("''")))
    error_code: ErrorCode | None = Field(default=None, sa_column=Column(StrEnumText(ErrorCode), nullable=True))
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default=text("0")))
    prompt_tokens: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    completion_tokens: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    total_tokens: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    idempotency_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    cancel_requested_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class ApiKeyRow(SQLModel, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        Index("ix_api_keys_user", "user_id"),
    )

    id: str = Field(sa_column=Column(Text, primary_key=True))
    user_id: str = Field(sa_column=Column(Text, nullable=False))
    key_hash: str = Field(sa_column=Column(Text, nullable=False))
    label: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


#: Jobs per (kind, status), kept by triggers on ``llm_jobs`` (see store/counts.py) so a metrics scrape never
#: counts the jobs table. Several ``slot`` rows per key spread concurrent writers; a count is the sum over its
#: slots (a slot may go negative). A plain table, not a model: nothing reads it as objects, and a SQLModel
#: class costs start-up time.
JOB_COUNTS = Table(
    "llm_job_counts", SQLModel.metadata,
    Column("kind", Text, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False, server_default=text("0")),
)
