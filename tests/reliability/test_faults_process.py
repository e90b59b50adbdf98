"""A worker process killed while it streams a provider's answer into a job.

The app runs under ``agentic serve`` (production mode) with the real OpenRouter repository pointed
at a loopback stand-in that streams slowly. The signed fake executor drives the run over real HTTP; while
call-llm streams, the worker is SIGKILLed, so the executor's request dies without an answer. Inngest retries
such a request; ``agentic serve`` has started a new worker by then. The job must complete once, with the retry's
text only: the text the dead worker had streamed into the row is not kept in front of it.

A worker that dies after call-llm saved the response, before its answer left: the retry must not pay the
provider for the same answer again.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from agentic.domain.jobs import JobStatus
from agentic.inngest.events import EVENT_GENERATE
from agentic.store.jobs import JobStore
from tests.functions.conftest import (
    OPENROUTER_KEY,
    SIGNING_KEY,
    AppHarness,
    create_generate_job,
    error_response,
    sse_chunks,
    sse_response,
)
from tests.functions.executor import FakeExecutor, Op, RunStatus, make_event
from tests.reliability.support import FakeProvider, HttpClient, Reply, ServedApp, wait_until

WORDS = ("one", " two", " three", " four", " five", " six", " seven", " eight")
TEXT = "".join(WORDS)


@pytest.mark.timeout(90)
def test_a_worker_killed_mid_stream_is_retried_and_the_job_completes_once(
        database_url: str, store: JobStore, tmp_path: Path) -> None:
    slow = Reply(chunks=sse_chunks(*WORDS), chunk_delay=0.2)
    with FakeProvider([slow, Reply(chunks=sse_chunks(*WORDS))]) as provider, ServedApp({
        "DATABASE_URL": database_url, "LLM_PROVIDER": "openrouter", "OPENROUTER_API_KEY": OPENROUTER_KEY,
        "OPENROUTER_BASE_URL": provider.base_url, "INNGEST_DEV": "0", "INNGEST_SIGNING_KEY": SIGNING_KEY,
        "PROGRESS_FLUSH_SECONDS": "0", "PROVIDER_READ_TIMEOUT": "10",
        "OFFLOAD_MODELS": "",  # the job's openai/ model streams here (it would be offloaded by default)
    }, workers=1, threads=4, cwd=tmp_path) as server:
        server.wait_ready()
        http = HttpClient(server.base_url)
        executor = FakeExecutor(http, SIGNING_KEY)  # type: ignore[arg-type]  # a duck-typed FlaskClient
        job = create_generate_job(store)
        run = executor.start("llm-generate", make_event(EVENT_GENERATE, {"job_id": job.id, "user_id": job.user_id}),
                             retries=3)

        outcome: list[BaseException | object] = []

        def call_llm() -> None:
            try:
                outcome.append(run.advance())
            except BaseException as exc:
                outcome.append(exc)

        streaming = threading.Thread(target=call_llm, daemon=True)
        streaming.start()
        wait_until(lambda: slow.sent >= 3 and (store.get(job.id) or job).partial_output, timeout=20,
                   what="the first attempt streaming into the row")
        [worker] = server.worker_pids()
        os.kill(worker, signal.SIGKILL)
        streaming.join(20)

        assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
        dead = store.get(job.id)
        assert dead is not None and dead.status is JobStatus.PROCESSING and dead.response is None
        assert dead.partial_output and TEXT.startswith(dead.partial_output) and dead.partial_output != TEXT
        wait_until(lambda: (pids := server.worker_pids()) and worker not in pids, timeout=30,
                   what="agentic serve starting a new worker")
        server.wait_ready()

        run.attempt += 1  # the request got no answer: Inngest sends it again as the next attempt
        run.finish()
        http.close()

    assert run.status is RunStatus.COMPLETED and run.output == {"job_id": job.id, "status": "completed"}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["content"] == TEXT
    assert done.partial_output == TEXT  # once: the dead attempt's text was dropped before the retry streamed
    assert done.attempts == 2 and len(provider.calls) == 2


def test_a_reply_lost_after_the_response_was_saved_does_not_pay_for_the_answer_twice(
        make_app: Callable[..., AppHarness], store: JobStore, chat_route: respx.Route,
        openrouter_settings: dict[str, Any]) -> None:
    """The worker dies after call-llm saved the response but before its answer reached Inngest, which then
    runs call-llm again (attempt 1). The answer is already in the row: calling the provider again costs a
    second generation and, if that call fails, leaves a failed job holding the first one's response."""
    chat_route.side_effect = [sse_response(sse_chunks(*WORDS)), error_response(402, "Insufficient credits")]
    harness = make_app(**openrouter_settings, progress_flush_seconds=0.0)
    job = create_generate_job(store)
    run = harness.generate(job)
    saved = run.advance()  # the first request starts the job, saves the answer and completes the job
    assert saved.op_names == [(Op.STEP_RUN, "call-llm")] and harness.job(job).response is not None
    run.steps.pop(saved.ops[0]["id"])  # the executor never got that answer: it retries the same step
    run.stack.pop()
    run.attempt, run.target = 1, saved.ops[0]["id"]

    run.finish()

    assert chat_route.call_count == 1, "the provider was paid twice for one job"
    done = harness.job(job)
    assert run.output == {"job_id": job.id, "status": "completed"}
    assert done.status is JobStatus.COMPLETED and done.partial_output == TEXT
    assert done.response is not None and done.response["content"] == TEXT
