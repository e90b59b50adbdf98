"""A job's life: its statuses, the transitions allowed between them, and the read model clients see."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


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
    GENERATE = "generate"
    PREVIEW = "preview"


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
    error_code: str | None = None
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
