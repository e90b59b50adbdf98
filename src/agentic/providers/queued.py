"""The queued repository: quick requests go straight through, slow ones become jobs run by Inngest.

The request lives in the job row, not in the event (events have size limits); the event carries only
``{job_id, user_id}`` and uses the job id as its own id, so a re-send is deduplicated by Inngest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import Job, JobKind
from agentic.domain.llm import LLMRequest, LLMResponse
from agentic.providers.base import CancelCheck, DeltaCallback, LLMRepository
from agentic.providers.routing import Route, RoutingDecision, RoutingRule
from agentic.queue import EVENT_GENERATE, EVENT_PREVIEW, EventSender, EventSendError
from agentic.store.jobs import JobStore

EVENT_FOR_KIND = {JobKind.GENERATE: EVENT_GENERATE, JobKind.PREVIEW: EVENT_PREVIEW}


class QueueUnavailable(Exception):
    """The job could not be queued; it was marked failed with code ``queue_unavailable``."""

    def __init__(self, job: Job, reason: str) -> None:
        super().__init__(reason)
        self.job = job
        self.reason = reason


@dataclass(frozen=True)
class QueuedJob:
    """What a caller gets for a queued request: the job to poll."""

    job: Job
    routing: RoutingDecision | None = None
    created: bool = True

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def status(self) -> str:
        return self.job.status.value


class QueuedLLMRepository:
    def __init__(self, base: LLMRepository, store: JobStore, events: EventSender, routing: RoutingRule) -> None:
        self.base = base
        self.store = store
        self.events = events
        self.routing = routing
        self.name = base.name

    def generate(
        self, request: LLMRequest, *, on_delta: DeltaCallback | None = None,
        should_cancel: CancelCheck | None = None, deadline: float | None = None,
    ) -> LLMResponse:
        """Direct generation through the wrapped provider (the LLMRepository interface)."""
        return self.base.generate(request, on_delta=on_delta, should_cancel=should_cancel, deadline=deadline)

    def submit(
        self, request: LLMRequest, *, user_id: str, idempotency_key: str | None = None,
    ) -> LLMResponse | QueuedJob:
        """Run a quick request now; queue a slow one and return the job to poll."""
        decision = self.routing.decide(request.model, request.estimated_prompt_tokens())
        if decision.route is Route.DIRECT:
            return self.base.generate(request)
        queued = self.enqueue(JobKind.GENERATE, request.model_dump(mode="json", exclude_none=True),
                              model=request.model, user_id=user_id, idempotency_key=idempotency_key)
        return QueuedJob(job=queued.job, routing=decision, created=queued.created)

    def enqueue(
        self, kind: JobKind, payload: dict[str, Any], *, model: str, user_id: str,
        idempotency_key: str | None = None,
    ) -> QueuedJob:
        """Create the pending job and send its event; on a failed send the job is failed, never orphaned."""
        job, created = self.store.create(kind=kind, user_id=user_id, request=payload, model=model,
                                         provider=self.base.name, idempotency_key=idempotency_key)
        if not created and job.status.value != "pending":
            return QueuedJob(job=job, created=False)
        try:
            # A replayed create re-sends too: the event id makes that a no-op unless the first send was lost.
            self.events.send(EVENT_FOR_KIND[kind], {"job_id": job.id, "user_id": user_id}, event_id=job.id)
        except EventSendError as exc:
            if not created:
                # A replay: the first request queued this job (its event is with Inngest, or that request is
                # still sending it and fails the job itself if it cannot). This re-send was only a safety net:
                # failing the job here would fail a job Inngest is about to run. The client may retry later.
                raise QueueUnavailable(job, str(exc)) from exc
            self.store.fail(job.id, ErrorCode.QUEUE_UNAVAILABLE.value, str(exc), release_idempotency_key=True)
            failed = self.store.get(job.id) or job
            raise QueueUnavailable(failed, str(exc)) from exc
        return QueuedJob(job=job, created=created)
