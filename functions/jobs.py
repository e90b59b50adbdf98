"""One Inngest function per job kind, derived from its spec (agentic.service.kinds): the kind's provider step (the
first one starts the job, the one that ends the answer completes it), notify-client, and a failure handler.
An answer that fits in one step is done in the run's first executor request; only the webhook follows.

Only step outputs are memoised; everything outside ``ctx.step.run`` runs again on every request of a run,
so the code here reads the event and the memoised outputs and nothing else (no clock, no database).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NotRequired, TypedDict

import inngest

from agentic.config import Settings
from agentic.domain.errors import LLMError
from agentic.domain.llm import LLMRequest
from agentic.inngest.events import EVENT_CANCEL
from agentic.providers.offload import current_app_origin, offload_call
from agentic.runner import Called, Failed, JobRunner, SoFar, Stored
from agentic.service.kinds import AnySpec

log = logging.getLogger("agentic.functions")


class RunResult(TypedDict):
    """What a job function's run returns (shown in Inngest's UI)."""

    job_id: str
    status: str | None
    skipped: NotRequired[str | None]


class FailureResult(TypedDict):
    job_id: NotRequired[str]
    failed: bool
    status: NotRequired[str | None]
    reason: NotRequired[str]

STORE_RESULT = "store-result"
NOTIFY_CLIENT = "notify-client"
MARK_FAILED = "mark-failed"


def job_id_of(event: inngest.Event, expected: str) -> str:
    """The job the event is about. An event of another name is refused: the signature covers the body, not
    the function id in the URL, so a signed call for one function can be replayed to another."""
    if event.name != expected:
        raise inngest.NonRetriableError(f"this function runs on {expected} events, not {event.name}")
    job_id = event.data.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise inngest.NonRetriableError("event.data.job_id is missing")
    return job_id


def run_job(ctx: inngest.ContextSync, runner: JobRunner, spec: AnySpec, settings: Settings) -> RunResult:
    job_id = job_id_of(ctx.event, spec.event)
    # ctx.attempt is the attempt of the step this request executes, so each step gets its own.
    # The first provider step starts the job: no step of its own, so the call starts in the first request.
    first: Called = ctx.step.run(spec.call_step, provider_call, runner, spec, job_id, ctx.attempt, None)
    if first["outcome"] == "not-started":
        return {"job_id": job_id, "status": first.get("status"), "skipped": first.get("reason")}

    offload = first.get("offload")
    status = run_segments(ctx, runner, spec, job_id, first) if offload is None else \
        run_offloaded(ctx, runner, spec, job_id, LLMRequest.model_validate(offload), settings=settings)
    notify(ctx, runner, job_id)
    return {"job_id": job_id, "status": status}


def run_segments(ctx: inngest.ContextSync, runner: JobRunner, spec: AnySpec, job_id: str, result: Called
                 ) -> str | None:
    """The provider step again for each further segment of a long answer (``call-llm:1``, ``call-llm:2``,
    …: the SDK numbers a repeated step id), each continuing the text the one before committed; the segment
    that ends the answer completes the job."""
    while result["outcome"] == "paused":  # bounded: past MAX_CONTINUATIONS the step fails the job
        result = ctx.step.run(spec.call_step, provider_call, runner, spec, job_id, ctx.attempt,
                              result.get("so_far"))
    return result.get("status") or result["outcome"]


def run_offloaded(ctx: inngest.ContextSync, runner: JobRunner, spec: AnySpec, job_id: str, request: LLMRequest, *,
                  settings: Settings) -> str | None:
    """The Inngest server makes the provider call (``step.ai.infer``) while this function is not running;
    store-result parses and stores its answer. A failure, once the server's attempts ran out, fails the
    job with the provider's classified error."""
    try:
        # Outside a step, so built again on every request of the run: from the memoised request and the
        # settings only (the key goes to the Inngest server inside the op, never into a memo).
        call = offload_call(request, settings, app_origin=current_app_origin())
    except LLMError as exc:  # not configured (a missing key): retrying cannot help
        failed: Failed = ctx.step.run(MARK_FAILED, runner.fail_offloaded, job_id, exc)
        return failed["status"]
    try:
        data = ctx.step.ai.infer(spec.call_step, adapter=call.adapter, body=call.body)
    except inngest.StepError as error:
        failed = ctx.step.run(MARK_FAILED, runner.fail_offloaded, job_id, call.error(error))
        return failed["status"]
    stored: Stored = ctx.step.run(STORE_RESULT, runner.store_offloaded, spec, job_id, data, call.format,
                                  call.provider)
    return stored["status"]


