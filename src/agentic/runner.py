"""What each step of a job does: the use cases the Inngest functions call, one per step.

Every method is safe to run again (an Inngest step may be retried after a crash): transitions are
compare-and-set, progress is reset before a new attempt streams, and outputs go to the row, with only
small JSON summaries returned to the step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.jobs import Job, JobStatus
from agentic.domain.llm import LLMRequest, LLMResponse, PreviewRequest
from agentic.metrics import Metrics
from agentic.preview import generate_preview
from agentic.providers.base import LLMRepository
from agentic.store.jobs import JobStore
from agentic.store.tables import utcnow
from agentic.webhooks import WebhookNotifier

log = logging.getLogger(__name__)

Summary = dict[str, Any]
_M = TypeVar("_M", bound=BaseModel)


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
    llm: LLMRepository
    metrics: Metrics
    preview_model: str
    progress_interval: float = 0.25
    notifier: WebhookNotifier | None = None

    # ---- mark-processing ------------------------------------------------------------------------

    def begin(self, job_id: str, attempt: int = 0) -> Summary:
        """pending -> processing, counting the attempt. Ends the run (started=False) for a job that is
        finished, cancel-requested, or being processed by another run.

        ``attempt`` is the step's attempt (``ctx.attempt``). A job found ``processing`` on a retry
        (attempt > 0) is ours: the previous attempt committed and its reply was lost. Found on a first
        attempt, another run (a duplicate delivery of the event) started it, and this run must not call
        the provider a second time.
        """
        job = self._load(job_id)
        refusal = self._refusal(job_id, job)
        if refusal is not None:
            return refusal
        if job is not None and job.status is JobStatus.PENDING and self.store.start(job_id):
            return {"started": True, "status": JobStatus.PROCESSING.value}
        job = self._load(job_id)  # start() lost: the job changed under us
        refusal = self._refusal(job_id, job)
        if refusal is not None:
            return refusal
        if attempt > 0:  # processing since this step's earlier attempt
            return {"started": True, "status": JobStatus.PROCESSING.value}
        return {"started": False, "status": JobStatus.PROCESSING.value,
                "reason": "job is being processed by another run"}

    def _refusal(self, job_id: str, job: Job | None) -> Summary | None:
        """Why a run must not start this job, if it must not."""
        if job is None:
            return {"started": False, "status": None, "reason": "job not found"}
        if job.is_terminal:
            return {"started": False, "status": job.status.value,
                    "reason": f"job is already {job.status.value}"}
        if job.cancel_requested_at is not None:
            return {"started": False, "status": self._cancel_now(job_id), "reason": "cancel requested"}
        return None

    # ---- call-llm / generate-preview --------------------------------------------------------------

    def call_llm(self, job_id: str, attempt: int = 0) -> Summary:
        """Stream the provider's answer into the row; the response is saved there, not returned."""
        job = self._prepare_attempt(job_id, attempt)
        if not isinstance(job, Job):
            return job
        request = _stored(LLMRequest, job)
        response = self._stream(job, lambda on_delta, cancel: self.llm.generate(
            request, on_delta=on_delta, should_cancel=cancel))
        return self._save(job, response.model_dump(mode="json"), response)

    def call_preview(self, job_id: str, attempt: int = 0) -> Summary:
        job = self._prepare_attempt(job_id, attempt)
        if not isinstance(job, Job):
            return job
        preview_request = _stored(PreviewRequest, job)
        if not preview_request.needs_ai:
            result = generate_preview(self.llm, self.preview_model, preview_request)
            return self._save(job, result.model_dump(mode="json"), None)
        holder: dict[str, LLMResponse] = {}

        def run(on_delta: Callable[[str], None], cancel: Callable[[], bool]) -> LLMResponse:
            result = generate_preview(self.llm, self.preview_model, preview_request,
                                      on_delta=on_delta, should_cancel=cancel, raw=holder)
            return holder["response"].model_copy(update={"content": result.preview})

        response = self._stream(job, run)
        return self._save(job, {"preview": response.content, "used_ai": True}, response)

    # ---- store-result / notify-client / failure ---------------------------------------------------

    def finish(self, job_id: str) -> Summary:
        """processing -> completed. A job cancelled or failed meanwhile stays as it is; one whose cancellation
        was requested (the store refuses to complete it) is cancelled, even if the cancel event was lost."""
        applied = self.store.complete(job_id)
        job = self._load(job_id)
        if not applied and job is not None and not job.is_terminal and job.cancel_requested_at is not None:
            return {"completed": False, "status": self._cancel_now(job_id)}
        status = job.status.value if job else None
        if applied and job is not None:
            self._record_finished(job)
        return {"completed": applied, "status": status}

    def notify(self, job_id: str) -> Summary:
        if self.notifier is None:
            return {"delivered": False, "reason": "no WEBHOOK_URL"}
        job = self._load(job_id)
        if job is None or not job.is_terminal:
            return {"delivered": False, "reason": "job not finished"}
        try:
            status = self.notifier.deliver(job)
        except Exception:
            self.metrics.webhook_delivery("failed")
            raise
        self.metrics.webhook_delivery("delivered")
        return {"delivered": True, "status_code": status}

    def fail(self, job_id: str, code: str, message: str) -> Summary:
        """pending | processing -> failed now (a non-retriable error: retrying cannot help)."""
        applied = self.store.fail(job_id, code, message)
        job = self._load(job_id)
        if applied and job is not None:
            self._record_finished(job)
        return {"failed": applied, "status": job.status.value if job else None}

    def fail_exhausted(self, job_id: str, message: str) -> Summary:
        """The run failed for good: fail the job with the last error it noted (or the run's error).

        A job that is already finished (completed, cancelled, or failed by a non-retriable error) is left
        as it is.
        """
        job = self._load(job_id)
        if job is None:
            return {"failed": False, "status": None}
        if job.is_terminal:
            return {"failed": False, "status": job.status.value}
        if job.status is JobStatus.PROCESSING and job.response is not None:
            # The answer was saved; only a later step (store-result) gave up. Keep what was paid for.
            completed = self.finish(job_id)
            return {"failed": False, "status": completed["status"]}
        code = job.error_code or "function_failed"
        detail = job.error_message or message or "the job's run failed"
        return self.fail(job_id, code, detail)

    def cancel(self, job_id: str) -> Summary:
        """Record the cancellation request and cancel a pending or processing job (never a finished one)."""
        self.store.request_cancel(job_id)
        applied = self.store.cancel(job_id)
        job = self._load(job_id)
        if applied and job is not None:
            self._record_finished(job)
        return {"cancelled": applied, "status": job.status.value if job else None}

    # ---- cleanup ----------------------------------------------------------------------------------

    def delete_finished_batch(self, cutoff_iso: str, batch_size: int) -> int:
        return self.store.delete_finished_batch(datetime.fromisoformat(cutoff_iso), batch_size)

    def fail_stuck(self, older_than_iso: str) -> int:
        return len(self.store.fail_stuck(datetime.fromisoformat(older_than_iso)))

    def fail_lost_pending(self, pending_before_iso: str) -> int:
        """Fail jobs pending since before the cutoff: no run will start them (queue_lost)."""
        return len(self.store.fail_lost_pending(datetime.fromisoformat(pending_before_iso)))

    # ---- internals --------------------------------------------------------------------------------

    def _load(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def _prepare_attempt(self, job_id: str, attempt: int) -> Job | Summary:
        """The job, ready for a (new) attempt at the provider call; or the step's summary when there is
        nothing to call: the job is gone, no longer processing, or cancellation was requested."""
        job = self._load(job_id)
        if job is None:
            return {"outcome": "skipped", "status": None}
        if job.status is not JobStatus.PROCESSING:
            return {"outcome": "skipped", "status": job.status.value}
        if job.cancel_requested_at is not None:
            return {"outcome": "cancelled", "status": self._cancel_now(job_id)}
        if job.response is not None:  # an earlier attempt saved the answer and its reply was lost: done already
            return {"outcome": "generated", "finish_reason": job.response.get("finish_reason", "stop"),
                    "completion_tokens": job.completion_tokens or 0}
        if attempt > 0:
            self.store.record_attempt(job_id)
        if job.partial_output:
            self.store.reset_progress(job_id)
        return job

    def _cancel_now(self, job_id: str) -> str | None:
        """Cancel a job whose cancellation was requested; returns its status afterwards."""
        applied = self.store.cancel(job_id)
        job = self._load(job_id)
        if applied and job is not None:
            self._record_finished(job)
        return job.status.value if job else None

    def _stream(self, job: Job, call: Callable[[Callable[[str], None], Callable[[], bool]], LLMResponse]
                ) -> LLMResponse:
        progress = ProgressWriter(self.store, job.id, self.progress_interval)
        watch = CancelWatch(self.store, job.id, self.progress_interval)
        try:
            return call(progress.add, watch)
        except LLMError as exc:
            self.metrics.provider_error(exc.provider, exc.code.value)
            self.store.note_error(job.id, exc.code.value, exc.message)
            raise
        finally:
            progress.flush()

    def _save(self, job: Job, response: dict[str, Any], llm_response: LLMResponse | None) -> Summary:
        if llm_response is not None and llm_response.finish_reason == "cancelled":
            applied = self.store.cancel(job.id, response=response)
            if not applied:  # cancelled meanwhile by llm-cancel: keep what this run streamed before stopping
                self.store.finalize_cancelled(job.id, response, llm_response.content)
            refreshed = self._load(job.id)
            if applied and refreshed is not None:
                self._record_finished(refreshed)
            return {"outcome": "cancelled", "status": refreshed.status.value if refreshed else None}
        usage = llm_response.usage if llm_response is not None else None
        if not self.store.save_result(job.id, response, usage):
            current = self._load(job.id)
            return {"outcome": "skipped", "status": current.status.value if current else None}
        if usage is not None and llm_response is not None:
            self.metrics.tokens_used(llm_response.model, usage.prompt_tokens, usage.completion_tokens)
        return {"outcome": "generated",
                "finish_reason": llm_response.finish_reason if llm_response else "stop",
                "completion_tokens": usage.completion_tokens if usage else 0}

    def _record_finished(self, job: Job) -> None:
        seconds = (job.finished_at - job.started_at).total_seconds() \
            if job.finished_at and job.started_at else None
        self.metrics.job_finished(job.kind.value, job.status.value, seconds)


def _stored(model: type[_M], job: Job) -> _M:
    """The request stored on the row, validated. A row that no longer validates will not get better on a
    retry: it is a non-retriable error."""
    try:
        return model.model_validate(job.request)
    except ValidationError as exc:
        raise LLMError(ErrorCode.BAD_REQUEST, f"the job's stored request is invalid ({exc.error_count()} "
                       "error(s))", provider=job.provider or "agentic", retriable=False) from None


def cleanup_cutoffs(retention_days: int, stuck_minutes: int, pending_minutes: int = 1440) -> dict[str, str]:
    now = utcnow()
    return {"delete_before": (now - timedelta(days=retention_days)).isoformat(),
            "stuck_before": (now - timedelta(minutes=stuck_minutes)).isoformat(),
            "pending_before": (now - timedelta(minutes=pending_minutes)).isoformat()}


__all__ = ["CancelWatch", "JobRunner", "ProgressWriter", "cleanup_cutoffs"]
