"""The functions' logic under ``inngest.experimental.mocked``, with the real store on both databases and the
real providers (OpenRouter with only its HTTP edge mocked by respx, or the offline mock provider).

Known ``mocked`` limitations these tests work with (reference §7): NonRetriableError and RetryAfterError are
still retried; a step that exhausts its retries fails the run with the original exception (no StepError);
on_failure never runs; ``ctx.attempt`` keeps counting across steps. The HTTP tests cover those paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import inngest
import pytest
import respx
from inngest.experimental import mocked
from sqlalchemy import Engine

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.jobs import JobKind, JobStatus
from agentic.domain.llm import PREVIEW_MAX_CHARS
from agentic.functions.jobs import provider_call
from agentic.providers.mock import MockLLMRepository
from agentic.providers.openrouter import OpenRouterRepository
from agentic.service.kinds import GENERATE
from agentic.store.jobs import JobStore
from agentic.store.tables import utcnow
from tests.functions.conftest import (
    MODEL,
    PREVIEW_MODEL,
    Harness,
    create_generate_job,
    create_preview_job,
    error_response,
    sent_bodies,
    set_times,
    sse_chunks,
    sse_response,
)

MakeHarness = Callable[..., Harness]


def run_in_thread(work: Callable[[], Any]) -> Any:
    """Run ``work`` on another thread (as another worker would) and wait for its result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result(timeout=30)


def sample(harness: Harness, name: str, **labels: str) -> float:
    value = harness.runner.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# ---- generate ------------------------------------------------------------------------------------------


def test_generate_streams_into_the_row_and_completes(make_harness: MakeHarness, store: JobStore,
                                                     openrouter: OpenRouterRepository,
                                                     chat_route: respx.Route) -> None:
    chat_route.return_value = sse_response(sse_chunks("Hello", ", ", "world"))
    harness = make_harness(openrouter)
    job = create_generate_job(store, "Greet me")

    result = harness.run_job("llm-generate", job)

    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output == {"job_id": job.id, "status": "completed"}
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["content"] == "Hello, world"
    assert done.partial_output == "Hello, world"
    assert (done.prompt_tokens, done.completion_tokens, done.total_tokens) == (12, 5, 17)
    assert done.attempts == 1
    assert done.started_at is not None and done.finished_at is not None
    assert done.error_code is None
    [body] = sent_bodies(chat_route)
    assert body["model"] == MODEL and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "Greet me"}]
    assert sample(harness, "agentic_tokens_total", model=MODEL, type="completion") == 5
    assert sample(harness, "agentic_job_processing_seconds_count", kind="generate", status="completed") == 1


def test_generate_with_the_mock_provider(make_harness: MakeHarness, store: JobStore) -> None:
    harness = make_harness(MockLLMRepository())
    job = create_generate_job(store, "Tell me about queues", provider="mock")

    result = harness.run_job("llm-generate", job)

    assert result.status is mocked.Status.COMPLETED, result.error
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["provider"] == "mock"
    assert done.response["content"] and done.partial_output == done.response["content"]


def test_transient_failure_then_success_resets_partial_output(make_harness: MakeHarness, store: JobStore,
                                                              openrouter: OpenRouterRepository,
                                                              chat_route: respx.Route) -> None:
    # 1st attempt: 503. 2nd: the stream breaks off after "Hel" (no finish reason: truncated, retriable).
    # 3rd: the whole answer. The row must hold the 3rd attempt's text only, not "HelHello world".
    chat_route.side_effect = [error_response(503),
                              sse_response(sse_chunks("Hel", finish=None, usage=None)),
                              sse_response(sse_chunks("Hello", " world"))]
    harness = make_harness(openrouter)
    job = create_generate_job(store)

    result = harness.run_job("llm-generate", job)

    assert result.status is mocked.Status.COMPLETED, result.error
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["content"] == "Hello world"
    assert done.partial_output == "Hello world"
    assert done.attempts == 3  # the start counted one, each retry of call-llm one more
    assert done.error_code is None and done.error_message is None  # completing clears the noted error
    assert chat_route.call_count == 3
    assert sample(harness, "agentic_provider_errors_total", provider="openrouter", code="upstream_error") == 1
    assert sample(harness, "agentic_provider_errors_total", provider="openrouter", code="truncated") == 1


