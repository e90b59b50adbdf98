"""What each step of a job does: the use cases the Inngest functions call, one per step, for every kind.

Every method is safe to run again (an Inngest step may be retried after a crash): transitions are
compare-and-set, progress is reset before a new attempt streams, and outputs go to the row, with only
small typed summaries (JSON objects in Inngest's memo) returned to the step. Transitions return the row
they wrote, so nothing is read back after a write.
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
from agentic.domain.llm import LLMResponse
from agentic.generation import Ready, RequestT, ResultT
from agentic.kinds import JobKindSpec
from agentic.metrics import Metrics
from agentic.providers.base import LLMProvider
from agentic.store.jobs import JobStore
from agentic.store.tables import utcnow
from agentic.webhooks import WebhookNotifier

log = logging.getLogger(__name__)


# ---- what each step returns (memoised by Inngest as small JSON objects) ----------------------------------


class Began(TypedDict):
    """mark-processing: whether this run goes on to call the provider."""

    started: bool
    status: str | None
    reason: NotRequired[str]


class Called(TypedDict):
    """The provider step: generated (store-result comes next), cancelled, or skipped (nothing to do)."""

    outcome: Literal["generated", "cancelled", "skipped"]
    status: NotRequired[str | None]
    finish_reason: NotRequired[str]
    completion_tokens: NotRequired[int]


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

    # ---- mark-processing ------------------------------------------------------------------------

    def begin(self, job_id: str, attempt: int = 0) -> Began:
        """pending -> processing, counting the attempt. Ends the run (started=False) for a job that is
        finished, cancel-requested, or being processed by another run.

        ``attempt`` is the step's attempt (``ctx.attempt``). A job found ``processing`` on a retry
        (attempt > 0) is ours: the previous attempt committed and its reply was lost. Found on a first
        attempt, another run (a duplicate delivery of the event) started it, and this run must not call
        the provider a second time.
        """
        job = self.store.get(job_id)
        refusal = self._refusal(job_id, job)
        if refusal is not None:
            return refusal
        if job is not None and job.status is JobStatus.PENDING and self.store.start(job_id) is not None:
            return {"started": True, "status": JobStatus.PROCESSING.value}
        job = self.store.get(job_id)  # start() lost: the job changed under us
        refusal = self._refusal(job_id, job)
        if refusal is not None:
            return refusal
        if attempt > 0:  # processing since this step's earlier attempt
            return {"started": True, "status": JobStatus.PROCESSING.value}
        return {"started": False, "status": JobStatus.PROCESSING.value,
                "reason": "job is being processed by another run"}

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

    def call(self, spec: JobKindSpec[RequestT, ResultT], job_id: str, attempt: int = 0) -> Called:
        """Run the kind's model call, streaming into the row; the result is saved there, not returned."""
        job = self._prepare_attempt(job_id, attempt)
        if not isinstance(job, Job):
            return job
        request = _stored_request(spec, job)
        prompt = spec.handler.prompt(request, job.model or "")
        if isinstance(prompt, Ready):
            return self._save(spec, job, prompt.result, None)
        progress = ProgressWriter(self.store, job.id, self.progress_interval)
        watch = CancelWatch(self.store, job.id, self.progress_interval)
        try:
            answer = self.llm.generate(prompt, on_delta=progress.add, should_cancel=watch)
        except LLMError as exc:
            self.metrics.provider_error(exc.provider, exc.code.value)
            self.store.note_error(job.id, exc.code, exc.message)
            raise
        finally:
            progress.flush()
        return self._save(spec, job, spec.handler.result(request, answer), answer)

    # ---- store-result / notify-client / failure ---------------------------------------------------

    def finish(self, job_id: str) -> Stored:
        """processing -> completed. A job cancelled or failed meanwhile stays as it is."""
        completed = self.store.complete(job_id)
        if completed is None:
            return {"completed": False, "status": _status(self.store.get(job_id))}
        self._record_finished(completed)
        return {"completed": True, "status": completed.status.value}

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
            # The answer was saved; only a later step (store-result) gave up. Keep what was paid for.
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

    # ---- internals --------------------------------------------------------------------------------

    def _prepare_attempt(self, job_id: str, attempt: int) -> Job | Called:
        """The job, ready for a (new) attempt at the provider call; or the step's summary when there is
        nothing to call: the job is gone, no longer processing, or cancellation was requested."""
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
        if job.partial_output:
            self.store.reset_progress(job_id)
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
        if answer is not None:
            self.metrics.tokens_used(answer.model, answer.usage.prompt_tokens, answer.usage.completion_tokens)
        return {"outcome": "generated", "finish_reason": answer.finish_reason if answer else "stop",
                "completion_tokens": answer.usage.completion_tokens if answer else 0}

    def _record_finished(self, job: Job) -> None:
        seconds = (job.finished_at - job.started_at).total_seconds() \
            if job.finished_at and job.started_at else None
        self.metrics.job_finished(job.kind.value, job.status.value, seconds)


def _stored_request(spec: JobKindSpec[RequestT, ResultT], job: Job) -> RequestT:
    """The request stored on the row, validated. A row that no longer validates will not get better on a
    retry: it is a non-retriable error."""
    try:
        return spec.request_model.model_validate(job.request)
    except ValidationError as exc:
        raise LLMError(ErrorCode.BAD_REQUEST, f"the job's stored request is invalid ({exc.error_count()} "
                       "error(s))", provider=job.provider or "agentic", retriable=False) from None


def cleanup_cutoffs(retention_days: int, stuck_minutes: int) -> Cutoffs:
    now = utcnow()
    return {"delete_before": (now - timedelta(days=retention_days)).isoformat(),
            "stuck_before": (now - timedelta(minutes=stuck_minutes)).isoformat()}


__all__ = ["Began", "Called", "CancelWatch", "Cancelled", "Cutoffs", "Failed", "JobRunner", "Notified",
           "ProgressWriter", "Stored", "cleanup_cutoffs"]
