"""What each step of a job does: the use cases the Inngest functions call, one per step, for every kind.

Every method is safe to run again (an Inngest step may be retried after a crash): transitions are
compare-and-set, progress is reset before a new attempt streams, and outputs go to the row, with only
small typed summaries (JSON objects in Inngest's memo) returned to the step. Transitions return the row
they wrote, so nothing is read back after a write.

Long answers: a provider step streams for at most ``step_budget`` seconds. When the budget runs out the
text so far is committed to the row and the step answers ``paused`` with where the answer stands
(:class:`SoFar`); the function runs the step again, and the next segment continues the committed text by
assistant prefill (:mod:`agentic.providers.continuation`). A retried segment restarts from the committed
text, never from zero. Models that cannot continue a prefill are offloaded instead (``OFFLOAD_MODELS``):
the Inngest server makes the call (``step.ai.infer``) and :meth:`JobRunner.store_offloaded` stores it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NotRequired, TypedDict

from pydantic import ValidationError

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.jobs import Job, JobStatus
from agentic.domain.llm import LLMRequest, LLMResponse, Usage
from agentic.metrics import Metrics
from agentic.providers.base import LLMProvider
from agentic.providers.budget import PAUSED, deadline_in
from agentic.providers.continuation import Continuation, join_segments
from agentic.providers.longcalls import LongCallMode, long_call_mode
from agentic.providers.offload import GatewayFormat, parse_offloaded
from agentic.service.generation import Ready, RequestT, ResultT
from agentic.service.kinds import JobKindSpec
from agentic.store.jobs import JobStore
from agentic.store.tables import utcnow
from agentic.webhooks import WebhookNotifier

log = logging.getLogger(__name__)


# ---- what each step returns (memoised by Inngest as small JSON objects) ----------------------------------


class Began(TypedDict):
    """The start of the first provider step (``begin``): whether this run goes on to call the provider
    (and, for a model in OFFLOAD_MODELS, the model request to hand to the Inngest server)."""

    started: bool
    status: str | None
    reason: NotRequired[str]
    offload: NotRequired[dict[str, object]]


class SoFar(TypedDict):
    """A long answer's committed segments: their text is on the row (its first ``offset`` characters)."""

    offset: int
    segments: int
    response_id: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Called(TypedDict):
    """The provider step: generated (the answer is saved), completed (saved and the job completed, in the
    same step), paused (run it again: the answer goes on from ``so_far``), cancelled, failed (no more
    continuations), skipped (nothing to do), not-started (the run must end: see ``reason``), or offload
    (the Inngest server makes the call with the ``offload`` request)."""

    outcome: Literal["generated", "completed", "paused", "cancelled", "failed", "skipped", "not-started",
                     "offload"]
    status: NotRequired[str | None]
    reason: NotRequired[str]
    offload: NotRequired[dict[str, object]]
    finish_reason: NotRequired[str]
    completion_tokens: NotRequired[int]
    so_far: NotRequired[SoFar]


class Stored(TypedDict):
    completed: bool
    status: str | None


class Failed(TypedDict):
    failed: bool
    status: str | None


class Cancelled(TypedDict):
    cancelled: bool
    status: str | None


class Notified(TypedDict):
    delivered: bool
    reason: NotRequired[str]
    status_code: NotRequired[int]


class Cutoffs(TypedDict):
    delete_before: str
    stuck_before: str
    pending_before: str


_TERMINAL = frozenset(status.value for status in JobStatus if status.is_terminal)


def _status(job: Job | None) -> str | None:
    return job.status.value if job is not None else None


