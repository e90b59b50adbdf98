"""The HTTP API under /api: thin routes that read input, call the service and shape the answer.

Authentication is a before_request hook on this blueprint only, so /api/inngest (a separate view that
Inngest signs) is never asked for an API key. Domain exceptions become problems in the handlers below.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from flask import Blueprint, Flask, Response, request, stream_with_context
from pydantic import BaseModel

import agentic
from agentic.bootstrap import Container
from agentic.domain.errors import LLMError
from agentic.domain.jobs import Job, JobAlreadyFinished, JobNotFound, JobStatus
from agentic.domain.llm import PreviewRequest
from agentic.service.jobqueue import QueuedJob, QueueUnavailable
from agentic.store.cursor import InvalidCursor
from agentic.store.jobs import MAX_PAGE_SIZE, IdempotencyConflict
from agentic.web import params
from agentic.web.auth import (
    authenticate,
    authenticate_job_token,
    check_metrics_token,
    current_job_token,
    current_key,
    job_token_credential,
)
from agentic.web.bodies import IDEMPOTENCY_HEADER, idempotency_key, read_json
from agentic.web.cors import apply_cors
from agentic.web.problems import ApiProblem, llm_problem, parameter_problem, register_error_handlers
from agentic.web.schemas import (
    DatabaseHealth,
    GenerateCompleted,
    GenerateRequest,
    Health,
    InngestHealth,
    JobList,
    JobView,
    ProviderHealth,
    QueuedJobAnswer,
    QueueHealth,
)
from agentic.web.sse import StreamPosition, StreamSettings, StreamsFull, job_events
from agentic.web.state import STATE_KEY, ApiState, api_state

log = logging.getLogger(__name__)

JSON_MIME = "application/json"
DEFAULT_PAGE_SIZE = 20
_INTEGER = re.compile(r"-?[0-9]+")
#: A stream refused at the process-wide cap: seconds the client should wait before trying again.
STREAMS_RETRY_AFTER_SECONDS = 5

api = Blueprint("api", __name__, url_prefix="/api")

#: Endpoints that answer without an API key (metrics has its own token).
PUBLIC_ENDPOINTS = frozenset({"api.health", "api.openapi", "api.metrics"})
#: The only endpoints a job token opens (read-only, one job), and the only ones with CORS.
TOKEN_ENDPOINTS = frozenset({"api.get_job", "api.job_stream"})


def _container() -> Container:
    return api_state().container


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(by_alias=True), status=status, mimetype=JSON_MIME, headers=headers)


def _issue_token(job: Job) -> str | None:
    tokens = api_state().tokens
    return tokens.issue(job.id, job.user_id) if tokens is not None else None


def _queued(queued: QueuedJob) -> Response:
    answer = QueuedJobAnswer.of(queued.job, token=_issue_token(queued.job))
    headers = {"Location": answer.links.self_}
    if not queued.created:
        headers["Idempotent-Replayed"] = "true"
    return _json(answer, 202, headers)


def kind_answer(outcome: BaseModel | QueuedJob) -> Response:
    """What a job kind's route answers for ``service.submit``: 202 and the job to follow, or 200 and the result."""
    return _queued(outcome) if isinstance(outcome, QueuedJob) else _json(outcome)


@api.before_request
def _authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
        return
    if request.endpoint in TOKEN_ENDPOINTS:
        credential = job_token_credential()
        if credential is not None:
            job_id = str((request.view_args or {}).get("job_id", ""))
            authenticate_job_token(api_state().tokens, credential, job_id=job_id)
            return
    authenticate(_container().keys)


@api.before_request
def _job_id_form() -> None:
    """A job id that is not of the form the store issues names no job: 404 without a query."""
    job_id = (request.view_args or {}).get("job_id")
    if job_id is not None and not params.is_job_id(job_id):
        raise JobNotFound(job_id)


@api.after_request
def _cors(response: Response) -> Response:
    if request.endpoint in TOKEN_ENDPOINTS:
        apply_cors(response, _container().settings.cors_allowed_origins)
    return response


# ---- generation -----------------------------------------------------------------------------------------


@api.post("/llm/generate")
def generate() -> Response:
    """Quick models answer 200 at once; slow ones become a job (202). Idempotency-Key applies to jobs."""
    container = _container()
    key = idempotency_key()
    body = read_json(GenerateRequest, max_bytes=container.settings.max_request_bytes)
    outcome = container.service.generate(body.llm_request(), user_id=current_key().user_id,
                                         context=body.context or (), idempotency_key=key)
    if isinstance(outcome, QueuedJob):
        return _queued(outcome)
    return _json(GenerateCompleted(response=outcome))


