"""Queueing a job: the pending row, then its event. A use case of the service layer.

The request lives in the job row, not in the event (events have size limits); the event carries only
``{job_id, user_id}`` and uses the job id as its own id, so a re-send is deduplicated by Inngest.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import Job, JobStatus
from agentic.inngest.events import EventSender, EventSendError
from agentic.service.kinds import AnySpec
from agentic.store.jobs import JobStore


class QueueUnavailable(Exception):
    """The job could not be queued; it was marked failed with code ``queue_unavailable``."""

    def __init__(self, job: Job, reason: str) -> None:
        super().__init__(reason)
        self.job = job
        self.reason = reason


@dataclass(frozen=True)
class QueuedJob:
    """What a caller gets for a queued request: the job to poll (``created`` is False for a replay)."""

    job: Job
    created: bool = True

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def status(self) -> str:
        return self.job.status.value


@dataclass(frozen=True)
class JobQueue:
    store: JobStore
    events: EventSender
    #: The provider jobs are queued for (recorded on the row).
    provider: str

    def enqueue(
        self, spec: AnySpec, request: BaseModel, *, model: str, user_id: str, idempotency_key: str | None = None,
    ) -> QueuedJob:
        """Create the pending job and send its event; on a failed send the job is failed, never orphaned."""
        job, created = self.store.create(kind=spec.kind, user_id=user_id,
                                         request=request.model_dump(mode="json", exclude_none=True),
                                         model=model, provider=self.provider, idempotency_key=idempotency_key)
        if not created and job.status is not JobStatus.PENDING:
            return QueuedJob(job=job, created=False)
        try:
            # A replayed create re-sends too: the event id makes that a no-op unless the first send was lost.
            self.events.send(spec.event, {"job_id": job.id, "user_id": user_id}, event_id=job.id)
        except EventSendError as exc:
            if not created:
                # A replay: the first request queued this job (its event is with Inngest, or that request is
                # still sending it and fails the job itself if it cannot). This re-send was only a safety net:
                # failing the job here would fail a job Inngest is about to run. The client may retry later.
                raise QueueUnavailable(job, str(exc)) from exc
            failed = self.store.fail(job.id, ErrorCode.QUEUE_UNAVAILABLE, str(exc), release_idempotency_key=True)
            # None: the job ended meanwhile (a cancel won the race); say how it stands.
            raise QueueUnavailable(failed or self.store.get(job.id) or job, str(exc)) from exc
        return QueuedJob(job=job, created=created)