@pytest.mark.parametrize("status, prompt, code", [(400, "Say hello", "bad_request"),
                                                  (401, "Say hello", "authentication")])
def test_permanent_provider_failure_fails_the_job_at_once(make_harness: MakeHarness, store: JobStore,
                                                          openrouter: OpenRouterRepository,
                                                          chat_route: respx.Route, status: int, prompt: str,
                                                          code: str) -> None:
    chat_route.return_value = error_response(status, "no can do")
    harness = make_harness(openrouter)
    job = create_generate_job(store, prompt)

    result = harness.run_job("llm-generate", job)

    failed = harness.job(job)
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == code and failed.error_message == "no can do"
    assert failed.finished_at is not None
    # mocked retries even a NonRetriableError (the HTTP tests check the real no-retry answer), but the
    # job was failed by the first attempt: later attempts find it failed and never call the provider.
    assert chat_route.call_count == 1
    assert result.status is mocked.Status.COMPLETED
    assert result.output == {"job_id": job.id, "status": "failed"}
    assert sample(harness, "agentic_job_processing_seconds_count", kind="generate", status="failed") == 1


def test_mock_provider_failure_marker_is_permanent(make_harness: MakeHarness, store: JobStore) -> None:
    harness = make_harness(MockLLMRepository())
    job = create_generate_job(store, "please [mock:fail] now", provider="mock")

    harness.run_job("llm-generate", job)

    failed = harness.job(job)
    assert failed.status is JobStatus.FAILED and failed.error_code == "bad_request"
    assert failed.attempts == 1


def test_retriable_failure_exhausts_retries_and_notes_the_error(make_harness: MakeHarness, store: JobStore,
                                                                openrouter: OpenRouterRepository,
                                                                chat_route: respx.Route) -> None:
    chat_route.return_value = error_response(502, "bad gateway")
    harness = make_harness(openrouter)
    job = create_generate_job(store)

    result = harness.run_job("llm-generate", job)

    assert result.status is mocked.Status.FAILED
    assert isinstance(result.error, LLMError) and result.error.code is ErrorCode.UPSTREAM_ERROR
    assert chat_route.call_count == 4  # retries=3
    # on_failure (never run by mocked) fails it with this noted error; see the HTTP tests.
    job_now = harness.job(job)
    assert job_now.status is JobStatus.PROCESSING
    assert (job_now.error_code, job_now.error_message) == ("upstream_error", "bad gateway")


def test_rate_limit_retries_after_the_providers_delay(make_harness: MakeHarness, store: JobStore,
                                                      openrouter: OpenRouterRepository,
                                                      chat_route: respx.Route) -> None:
    chat_route.side_effect = [error_response(429, "slow down", headers={"retry-after": "20"}),
                              sse_response(sse_chunks("Fine."))]
    harness = make_harness(openrouter)
    job = create_generate_job(store)

    result = harness.run_job("llm-generate", job)

    assert result.status is mocked.Status.COMPLETED, result.error
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.partial_output == "Fine."
    assert done.attempts == 2
    assert sample(harness, "agentic_provider_errors_total", provider="openrouter", code="rate_limited") == 1


def test_provider_call_maps_errors_to_inngest_retry_decisions(make_harness: MakeHarness, store: JobStore,
                                                              openrouter: OpenRouterRepository,
                                                              chat_route: respx.Route) -> None:
    harness = make_harness(openrouter)
    job = create_generate_job(store)  # pending: the first attempt of the step starts it

    chat_route.return_value = error_response(429, "slow down", headers={"retry-after": "20"})
    before = datetime.now(UTC)
    with pytest.raises(inngest.RetryAfterError) as rate_limited:
        provider_call(harness.runner, GENERATE, job.id, 0)
    delay = rate_limited.value.retry_after.astimezone(UTC) - before  # naive local time from the SDK
    assert timedelta(seconds=19) <= delay <= timedelta(seconds=22)

    chat_route.return_value = error_response(503)
    with pytest.raises(LLMError) as transient:  # plain exception: the step is retried with backoff
        provider_call(harness.runner, GENERATE, job.id, 1)
    assert transient.value.retriable
    assert harness.job(job).status is JobStatus.PROCESSING

    chat_route.return_value = error_response(404, "no such model")
    with pytest.raises(inngest.NonRetriableError, match="model_not_found: no such model"):
        provider_call(harness.runner, GENERATE, job.id, 2)
    assert harness.job(job).status is JobStatus.FAILED
    assert harness.job(job).attempts == 3


