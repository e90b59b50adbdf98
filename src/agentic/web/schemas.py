"""The API's request and response bodies as pydantic models: validated on the way in, documented in OpenAPI.

Views are built from domain objects here, so what a client sees is decided in one place (never a user id,
never a secret, never the stored request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import Job, JobKind, JobStatus
from agentic.domain.llm import ContextDocument, LLMRequest, LLMResponse, PreviewResult, Usage
from agentic.service.reads import typed_result
from agentic.web.params import CURSOR_PATTERN

MAX_CONTEXT_DOCUMENTS = 50
JOBS_PATH = "/api/jobs"
_READ_GRANT_DOC = (
    "a short-lived read token for this job alone (JOB_TOKEN_TTL_SECONDS): pass it as ?token= (EventSource) "
    "or as a bearer to GET the job and its events; null when JOB_TOKEN_SECRET is unset, in lists, in "
    "`done` events and to a token's holder")


class ApiBody(BaseModel):
    """The API's bodies build their validators and serializers when first used, not at import: a cold start
    builds only what its first request needs (BENCHMARKS.md, F11)."""

    model_config = ConfigDict(defer_build=True)


class GenerateRequest(LLMRequest):
    """Body of POST /api/llm/generate: an LLM request plus optional context documents.

    Unknown fields are refused (422), so a misspelt parameter is never silently ignored.
    """

    context: Annotated[list[ContextDocument] | None, Field(max_length=MAX_CONTEXT_DOCUMENTS)] = None

    def llm_request(self) -> LLMRequest:
        fields = {name: getattr(self, name) for name in LLMRequest.model_fields if name in self.model_fields_set}
        return LLMRequest.model_validate(fields)


class JobLinks(ApiBody):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    self_: str = Field(alias="self", description="this job")
    events: str = Field(description="its Server-Sent Events stream")
    cancel: str = Field(description="POST here to cancel it")

    @classmethod
    def for_job(cls, job_id: str) -> JobLinks:
        base = f"{JOBS_PATH}/{job_id}"
        return cls(self_=base, events=f"{base}/events", cancel=f"{base}/cancel")


class JobError(ApiBody):
    code: str = Field(description="stable snake_case code, e.g. rate_limited, queue_unavailable")
    message: str


class JobView(ApiBody):
    """A job as its owner sees it."""

    id: str
    kind: JobKind
    status: JobStatus
    model: str | None
    provider: str | None
    partial_output: str | None = Field(
        description="text streamed so far; null once completed (see response) or before any text")
    response: LLMResponse | PreviewResult | dict[str, Any] | None = Field(
        description="the kind's result: LLMResponse for kind=generate, PreviewResult for kind=preview")
    error: JobError | None = Field(description="why the job failed; null unless status is failed")
    usage: Usage | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    live_text: bool = Field(True, description="false for an offloaded job (OFFLOAD_MODELS): the Inngest server "
                                              "makes the call, so no partial output comes before the response")
    links: JobLinks
    token: str | None = Field(None, description=_READ_GRANT_DOC)

    @classmethod
    def of(cls, job: Job, *, live_text: bool = True, token: str | None = None) -> JobView:
        usage = None
        if job.total_tokens is not None:
            usage = Usage(prompt_tokens=job.prompt_tokens or 0, completion_tokens=job.completion_tokens or 0,
                          total_tokens=job.total_tokens)
        error = None
        if job.status is JobStatus.FAILED:
            error = JobError(code=job.error_code or ErrorCode.INTERNAL, message=job.error_message or "")
        partial = job.partial_output if job.status is not JobStatus.COMPLETED and job.partial_output else None
        return cls(
            id=job.id, kind=job.kind, status=job.status, model=job.model, provider=job.provider,
            partial_output=partial, response=_typed_response(job), error=error, usage=usage,
            attempts=job.attempts, created_at=job.created_at, updated_at=job.updated_at,
            started_at=job.started_at, finished_at=job.finished_at, cancel_requested_at=job.cancel_requested_at,
            live_text=live_text, links=JobLinks.for_job(job.id), token=token,
        )


def _typed_response(job: Job) -> LLMResponse | PreviewResult | dict[str, Any] | None:
    result = typed_result(job)
    if result is None or isinstance(result, LLMResponse | PreviewResult):
        return result
    return result.model_dump(mode="json")  # a kind registered beyond the built-in ones


class JobList(ApiBody):
    items: list[JobView]
    next_cursor: Annotated[str, Field(json_schema_extra={"pattern": CURSOR_PATTERN})] | None = Field(
        description="pass as ?cursor= for the next page; null on the last page")


class GenerateCompleted(ApiBody):
    """200: a quick model answered directly."""

    status: Literal["completed"] = "completed"
    response: LLMResponse


class QueuedJobAnswer(ApiBody):
    """202: the request became a job; follow ``links`` (also in the Location header)."""

    job_id: str
    kind: JobKind
    status: JobStatus = Field(description="pending for a new job; a replayed Idempotency-Key shows its status")
    links: JobLinks
    token: str | None = Field(None, description=_READ_GRANT_DOC)

    @classmethod
    def of(cls, job: Job, *, token: str | None = None) -> QueuedJobAnswer:
        return cls(job_id=job.id, kind=job.kind, status=job.status, links=JobLinks.for_job(job.id), token=token)


class DatabaseHealth(ApiBody):
    ok: bool


class ProviderHealth(ApiBody):
    name: str
    configured: bool
    missing: str | None = Field(description="the environment variable to set, when not configured")


class QueueHealth(ApiBody):
    enabled: bool
    step_time_budget_seconds: float = Field(
        description="STEP_TIME_BUDGET_SECONDS: the longest a provider call streams inside one step")
    max_continuations: int = Field(description="MAX_CONTINUATIONS: segments a long answer may add")


class InngestHealth(ApiBody):
    mode: Literal["dev", "cloud"]
    event_key_set: bool
    signing_key_set: bool


class Health(ApiBody):
    status: Literal["ok", "degraded"]
    database: DatabaseHealth
    provider: ProviderHealth
    queue: QueueHealth
    inngest: InngestHealth
    version: str


class ProblemFieldError(ApiBody):
    field: str
    message: str


class Problem(ApiBody):
    """RFC 9457 problem details; extra members (job_id, job_status, provider...) appear where relevant."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="stable snake_case error code")
    field: str | None = Field(None, description="the offending field as a dotted path, e.g. messages.0.content")
    errors: list[ProblemFieldError] | None = None


class StatusEvent(ApiBody):
    """SSE ``event: status``."""

    status: JobStatus
    attempts: int
    updated_at: datetime
    live_text: bool = Field(True, description="false for an offloaded job: no delta comes before done")


class DeltaEvent(ApiBody):
    """SSE ``event: delta``: text to append to what the client has."""

    text: str


class ResetEvent(ApiBody):
    """SSE ``event: reset``: keep the first ``offset`` characters of the partial text received so far and
    drop the rest (a retried attempt starts over from there; 0 drops everything)."""

    offset: int = Field(ge=0, description="characters (code points) of the received text to keep")
    attempts: int


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


__all__ = [
    "DeltaEvent",
    "GenerateCompleted",
    "GenerateRequest",
    "Health",
    "JobList",
    "JobView",
    "Problem",
    "QueuedJobAnswer",
    "ResetEvent",
    "StatusEvent",
    "dump",
]