class ProgressWriter:
    """Buffers streamed text and appends it to the row at most every ``interval`` seconds."""

    def __init__(self, store: JobStore, job_id: str, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.job_id, self.interval, self.clock = store, job_id, interval, clock
        self._buffer: list[str] = []
        self._last = clock()

    def add(self, delta: str) -> None:
        self._buffer.append(delta)
        if self.clock() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.store.append_progress(self.job_id, "".join(self._buffer))
            self._buffer.clear()
        self._last = self.clock()


class CancelWatch:
    """The cancellation check handed to providers: reads the row at most every ``interval`` seconds."""

    def __init__(self, store: JobStore, job_id: str, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.job_id, self.interval, self.clock = store, job_id, interval, clock
        self._last = clock()
        self.cancelled = False

    def __call__(self) -> bool:
        if not self.cancelled and self.clock() - self._last >= self.interval:
            self._last = self.clock()
            self.cancelled = self.store.cancel_requested(self.job_id)
        return self.cancelled


@dataclass
class JobRunner:
    store: JobStore
    llm: LLMProvider
    metrics: Metrics
    progress_interval: float = 0.25
    notifier: WebhookNotifier | None = None
    #: STEP_TIME_BUDGET_SECONDS: the longest a provider step streams (None: no limit).
    step_budget: float | None = None
    #: MAX_CONTINUATIONS: segments after the first one answer may take.
    max_continuations: int = 40
    #: OFFLOAD_MODELS: models whose calls the Inngest server makes (kinds that allow it).
    offload_models: tuple[str, ...] = ()

    # ---- the start (the first provider step's first part) -------------------------------------------

    def begin(self, job_id: str, attempt: int = 0, spec: JobKindSpec[RequestT, ResultT] | None = None) -> Began:
        """pending -> processing, counting the attempt. Ends the run (started=False) for a job that is
        finished, cancel-requested, or being processed by another run.

        ``attempt`` is the step's attempt (``ctx.attempt``). A job found ``processing`` on a retry
        (attempt > 0) is ours: the previous attempt committed and its reply was lost. Found on a first
        attempt, another run (a duplicate delivery of the event) started it, and this run must not call
        the provider a second time.
        """
        return self._begin(job_id, attempt, spec)[0]

    def _begin(self, job_id: str, attempt: int, spec: JobKindSpec[RequestT, ResultT] | None
               ) -> tuple[Began, bool]:
        """``begin``, and whether this call is the one that moved the job from pending (its start counted
        the attempt already)."""
        job = self.store.get(job_id)
        refusal = self._refusal(job_id, job)
        if refusal is not None:
            return refusal, False
        started = self.store.start(job_id) if job is not None and job.status is JobStatus.PENDING else None
        if started is not None:
            return self._started(started, spec), True
        job = self.store.get(job_id)  # start() lost: the job changed under us
        refusal = self._refusal(job_id, job)
        if refusal is not None:
            return refusal, False
        if attempt > 0 and job is not None:  # processing since this step's earlier attempt
            return self._started(job, spec), False
        return {"started": False, "status": JobStatus.PROCESSING.value,
                "reason": "job is being processed by another run"}, False

    def _started(self, job: Job, spec: JobKindSpec[RequestT, ResultT] | None) -> Began:
        began: Began = {"started": True, "status": JobStatus.PROCESSING.value}
        if spec is None or not spec.offloadable or job.model is None:
            return began
        if long_call_mode(job.model, self.offload_models) is not LongCallMode.OFFLOAD:
            return began
        prompt = spec.handler.prompt(_stored_request(spec, job), job.model)
        if isinstance(prompt, LLMRequest):
            began["offload"] = prompt.model_dump(mode="json", exclude_none=True)
        return began

    def _refusal(self, job_id: str, job: Job | None) -> Began | None:
        """Why a run must not start this job, if it must not."""
        if job is None:
            return {"started": False, "status": None, "reason": "job not found"}
        if job.is_terminal:
            return {"started": False, "status": job.status.value,
                    "reason": f"job is already {job.status.value}"}
        if job.cancel_requested_at is not None:
            return {"started": False, "status": self._cancel_now(job_id), "reason": "cancel requested"}
        return None

    # ---- the provider step (call-llm, generate-preview, ...) --------------------------------------------

    def advance(self, spec: JobKindSpec[RequestT, ResultT], job_id: str, attempt: int = 0,
                so_far: SoFar | None = None) -> Called:
        """One provider step that also does what the steps around it used to: the first segment starts the
        job (``begin``), and a segment whose answer is whole completes it (``finish``). So a job whose answer
        fits in one step is done in one executor request; the client does not wait for another queue hop.

        The guards hold because each part is compare-and-set and checked in the row: a first attempt that
        finds the job processing (a duplicate delivery) ends the run without calling the provider; a retry
        that finds the answer saved completes the job without calling it; a retry that finds the job
        finished (its earlier attempt's reply was lost) reports that, and the run goes on to notify.
        """
        if so_far is None:
            began, fresh = self._begin(job_id, attempt, spec)
            if not began["started"]:
                if attempt > 0 and began["status"] in _TERMINAL:  # ours: finished, or cancelled, since
                    return {"outcome": "cancelled" if began["status"] == JobStatus.CANCELLED.value else "skipped",
                            "status": began["status"]}
                return {"outcome": "not-started", "status": began["status"], "reason": began.get("reason", "")}
            if "offload" in began:
                return {"outcome": "offload", "status": began["status"], "offload": began["offload"]}
            if fresh:  # started by this attempt (an earlier one failed before the start): counted once
                attempt = 0
        called = self.call(spec, job_id, attempt, so_far)
        if called["outcome"] != "generated":
            return called
        stored = self.finish(job_id)
        return {**called, "outcome": "completed" if stored["completed"] else "skipped", "status": stored["status"]}

    def call(self, spec: JobKindSpec[RequestT, ResultT], job_id: str, attempt: int = 0,
             so_far: SoFar | None = None) -> Called:
        """Run one segment of the kind's model call, streaming into the row; the result is saved there.

        ``so_far`` (from the previous segment's ``paused`` answer) says how much of the answer is committed;
        this segment continues it, and a retry of this segment restarts from it.
        """
        committed = so_far["offset"] if so_far else 0
        job = self._prepare_attempt(job_id, attempt, committed)
        if not isinstance(job, Job):
            return job
        request = _stored_request(spec, job)
        prompt = spec.handler.prompt(request, job.model or "")
        if isinstance(prompt, Ready):
            return self._save(spec, job, prompt.result, None)
        prefix = job.partial_output[:committed]
        progress = ProgressWriter(self.store, job.id, self.progress_interval)
        watch = CancelWatch(self.store, job.id, self.progress_interval)
        deadline = deadline_in(self.step_budget) if self.step_budget else None
        try:
            if so_far is not None and prefix:
                continuation = Continuation.of(prompt, prefix, completion_tokens=so_far["completion_tokens"])
                segment = continuation.generate(self.llm, on_delta=progress.add, should_cancel=watch,
                                                deadline=deadline)
            else:
                segment = self.llm.generate(prompt, on_delta=progress.add, should_cancel=watch, deadline=deadline)
        except LLMError as exc:
            self.metrics.provider_error(exc.provider, exc.code.value)
            self.store.note_error(job.id, exc.code, exc.message)
            raise
        finally:
            progress.flush()
        answer = join_segments([_committed(so_far, prefix, segment), segment]) if so_far else segment
        if segment.finish_reason == PAUSED:
            self._count_tokens(segment)
            return self._pause(job, so_far, committed + len(segment.content), answer)
        saved = self._save(spec, job, spec.handler.result(request, answer), answer)
        if saved["outcome"] == "generated":
            self._count_tokens(segment)
        return saved

    def _count_tokens(self, answer: LLMResponse) -> None:
        self.metrics.tokens_used(answer.model, answer.usage.prompt_tokens, answer.usage.completion_tokens)

    def _pause(self, job: Job, so_far: SoFar | None, offset: int, answer: LLMResponse) -> Called:
        """The step budget ran out mid-answer: the text is committed; continue, unless that was the last
        segment allowed (the job fails, keeping the text in partial_output)."""
        segments = (so_far["segments"] if so_far else 0) + 1
        if segments > self.max_continuations:
            failed = self.fail(job.id, ErrorCode.MAX_CONTINUATIONS,
                               f"the answer was not finished after {segments} segments (MAX_CONTINUATIONS="
                               f"{self.max_continuations}); the text so far is kept in partial_output")
            return {"outcome": "failed", "status": failed["status"]}
        usage = answer.usage
        return {"outcome": "paused", "so_far": {
            "offset": offset, "segments": segments, "response_id": answer.id, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "total_tokens": usage.total_tokens}}

    # ---- offloaded calls (step.ai.infer) ---------------------------------------------------------------

    def store_offloaded(self, spec: JobKindSpec[RequestT, ResultT], job_id: str, data: object,
                        format: GatewayFormat, provider: str) -> Stored:
        """Parse what the Inngest server got from the provider (the same parsing as a streamed answer), store
        the kind's result and complete the job. A job cancelled meanwhile stays cancelled."""
        job = self.store.get(job_id)
        if job is None or job.status is not JobStatus.PROCESSING:
            return {"completed": False, "status": _status(job)}
        if job.cancel_requested_at is not None:
            return {"completed": False, "status": self._cancel_now(job_id)}
        request = _stored_request(spec, job)
        prompt = spec.handler.prompt(request, job.model or "")
        if isinstance(prompt, Ready):  # nothing was asked of the model after all
            saved = self._save(spec, job, prompt.result, None)
        else:
            try:
                answer = parse_offloaded(data, prompt, format, provider=provider)
            except LLMError as exc:  # an error inside a 2xx answer: the call cannot be made again from here
                self.metrics.provider_error(exc.provider, exc.code.value)
                return {"completed": False, "status": self.fail(job_id, exc.code, exc.message)["status"]}
            saved = self._save(spec, job, spec.handler.result(request, answer), answer)
            if saved["outcome"] == "generated":
                self._count_tokens(answer)
        if saved["outcome"] != "generated":
            return {"completed": False, "status": saved.get("status")}
        return self.finish(job_id)

    def fail_offloaded(self, job_id: str, error: LLMError) -> Failed:
        """The offloaded call failed on every attempt: fail the job with the provider's classified error."""
        self.metrics.provider_error(error.provider, error.code.value)
        return self.fail(job_id, error.code, error.message)

    # ---- store-result / notify-client / failure ---------------------------------------------------

    def finish(self, job_id: str) -> Stored:
        """processing -> completed. A job cancelled or failed meanwhile stays as it is; one whose cancellation
        was requested (the store refuses to complete it) is cancelled, even if the cancel event was lost."""
        completed = self.store.complete(job_id)
        if completed is not None:
            self._record_finished(completed)
            return {"completed": True, "status": completed.status.value}
        job = self.store.get(job_id)
        if job is not None and not job.is_terminal and job.cancel_requested_at is not None:
            return {"completed": False, "status": self._cancel_now(job_id)}
        return {"completed": False, "status": _status(job)}

    def notify(self, job_id: str) -> Notified:
        if self.notifier is None:
            return {"delivered": False, "reason": "no WEBHOOK_URL"}
        job = self.store.get(job_id)
        if job is None or not job.is_terminal:
            return {"delivered": False, "reason": "job not finished"}
        try:
            status = self.notifier.deliver(job)
        except Exception:
            self.metrics.webhook_delivery("failed")
            raise
        self.metrics.webhook_delivery("delivered")
        return {"delivered": True, "status_code": status}

    def fail(self, job_id: str, code: ErrorCode, message: str) -> Failed:
        """pending | processing -> failed now (a non-retriable error: retrying cannot help)."""
        failed = self.store.fail(job_id, code, message)
        if failed is None:
            return {"failed": False, "status": _status(self.store.get(job_id))}
        self._record_finished(failed)
        return {"failed": True, "status": failed.status.value}

    def fail_exhausted(self, job_id: str, message: str) -> Failed:
        """The run failed for good: fail the job with the last error it noted (or the run's error).

        A job that is already finished (completed, cancelled, or failed by a non-retriable error) is left
        as it is.
        """
        job = self.store.get(job_id)
        if job is None:
            return {"failed": False, "status": None}
        if job.is_terminal:
            return {"failed": False, "status": job.status.value}
        if job.status is JobStatus.PROCESSING and job.response is not None:
            # The answer was saved; only completing the job (call-llm's last write, or store-result) gave
            # up. Keep what was paid for.
            return {"failed": False, "status": self.finish(job_id)["status"]}
        code = job.error_code or ErrorCode.FUNCTION_FAILED
        detail = job.error_message or message or "the job's run failed"
        return self.fail(job_id, code, detail)

    def cancel(self, job_id: str) -> Cancelled:
        """Record the cancellation request and cancel a pending or processing job (never a finished one)."""
        self.store.request_cancel(job_id)
        cancelled = self.store.cancel(job_id)
        if cancelled is None:
            return {"cancelled": False, "status": _status(self.store.get(job_id))}
        self._record_finished(cancelled)
        return {"cancelled": True, "status": cancelled.status.value}

    # ---- cleanup ----------------------------------------------------------------------------------

    def delete_finished_batch(self, cutoff_iso: str, batch_size: int) -> int:
        return self.store.delete_finished_batch(datetime.fromisoformat(cutoff_iso), batch_size)

    def fail_stuck(self, older_than_iso: str) -> int:
        failed = self.store.fail_stuck(datetime.fromisoformat(older_than_iso))
        for job in failed:
            self._record_finished(job)
        return len(failed)

    def fail_lost_pending(self, pending_before_iso: str) -> int:
        """Fail jobs pending since before the cutoff: no run will start them (queue_lost)."""
        failed = self.store.fail_lost_pending(datetime.fromisoformat(pending_before_iso))
        for job in failed:
            self._record_finished(job)
        return len(failed)

    # ---- internals --------------------------------------------------------------------------------

    def _prepare_attempt(self, job_id: str, attempt: int, committed: int = 0) -> Job | Called:
        """The job, ready for a (new) attempt at the provider call, its text cut back to the ``committed``
        characters of earlier segments; or the step's summary when there is nothing to call: the job is
        gone, no longer processing, or cancellation was requested."""
        job = self.store.get(job_id)
        if job is None:
            return {"outcome": "skipped", "status": None}
        if job.status is not JobStatus.PROCESSING:
            return {"outcome": "skipped", "status": job.status.value}
        if job.cancel_requested_at is not None:
            return {"outcome": "cancelled", "status": self._cancel_now(job_id)}
        if job.response is not None:  # an earlier attempt saved the answer and its reply was lost: done already
            return {"outcome": "generated", "finish_reason": str(job.response.get("finish_reason", "stop")),
                    "completion_tokens": job.completion_tokens or 0}
        if attempt > 0:
            self.store.record_attempt(job_id)
        if len(job.partial_output) > committed:
            if committed:
                self.store.truncate_progress(job_id, committed)
            else:
                self.store.reset_progress(job_id)
            job = job.model_copy(update={"partial_output": job.partial_output[:committed]})
        return job

    def _cancel_now(self, job_id: str) -> str | None:
        """Cancel a job whose cancellation was requested; returns its status afterwards."""
        cancelled = self.store.cancel(job_id)
        if cancelled is None:
            return _status(self.store.get(job_id))
        self._record_finished(cancelled)
        return cancelled.status.value

    def _save(self, spec: JobKindSpec[RequestT, ResultT], job: Job, result: ResultT, answer: LLMResponse | None
              ) -> Called:
        """Save the result on the row (``answer`` is the model's, None when no model was called); a stopped
        answer cancels the job, keeping what was streamed."""
        response = result.model_dump(mode="json")
        if answer is not None and answer.finish_reason == "cancelled":
            cancelled = self.store.cancel(job.id, response=response)
            if cancelled is None:
                # Cancelled meanwhile by llm-cancel: keep what this run streamed before stopping.
                self.store.finalize_cancelled(job.id, response, spec.text(result))
                return {"outcome": "cancelled", "status": _status(self.store.get(job.id))}
            self._record_finished(cancelled)
            return {"outcome": "cancelled", "status": cancelled.status.value}
        usage = answer.usage if answer is not None else None
        if not self.store.save_result(job.id, response, usage):
            return {"outcome": "skipped", "status": _status(self.store.get(job.id))}
        return {"outcome": "generated", "finish_reason": answer.finish_reason if answer else "stop",
                "completion_tokens": answer.usage.completion_tokens if answer else 0}

    def _record_finished(self, job: Job) -> None:
        seconds = (job.finished_at - job.started_at).total_seconds() \
            if job.finished_at and job.started_at else None
        self.metrics.job_finished(job.kind.value, job.status.value, seconds)


def _committed(so_far: SoFar, text: str, segment: LLMResponse) -> LLMResponse:
    """The committed segments as one response, to join with the segment that follows them."""
    usage = Usage(prompt_tokens=so_far["prompt_tokens"], completion_tokens=so_far["completion_tokens"],
                  total_tokens=so_far["total_tokens"])
    return LLMResponse(id=so_far["response_id"], model=segment.model, content=text, usage=usage,
                       finish_reason=PAUSED, provider=segment.provider)


def _stored_request(spec: JobKindSpec[RequestT, ResultT], job: Job) -> RequestT:
    """The request stored on the row, validated. A row that no longer validates will not get better on a
    retry: it is a non-retriable error."""
    try:
        return spec.request_model.model_validate(job.request)
    except ValidationError as exc:
        raise LLMError(ErrorCode.BAD_REQUEST, f"the job's stored request is invalid ({exc.error_count()} "
                       "error(s))", provider=job.provider or "agentic", retriable=False) from None


def cleanup_cutoffs(retention_days: int, stuck_minutes: int, pending_minutes: int = 1440) -> Cutoffs:
    now = utcnow()
    return {"delete_before": (now - timedelta(days=retention_days)).isoformat(),
            "stuck_before": (now - timedelta(minutes=stuck_minutes)).isoformat(),
            "pending_before": (now - timedelta(minutes=pending_minutes)).isoformat()}


__all__ = [
    "Began",
    "Called",
    "CancelWatch",
    "Cancelled",
    "Cutoffs",
    "Failed",
    "JobRunner",
    "Notified",
    "ProgressWriter",
    "SoFar",
    "Stored",
    "cleanup_cutoffs",
]