@api.post("/previews")
def preview() -> Response:
    container = _container()
    key = idempotency_key()
    body = read_json(PreviewRequest, max_bytes=container.settings.max_request_bytes)
    return kind_answer(container.service.preview(body, user_id=current_key().user_id, idempotency_key=key))


# ---- jobs -----------------------------------------------------------------------------------------------


@api.get("/jobs")
def list_jobs() -> Response:
    status = _status_param(request.args.get("status"))
    limit = _limit_param(request.args.get("limit"))
    try:
        page = _container().reads.page(current_key().user_id, status=status, limit=limit,
                                       cursor=request.args.get("cursor"))
    except InvalidCursor as exc:
        raise parameter_problem("cursor", str(exc)) from None
    reads = _container().reads
    return _json(JobList(items=[JobView.of(job, live_text=reads.live_text(job)) for job in page.items],
                         next_cursor=page.next_cursor))


def _status_param(value: str | None) -> JobStatus | None:
    if value is None:  # absent: every status; present, even empty (`?status=`), it must name one
        return None
    try:
        return JobStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in JobStatus)
        raise parameter_problem("status", f"must be one of {allowed}") from None


def _limit_param(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not _INTEGER.fullmatch(value):  # int() would also take " 5", "5_0" and non-ASCII digits
        raise parameter_problem("limit", "must be an integer")
    limit = int(value)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise parameter_problem("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
    return limit


@api.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """One indexed read (primary key, owner checked in the same query). The owner's view carries a fresh job
    token; a token's holder gets none (a token must not renew itself)."""
    reads = _container().reads
    token = current_job_token()
    if token is not None:
        job = reads.owned(job_id, user_id=token.user_id)
        return _json(JobView.of(job, live_text=reads.live_text(job)))
    job = reads.owned(job_id, user_id=current_key().user_id)
    return _json(JobView.of(job, live_text=reads.live_text(job), token=_issue_token(job)))


@api.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    container = _container()
    job = container.service.cancel(job_id, user_id=current_key().user_id)
    return _json(JobView.of(job, live_text=container.reads.live_text(job)), 202)


@api.get("/jobs/<job_id>/events")
def job_stream(job_id: str) -> Response:
    """Server-Sent Events for one job; the event-id (resume) scheme is described in agentic.web.sse."""
    state = api_state()
    container = state.container
    user_id, stream_key, still_authorized = _stream_principal(state)
    job = container.reads.owned(job_id, user_id=user_id)
    resume = StreamPosition.parse(request.headers.get("Last-Event-ID") or request.args.get("last_event_id"))
    if resume is not None and resume.finished and job.is_terminal:
        return Response(status=204)  # the client saw `done`: 204 stops EventSource from reconnecting
    try:
        slot = state.limiter.acquire(stream_key)
    except StreamsFull as full:
        # Every stream holds a server thread: past the cap, a stream would take the threads the API and
        # Inngest's step calls need. The client retries (EventSource reconnects by itself).
        raise ApiProblem(503, "server_busy", f"the server already holds {full.total} open event streams; "
                         "retry shortly", headers={"Retry-After": str(STREAMS_RETRY_AFTER_SECONDS)},
                         extra={"limit": full.total}) from None
    if slot is None:
        limit = container.settings.sse_max_streams_per_key
        raise ApiProblem(429, "too_many_streams",
                         f"this API key already has {limit} open event streams; close one first",
                         headers={"Retry-After": "1"}, extra={"limit": limit})
    settings = container.settings
    events = job_events(
        job,
        load=lambda: container.reads.find(job_id, user_id=user_id),
        watcher=state.watcher,
        resume=resume,
        settings=StreamSettings(max_seconds=settings.sse_max_seconds,
                                heartbeat_seconds=settings.sse_heartbeat_seconds),
        on_close=slot.release,
        still_authorized=still_authorized,
        live_text=container.reads.live_text(job),
    )
    response = Response(stream_with_context(events), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(slot.release)  # also when the generator never started
    return response


def _stream_principal(state: ApiState) -> tuple[str, str, Callable[[], bool]]:
    """Whose job, which stream budget, and what keeps the stream authorised: the API key staying active,
    or the job token staying unexpired (its streams count against a budget of their own per user)."""
    token = current_job_token()
    tokens = state.tokens
    if token is not None and tokens is not None:
        return token.user_id, f"job-token:{token.user_id}", lambda: tokens.still_valid(token)
    key = current_key()
    keys = state.container.keys
    return key.user_id, key.id, lambda: keys.is_active(key.id)


# ---- operations -----------------------------------------------------------------------------------------


@api.get("/health")
def health() -> Response:
    """No auth and no secrets: whether each part is usable, never what its keys are."""
    container = _container()
    settings = container.settings
    try:
        container.jobs.ping()
        database_ok = True
    except Exception as exc:
        log.warning("health: database unreachable (%s)", type(exc).__name__)
        database_ok = False
    configured, missing = _provider_configured(container)
    body = Health(
        status="ok" if database_ok and configured else "degraded",
        database=DatabaseHealth(ok=database_ok),
        provider=ProviderHealth(name=settings.llm_provider, configured=configured, missing=missing),
        queue=QueueHealth(enabled=settings.use_queue, step_time_budget_seconds=settings.step_time_budget_seconds,
                          max_continuations=settings.max_continuations),
        inngest=InngestHealth(mode="dev" if settings.inngest_is_dev else "cloud",
                              event_key_set=settings.inngest_event_key is not None,
                              signing_key_set=settings.inngest_signing_key is not None),
        version=agentic.__version__,
    )
    return _json(body, 200 if database_ok else 503, {"Cache-Control": "no-store"})


def _provider_configured(container: Container) -> tuple[bool, str | None]:
    try:
        from agentic.providers.factory import provider_configured
    except ImportError:  # pragma: no cover - the factory is part of the same release
        return True, None
    return provider_configured(container.settings)


@api.get("/metrics")
def metrics() -> Response:
    container = _container()
    check_metrics_token(container.settings.metrics_token)
    from prometheus_client import CONTENT_TYPE_LATEST  # the scrape needs it; start-up does not

    return Response(container.metrics.render(), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


@api.get("/openapi.json")
def openapi() -> Response:
    """Public on purpose: it describes the API, holds no data, and says which routes need a key."""
    import json

    return Response(json.dumps(api_state().openapi()), mimetype=JSON_MIME)


# ---- wiring ---------------------------------------------------------------------------------------------


def _register_domain_handlers(app: Flask) -> None:
    @app.errorhandler(JobNotFound)
    def _not_found(exc: JobNotFound) -> Response:
        return ApiProblem(404, "job_not_found", "no such job").response()

    @app.errorhandler(JobAlreadyFinished)
    def _finished(exc: JobAlreadyFinished) -> Response:
        job = exc.job
        return ApiProblem(409, "job_finished", f"the job is already {job.status.value}",
                          extra={"job_id": job.id, "job_status": job.status.value}).response()

    @app.errorhandler(IdempotencyConflict)
    def _conflict(exc: IdempotencyConflict) -> Response:
        return ApiProblem(409, "idempotency_conflict", str(exc), field=IDEMPOTENCY_HEADER,
                          extra={"job_id": exc.job.id}).response()

    @app.errorhandler(QueueUnavailable)
    def _queue_down(exc: QueueUnavailable) -> Response:
        log.warning("could not queue job %s: %s", exc.job.id, exc.reason)
        detail = ("the job queue is unreachable; the job was marked failed, retry later"
                  if exc.job.status is JobStatus.FAILED else
                  "the job queue is unreachable; the job stays queued, retry later to see it")
        return ApiProblem(503, "queue_unavailable", detail,
                          headers={"Retry-After": "5"},
                          extra={"job_id": exc.job.id, "job_status": exc.job.status.value}).response()

    @app.errorhandler(LLMError)
    def _provider(exc: LLMError) -> Response:
        _, missing = _provider_configured(api_state().container)
        if exc.code.value != "not_configured":
            log.warning("provider %s failed: %s (status %s)", exc.provider, exc.code.value, exc.status)
        return llm_problem(exc, missing_variable=missing).response()


def register_api(app: Flask, container: Container) -> None:
    app.extensions[STATE_KEY] = ApiState(container)
    register_error_handlers(app)
    _register_domain_handlers(app)
    app.register_blueprint(api)


__all__ = ["PUBLIC_ENDPOINTS", "api", "kind_answer", "register_api"]