def test_a_retry_that_starts_the_job_counts_one_attempt(make_harness: MakeHarness, store: JobStore,
                                                         openrouter: OpenRouterRepository,
                                                         chat_route: respx.Route) -> None:
    """The first attempt of call-llm failed before it could start the job (say the database was down):
    the retry starts it and calls the provider once; the job has made one attempt, not two."""
    harness = make_harness(openrouter)
    job = create_generate_job(store)
    chat_route.return_value = sse_response(sse_chunks("Started late."))

    summary = provider_call(harness.runner, GENERATE, job.id, 1)

    assert summary["outcome"] == "completed" and summary["status"] == "completed"
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.attempts == 1 and chat_route.call_count == 1


def test_invalid_stored_request_is_not_retried(make_harness: MakeHarness, store: JobStore,
                                               openrouter: OpenRouterRepository,
                                               chat_route: respx.Route) -> None:
    harness = make_harness(openrouter)
    job, _ = store.create(kind=JobKind.GENERATE, user_id="u", request={"messages": []}, model=MODEL)

    with pytest.raises(inngest.NonRetriableError, match="bad_request"):
        provider_call(harness.runner, GENERATE, job.id, 0)

    assert harness.job(job).status is JobStatus.FAILED
    assert chat_route.call_count == 0


@pytest.mark.parametrize("fn_id", ["llm-generate", "preview-generate"])
def test_cancelled_before_start_never_calls_the_provider(make_harness: MakeHarness, store: JobStore,
                                                         openrouter: OpenRouterRepository,
                                                         chat_route: respx.Route, fn_id: str) -> None:
    harness = make_harness(openrouter)
    job = create_generate_job(store) if fn_id == "llm-generate" else create_preview_job(store, "x" * 600)

    cancelled = harness.cancel(job)
    result = harness.run_job(fn_id, job)

    assert cancelled.output == {"job_id": job.id, "cancelled": True, "status": "cancelled"}
    assert result.status is mocked.Status.COMPLETED
    assert result.output == {"job_id": job.id, "status": "cancelled", "skipped": "job is already cancelled"}
    assert chat_route.call_count == 0
    job_now = harness.job(job)
    assert job_now.status is JobStatus.CANCELLED and job_now.attempts == 0
    assert job_now.cancel_requested_at is not None


def test_recorded_cancel_request_stops_the_run_before_the_provider(make_harness: MakeHarness, store: JobStore,
                                                                   openrouter: OpenRouterRepository,
                                                                   chat_route: respx.Route) -> None:
    # The API records the request on the row before it sends the cancel event (which may be lost).
    harness = make_harness(openrouter)
    job = create_generate_job(store)
    assert store.request_cancel(job.id)

    result = harness.run_job("llm-generate", job)

    assert result.output == {"job_id": job.id, "status": "cancelled", "skipped": "cancel requested"}
    assert harness.job(job).status is JobStatus.CANCELLED
    assert chat_route.call_count == 0


def test_cancel_while_streaming_stops_upstream_and_keeps_partial_text(make_harness: MakeHarness,
                                                                      store: JobStore,
                                                                      openrouter: OpenRouterRepository,
                                                                      chat_route: respx.Route) -> None:
    harness = make_harness(openrouter)
    job = create_generate_job(store)
    chunks = sse_chunks("One", " two", " three", " four", " five")
    served: list[int] = []
    cancels: list[Any] = []

    def stream() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            if index == 2:  # the user cancels while tokens flow: the llm-cancel function runs meanwhile
                cancels.append(run_in_thread(lambda: harness.cancel(job)))
            served.append(index)
            yield chunk

    chat_route.side_effect = lambda request: sse_response(stream())

    result = harness.run_job("llm-generate", job)

    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output == {"job_id": job.id, "status": "cancelled"}
    assert [c.output["cancelled"] for c in cancels] == [True]
    cancelled = harness.job(job)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.partial_output == "One two"  # what streamed before the cancel is kept
    assert len(served) < len(chunks)  # the upstream stream was dropped, not read to the end
    assert chat_route.call_count == 1


