"""A job's life: its statuses, the transitions allowed between them, and the read model clients see."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentic.domain.errors import ErrorCode


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


class JobKind(StrEnum):
    """What a job does. Each kind has one spec (:mod:`agentic.service.kinds`); the built-in kinds are members, and
    :meth:`register` adds another (a plugin or a test) without editing this enum or the schema."""

    GENERATE = "generate"
    PREVIEW = "preview"

    @classmethod
    def register(cls, value: str) -> JobKind:
        """The kind named ``value``, created once (a pseudo-member: ``JobKind(value)`` finds it from then on)."""
        _REGISTERED.add(value)
        return cls(value)

    @classmethod
    def _missing_(cls, value: object) -> JobKind | None:
        if not isinstance(value, str) or value not in _REGISTERED:
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        found: JobKind = cls._value2member_map_.setdefault(value, member)  # type: ignore[assignment]
        return found


_REGISTERED: set[str] = set()


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

#: target status -> the statuses it may be reached from. Terminal states are never left.
ALLOWED_FROM: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PROCESSING: frozenset({JobStatus.PENDING}),
    JobStatus.COMPLETED: frozenset({JobStatus.PROCESSING}),
    JobStatus.FAILED: frozenset({JobStatus.PENDING, JobStatus.PROCESSING}),
    JobStatus.CANCELLED: frozenset({JobStatus.PENDING, JobStatus.PROCESSING}),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return current in ALLOWED_FROM.get(target, frozenset())


class Job(BaseModel):
    """A job as stored: what its owner may see, less nothing (secrets never reach a job row)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: JobKind
    user_id: str
    status: JobStatus
    provider: str | None = None
    model: str | None = None
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    partial_output: str = ""
    error_code: ErrorCode | None = None
    error_message: str | None = None
    attempts: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


class JobNotFound(LookupError):
    """No such job for this user (another user's job is "not found" too)."""


class JobAlreadyFinished(Exception):
    def __init__(self, job: Job) -> None:
        super().__init__(f"job is already {job.status.value}")
        self.job = job
