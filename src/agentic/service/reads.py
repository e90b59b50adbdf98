"""The read side: jobs as their owners and operators see them, for the API, the event streams and the CLI.

Reads never change a row. The list is keyset-paginated; the cursor lives in :mod:`agentic.store.cursor`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from agentic.domain.jobs import Job, JobNotFound, JobStatus
from agentic.providers.longcalls import LongCallMode, long_call_mode
from agentic.service.kinds import KINDS, KindRegistry, UnknownKind
from agentic.store.jobs import JobPage, JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobReads:
    store: JobStore
    kinds: KindRegistry = KINDS
    #: OFFLOAD_MODELS: a job of these models (of a kind that allows it) is made by the Inngest server.
    offload_models: tuple[str, ...] = ()

    def owned(self, job_id: str, *, user_id: str) -> Job:
        """The user's job; another user's job is :class:`JobNotFound` too (no existence leak)."""
        job = self.store.get(job_id, user_id=user_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def find(self, job_id: str, *, user_id: str) -> Job | None:
        return self.store.get(job_id, user_id=user_id)

    def page(self, user_id: str, *, status: JobStatus | None = None, limit: int = 20,
             cursor: str | None = None) -> JobPage:
        """The owner's jobs, newest first; raises ``InvalidCursor`` for a cursor this API did not issue."""
        return self.store.list_for_owner(user_id, status=status, limit=limit, cursor=cursor)

    def result(self, job: Job) -> BaseModel | None:
        return typed_result(job, self.kinds)

    def live_text(self, job: Job) -> bool:
        """False for an offloaded job: no partial output comes before its response."""
        try:
            offloadable = self.kinds[job.kind].offloadable
        except UnknownKind:
            return True
        return not (offloadable and job.model is not None
                    and long_call_mode(job.model, self.offload_models) is LongCallMode.OFFLOAD)

    def text(self, job: Job) -> str:
        """The job's output text: its result's text once there is one, else the partial output."""
        result = self.result(job)
        if result is not None:
            text = self.kinds[job.kind].text(result)
            if text:
                return text
        return job.partial_output


def typed_result(job: Job, kinds: KindRegistry = KINDS) -> BaseModel | None:
    """The stored response as the kind's result model; None when there is none (or it does not validate)."""
    if job.response is None:
        return None
    try:
        result: BaseModel = kinds[job.kind].result_of(job.response)
    except (UnknownKind, ValidationError):
        log.warning("job %s has a stored response that is not a %s result", job.id, job.kind.value)
        return None
    return result