def test_cancel_never_touches_a_finished_job(make_harness: MakeHarness, store: JobStore) -> None:
    harness = make_harness(MockLLMRepository())
    job = create_generate_job(store, provider="mock")
    harness.run_job("llm-generate", job)
    completed = harness.job(job)

    result = harness.cancel(job)

    assert result.output == {"job_id": job.id, "cancelled": False, "status": "completed"}
    after = harness.job(job)
    assert after.status is JobStatus.COMPLETED
    assert after.response == completed.response and after.cancel_requested_at is None


def test_cancel_event_without_job_id_fails_without_retry(make_harness: MakeHarness) -> None:
    harness = make_harness(MockLLMRepository())

    result = harness.trigger("llm-cancel", {"user_id": "u"})

    assert result.status is mocked.Status.FAILED
    assert isinstance(result.error, inngest.NonRetriableError)


def test_same_event_twice_processes_the_job_once(make_harness: MakeHarness, store: JobStore,
                                                 openrouter: OpenRouterRepository,
                                                 chat_route: respx.Route) -> None:
    chat_route.return_value = sse_response(sse_chunks("Once"))
    harness = make_harness(openrouter)
    job = create_generate_job(store)

    first = harness.run_job("llm-generate", job)
    second = harness.run_job("llm-generate", job)

    assert first.output == {"job_id": job.id, "status": "completed"}
    assert second.output == {"job_id": job.id, "status": "completed", "skipped": "job is already completed"}
    assert chat_route.call_count == 1
    assert harness.job(job).attempts == 1


def test_unknown_job_ends_the_run_quietly(make_harness: MakeHarness) -> None:
    harness = make_harness(MockLLMRepository())

    result = harness.trigger("llm-generate", {"job_id": "job_missing", "user_id": "u"})

    assert result.status is mocked.Status.COMPLETED
    assert result.output == {"job_id": "job_missing", "status": None, "skipped": "job not found"}


# ---- preview -------------------------------------------------------------------------------------------


def test_short_preview_is_the_content_itself(make_harness: MakeHarness, store: JobStore,
                                             openrouter: OpenRouterRepository,
                                             chat_route: respx.Route) -> None:
    harness = make_harness(openrouter)
    content = "A short note. " * 17  # 238 characters
    job = create_preview_job(store, content[:PREVIEW_MAX_CHARS])

    result = harness.run_job("preview-generate", job)

    assert result.output == {"job_id": job.id, "status": "completed"}
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response == {"preview": content[:PREVIEW_MAX_CHARS], "used_ai": False}
    assert chat_route.call_count == 0


def test_long_preview_is_summarised_by_the_preview_model(make_harness: MakeHarness, store: JobStore,
                                                         openrouter: OpenRouterRepository,
                                                         chat_route: respx.Route) -> None:
    title = "Quarterly plan"
    answer = f"**{title}**: " + "The team ships the durable job queue first, then streaming. " * 8
    chat_route.return_value = sse_response(sse_chunks(answer, model=PREVIEW_MODEL))
    harness = make_harness(openrouter)
    job = create_preview_job(store, "Long content. " * 40, title=title)

    result = harness.run_job("preview-generate", job)

    assert result.status is mocked.Status.COMPLETED, result.error
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["used_ai"] is True
    preview = done.response["preview"]
    assert 0 < len(preview) <= PREVIEW_MAX_CHARS
    assert preview.startswith("The team ships the durable job queue first")
    assert title.lower() not in preview.lower() and "*" not in preview
    [body] = sent_bodies(chat_route)
    assert body["model"] == PREVIEW_MODEL
    assert title in body["messages"][0]["content"] and "Do not repeat the title" in body["messages"][0]["content"]
    assert done.total_tokens == 17


