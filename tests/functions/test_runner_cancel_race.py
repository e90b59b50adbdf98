"""A cancel that lands while call-llm streams: the job ends cancelled and keeps every streamed word."""

from __future__ import annotations

import threading
import time

from agentic.domain.jobs import JobStatus
from agentic.metrics import Metrics
from agentic.providers.mock import MockLLMRepository
from agentic.runner import JobRunner
from agentic.store.jobs import JobStore
from tests.functions.conftest import create_generate_job, reload


def test_cancel_by_llm_cancel_mid_stream_keeps_the_partial_response(store: JobStore) -> None:
    runner = JobRunner(store=store, llm=MockLLMRepository(tokens_per_second=200), metrics=Metrics(),
                       preview_model="mock", progress_interval=0.02)
    job = create_generate_job(store, provider="mock")
    assert runner.begin(job.id)["started"]
    summaries: list[dict[str, object]] = []
    worker = threading.Thread(target=lambda: summaries.append(runner.call_llm(job.id)))
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
