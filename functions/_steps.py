"""The step sequence generate and preview share: mark-processing, the provider call, store, notify.

Only step outputs are memoised; everything outside ``ctx.step.run`` runs again on every request of a run,
so the code here reads the event and the memoised outputs and nothing else (no clock, no database).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import inngest

from agentic.domain.errors import LLMError
from agentic.queue import EVENT_CANCEL
from agentic.runner import JobRunner

log = logging.getLogger("agentic.functions")

Summary = dict[str, Any]
#: A provider call of the runner: (job id, the step's attempt) -> a small JSON summary.
ProviderCall = Callable[[str, int], Summary]

MARK_PROCESSING = "mark-processing"
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


def run_job(ctx: inngest.ContextSync, runner: JobRunner, call_step: str, call: ProviderCall, *,
            event_name: str) -> Summary:
    job_id = job_id_of(ctx.event, event_name)
    # ctx.attempt is the attempt of the step this request executes, so each step gets its own.
    began: Summary = ctx.step.run(MARK_PROCESSING, runner.begin, job_id, ctx.attempt)
    if not began["started"]:
        return {"job_id": job_id, "status": began["status"], "skipped": began.get("reason")}

    result: Summary = ctx.step.run(call_step, provider_call, runner, call, job_id, ctx.attempt)
    if result["outcome"] == "generated":
        stored: Summary = ctx.step.run(STORE_RESULT, runner.finish, job_id)
        status = stored["status"]
    else:
        status = result.get("status") or result["outcome"]

    notify(ctx, runner, job_id)
    return {"job_id": job_id, "status": status}


def notify(ctx: inngest.ContextSync, runner: JobRunner, job_id: str) -> None:
    """POST the job's summary to WEBHOOK_URL, retried as a step; giving up never changes the job."""
    if runner.notifier is None:  # configuration, the same on every replay
        return
    try:
        ctx.step.run(NOTIFY_CLIENT, runner.notify, job_id)
    except inngest.StepError as exc:
        # Delivery retried as a step and gave up: the job's outcome stands.
        log.warning("webhook for %s not delivered: %s", job_id, exc.message)


def provider_call(runner: JobRunner, call: ProviderCall, job_id: str, attempt: int) -> Summary:
    """Run the provider call, turning the error taxonomy into Inngest's retry decisions.

    - non-retriable (bad request, authentication, ...): the job fails now and the run ends without
      retries (``NonRetriableError``: 500 with ``x-inngest-no-retry``);
    - retriable with the provider's own delay (``Retry-After``): ``RetryAfterError`` with that delay;
    - other retriable errors propagate: the step is retried with Inngest's backoff.

    The error is also noted on the row, so the failure handler fails the job with it once retries run out.
    """
    try:
        return call(job_id, attempt)
    except LLMError as exc:
        log.warning("provider call for %s failed (attempt %d): %r", job_id, attempt, exc)
        if not exc.retriable:
            runner.fail(job_id, exc.code.value, exc.message)
            raise inngest.NonRetriableError(f"{exc.code.value}: {exc.message}") from None
        if exc.retry_after:
            raise inngest.RetryAfterError(f"{exc.code.value}: {exc.message}",
                                          timedelta(seconds=max(1, round(exc.retry_after)))) from None
        raise


def make_job_function(
    client: inngest.Inngest,
    runner: JobRunner,
    *,
    fn_id: str,
    name: str,
    event: str,
    retries: int,
    throttle_limit: int,
    throttle_period_seconds: int,
    concurrency_per_user: int | None,
    call_step: str,
    call: Callable[[str, int], Summary],
) -> inngest.Function[Any]:
    """A job-running function: per-user throttle, retries, cancel on llm/generate.cancel for the same job,
    idempotent per job id, and a failure handler that fails the job once retries are exhausted."""

    @client.create_function(
        fn_id=fn_id,
        name=name,
        trigger=inngest.TriggerEvent(event=event),
        retries=retries,
        throttle=inngest.Throttle(limit=throttle_limit, period=timedelta(seconds=throttle_period_seconds),
                                  key="event.data.user_id"),
        # Throttle limits how many runs start per period; this caps how many run at once (long reasoning
        # calls from one user would otherwise pile up against the provider's quota).
        concurrency=[inngest.Concurrency(limit=concurrency_per_user, key="event.data.user_id")]
        if concurrency_per_user else None,
        cancel=[inngest.Cancel(event=EVENT_CANCEL, if_exp="async.data.job_id == event.data.job_id")],
        idempotency="event.data.job_id",
        on_failure=on_failure(runner, event),
    )
    def run(ctx: inngest.ContextSync) -> Summary:
        return run_job(ctx, runner, call_step, call, event_name=event)

    return run


#: What Inngest sends a failure handler once a run failed for good.
FUNCTION_FAILED = "inngest/function.failed"


def on_failure(runner: JobRunner, event: str) -> Callable[[inngest.ContextSync], Summary]:
    """Once retries are exhausted: fail the job with its last error. No job stays processing.

    Only a ``function.failed`` event about a run of ``event`` is acted on: a signed body of another kind,
    replayed to the handler, must not fail a job."""

    def handler(ctx: inngest.ContextSync) -> Summary:
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
        result: Summary = ctx.step.run(MARK_FAILED, runner.fail_exhausted, job_id, message)
        if result.get("status") == "failed":
            notify(ctx, runner, job_id)
        return {"job_id": job_id, **result}

    return handler