def test_preview_provider_failure_fails_the_job(make_harness: MakeHarness, store: JobStore,
                                                openrouter: OpenRouterRepository,
                                                chat_route: respx.Route) -> None:
    chat_route.return_value = error_response(404, "model gone")
    harness = make_harness(openrouter)
    job = create_preview_job(store, "y" * 400)

    harness.run_job("preview-generate", job)

    failed = harness.job(job)
    assert failed.status is JobStatus.FAILED and failed.error_code == "model_not_found"
    assert chat_route.call_count == 1


# ---- cleanup -------------------------------------------------------------------------------------------


def test_cleanup_deletes_old_finished_jobs_in_batches_and_fails_stuck_ones(
        make_harness: MakeHarness, store: JobStore, engine: Engine) -> None:
    harness = make_harness(MockLLMRepository(), cleanup_batch_size=2, job_retention_days=7,
                           stuck_job_minutes=180)
    now = utcnow()
    old_done = []
    for _ in range(3):
        job = create_generate_job(store)
        store.start(job.id)
        store.complete(job.id, response={"content": "x"})
        set_times(engine, job.id, finished_at=now - timedelta(days=8))
        old_done.append(job.id)
    old_cancelled = create_generate_job(store)
    store.cancel(old_cancelled.id)
    set_times(engine, old_cancelled.id, finished_at=now - timedelta(days=30))
    recent_done = create_generate_job(store)
    store.start(recent_done.id)
    store.complete(recent_done.id, response={"content": "y"})
    old_pending = create_generate_job(store)  # never deleted while unfinished; failed: no run will start it
    set_times(engine, old_pending.id, created_at=now - timedelta(days=30), updated_at=now - timedelta(days=30))
    queued_today = create_generate_job(store)  # waiting for its throttled run: left alone
    set_times(engine, queued_today.id, created_at=now - timedelta(hours=3))
    stuck = create_generate_job(store)
    store.start(stuck.id)
    set_times(engine, stuck.id, updated_at=now - timedelta(hours=4))
    busy = create_generate_job(store)
    store.start(busy.id)

    result = harness.trigger("llm-cleanup")

    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["deleted"] == 4
    assert result.output["batches"] == 3  # 2 + 2 + 0: a full batch means there may be more
    assert result.output["failed_stuck"] == 1 and result.output["failed_lost"] == 1
    for job_id in [*old_done, old_cancelled.id]:
        assert store.get(job_id) is None
    assert harness.job(recent_done).status is JobStatus.COMPLETED
    lost = harness.job(old_pending)
    assert lost.status is JobStatus.FAILED and lost.error_code == "queue_lost" and lost.finished_at is not None
    assert harness.job(queued_today).status is JobStatus.PENDING
    assert harness.job(stuck).status is JobStatus.FAILED and harness.job(stuck).error_code == "stuck"
    assert harness.job(busy).status is JobStatus.PROCESSING
    json.dumps(result.output)  # the run's output is plain JSON


def test_cleanup_with_nothing_to_do(make_harness: MakeHarness) -> None:
    harness = make_harness(MockLLMRepository())

    result = harness.trigger("llm-cleanup")

    assert result.status is mocked.Status.COMPLETED
    assert (result.output["deleted"], result.output["batches"], result.output["failed_stuck"],
            result.output["failed_lost"]) == (0, 1, 0, 0)


def test_store_result_after_a_recorded_cancel_ends_the_job_cancelled(make_harness: MakeHarness,
                                                                      store: JobStore) -> None:
    """Cancelled while the provider's reply was being stored (the cancel event lost or not yet handled):
    store-result must not complete the job the cancel route answered 202 for."""
    harness = make_harness(MockLLMRepository())
    job = create_generate_job(store)
    assert store.start(job.id) and store.save_result(job.id, {"content": "paid for"})
    assert store.request_cancel(job.id)

    summary = harness.runner.finish(job.id)

    assert summary == {"completed": False, "status": "cancelled"}
    done = harness.job(job)
    assert done.status is JobStatus.CANCELLED and done.response == {"content": "paid for"}