def notify(ctx: inngest.ContextSync, runner: JobRunner, job_id: str) -> None:
    """POST the job's summary to WEBHOOK_URL, retried as a step; giving up never changes the job."""
    if runner.notifier is None:  # configuration, the same on every replay
        return
    try:
        ctx.step.run(NOTIFY_CLIENT, runner.notify, job_id)
    except inngest.StepError as exc:
        # Delivery retried as a step and gave up: the job's outcome stands.
        log.warning("webhook for %s not delivered: %s", job_id, exc.message)


def provider_call(runner: JobRunner, spec: AnySpec, job_id: str, attempt: int, so_far: SoFar | None = None
                  ) -> Called:
    """Run the provider call, turning the error taxonomy into Inngest's retry decisions.

    - non-retriable (bad request, authentication, ...): the job fails now and the run ends without
      retries (``NonRetriableError``: 500 with ``x-inngest-no-retry``);
    - retriable with the provider's own delay (``Retry-After``): ``RetryAfterError`` with that delay;
    - other retriable errors propagate: the step is retried with Inngest's backoff.

    The error is also noted on the row, so the failure handler fails the job with it once retries run out.
    """
    try:
        return runner.advance(spec, job_id, attempt, so_far)
    except LLMError as exc:
        log.warning("provider call for %s failed (attempt %d): %r", job_id, attempt, exc)
        if not exc.retriable:
            runner.fail(job_id, exc.code, exc.message)
            raise inngest.NonRetriableError(f"{exc.code.value}: {exc.message}") from None
        if exc.retry_after:
            raise inngest.RetryAfterError(f"{exc.code.value}: {exc.message}",
                                          timedelta(seconds=max(1, round(exc.retry_after)))) from None
        raise


def make_job_function(client: inngest.Inngest, runner: JobRunner, spec: AnySpec, settings: Settings
                      ) -> inngest.Function[Any]:
    """The kind's function: per-user throttle, retries, cancel on llm/generate.cancel for the same job,
    idempotent per job id, and a failure handler that fails the job once retries are exhausted."""
    throttle = spec.throttle(settings)
    concurrency = spec.concurrency(settings)

    @client.create_function(
        fn_id=spec.function_id,
        name=spec.function_name,
        trigger=inngest.TriggerEvent(event=spec.event),
        retries=spec.retries,
        throttle=inngest.Throttle(limit=throttle.limit, period=timedelta(seconds=throttle.period_seconds),
                                  key="event.data.user_id"),
        # Throttle limits how many runs start per period; this caps how many run at once (long reasoning
        # calls from one user would otherwise pile up against the provider's quota).
        concurrency=[inngest.Concurrency(limit=concurrency, key="event.data.user_id")] if concurrency else None,
        cancel=[inngest.Cancel(event=EVENT_CANCEL, if_exp="async.data.job_id == event.data.job_id")],
        idempotency="event.data.job_id",
        on_failure=on_failure(runner, spec.event),
    )
    def run(ctx: inngest.ContextSync) -> RunResult:
        return run_job(ctx, runner, spec, settings)

    return run


#: What Inngest sends a failure handler once a run failed for good.
FUNCTION_FAILED = "inngest/function.failed"


def on_failure(runner: JobRunner, event: str) -> Callable[[inngest.ContextSync], FailureResult]:
    """Once retries are exhausted: fail the job with its last error. No job stays processing.

    Only a ``function.failed`` event about a run of ``event`` is acted on: a signed body of another kind,
    replayed to the handler, must not fail a job."""

    def handler(ctx: inngest.ContextSync) -> FailureResult:
        original = ctx.event.data.get("event")
        failed_name = original.get("name") if isinstance(original, dict) else None
        if ctx.event.name != FUNCTION_FAILED or failed_name != event:
            raise inngest.NonRetriableError(
                f"this handler runs on {FUNCTION_FAILED} events for {event} runs, not {ctx.event.name}")
        data = original.get("data") if isinstance(original, dict) else None
        job_id = data.get("job_id") if isinstance(data, dict) else None
        if not isinstance(job_id, str) or not job_id:
            return {"failed": False, "reason": "no job_id in the failed event"}
        error = ctx.event.data.get("error")
        message = str(error.get("message") or "") if isinstance(error, dict) else ""
        result: Failed = ctx.step.run(MARK_FAILED, runner.fail_exhausted, job_id, message)
        if result["status"] == "failed":
            notify(ctx, runner, job_id)
        return {"job_id": job_id, "failed": result["failed"], "status": result["status"]}

    return handler
