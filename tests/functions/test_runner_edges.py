"""The runner at the edges of a run: a cancel landing mid-stream, and a run that fails after its answer was saved."""

from __future__ import annotations

import threading
import time

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import JobStatus
from agentic.metrics import Metrics
from agentic.providers.mock import MockLLMRepository
from agentic.runner import JobRunner
from agentic.service.kinds import GENERATE
from agentic.store.jobs import JobStore
from tests.functions.conftest import create_generate_job, reload


def test_cancel_by_llm_cancel_mid_stream_keeps_the_partial_response(store: JobStore) -> None:
    runner = JobRunner(store=store, llm=MockLLMRepository(tokens_per_second=200), metrics=Metrics(),
                       progress_interval=0.02)
    job = create_generate_job(store, provider="mock")
    assert runner.begin(job.id)["started"]
    summaries: list[dict[str, object]] = []
    worker = threading.Thread(target=lambda: summaries.append(runner.call(GENERATE, job.id)))
    worker.start()
    deadline = time.monotonic() + 5
    while not reload(store, job).partial_output and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.cancel(job.id)["cancelled"]  # what llm-cancel does, while the provider still streams
    worker.join(timeout=5)

    final = reload(store, job)
    assert summaries and summaries[0]["outcome"] == "cancelled"
    assert final.status is JobStatus.CANCELLED
    assert final.response is not None and final.response["finish_reason"] == "cancelled"
    # Everything streamed before the stop is there, including text after the last progress write.
    assert final.partial_output == final.response["content"] != ""
    assert len(final.partial_output.split()) < 64  # it did stop early


def test_a_run_that_fails_after_the_answer_was_saved_completes_the_job(store: JobStore) -> None:
    """store-result ran out of retries (say the database was down): the failure handler keeps the answer."""
    runner = JobRunner(store=store, llm=MockLLMRepository(), metrics=Metrics())
    job = create_generate_job(store, provider="mock")
    assert runner.begin(job.id)["started"]
    assert runner.call(GENERATE, job.id)["outcome"] == "generated"

    assert runner.fail_exhausted(job.id, "store-result: connection refused") == {"failed": False,
                                                                                 "status": "completed"}
    final = reload(store, job)
    assert final.status is JobStatus.COMPLETED and final.response is not None and final.error_code is None


def test_a_run_that_fails_before_any_answer_is_failed_with_the_last_error(store: JobStore) -> None:
    runner = JobRunner(store=store, llm=MockLLMRepository(), metrics=Metrics())
    job = create_generate_job(store, provider="mock")
    assert runner.begin(job.id)["started"]
    store.note_error(job.id, ErrorCode.OVERLOADED, "529 from upstream")
    assert runner.fail_exhausted(job.id, "step failed")["failed"]
    final = reload(store, job)
    assert (final.status, final.error_code, final.error_message) == (JobStatus.FAILED, "overloaded",
                                                                     "529 from upstream")
