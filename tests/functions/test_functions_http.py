"""/api/inngest in production mode, driven by a fake executor speaking Inngest's protocol with signed
requests (tests/functions/executor.py). The app is built by ``create_app`` from settings; providers are the
real ones (the offline mock, or OpenRouter with only its HTTP edge mocked)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import respx

from agentic.domain.jobs import JobStatus
from agentic.store.jobs import JobStore
from tests.functions.conftest import (
    SIGNING_KEY,
    AppHarness,
    create_generate_job,
    create_preview_job,
    error_response,
    sse_chunks,
    sse_response,
)
from tests.functions.executor import Op, Run, RunStatus, make_event, response_signature_valid, step_hash

MakeApp = Callable[..., AppHarness]


def ops(run: Run) -> list[tuple[int, list[tuple[str, str]]]]:
    """Each request of the run: its status and the (op, step) pairs it answered with."""
    return [(call.status, call.op_names) for call in run.calls]


# ---- a run, step by step ---------------------------------------------------------------------------------


def test_run_driven_step_by_step_to_completion(make_app: MakeApp, store: JobStore) -> None:
    harness = make_app()
    job = create_generate_job(store, "Explain durable execution", provider="mock")
    run = harness.generate(job)

    first = run.advance()
    # One request: the step starts the job, calls the provider and completes the job.
    assert first.status == 206 and first.op_names == [(Op.STEP_RUN, "call-llm")]
    assert first.ops[0]["id"] == step_hash("call-llm")
    summary = first.ops[0]["data"]
    assert summary["outcome"] == "completed" and summary["status"] == "completed"
    assert summary["finish_reason"] == "stop"
    assert len(json.dumps(summary)) < 200  # the step returns a summary; the text lives in the row
    assert response_signature_valid(first.response, SIGNING_KEY)
    generated = harness.job(job)
    assert generated.status is JobStatus.COMPLETED and generated.attempts == 1
    assert generated.response is not None and generated.response["content"]
    assert generated.partial_output == generated.response["content"]

    last = run.advance()
    assert last.status == 200 and run.status is RunStatus.COMPLETED
    assert run.output == {"job_id": job.id, "status": "completed"}
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.attempts == 1
    assert done.response == generated.response and done.total_tokens and done.finished_at is not None
    assert len(run.calls) == 2


def test_preview_over_http(make_app: MakeApp, store: JobStore) -> None:
    harness = make_app()
    job = create_preview_job(store, "Short enough.")

    run = harness.preview(job).finish()

    assert run.status is RunStatus.COMPLETED
    assert [names for _, names in ops(run)] == [[(Op.STEP_RUN, "generate-preview")], []]
    assert harness.job(job).response == {"preview": "Short enough.", "used_ai": False}


def test_planned_steps_run_when_targeted(make_app: MakeApp, store: JobStore) -> None:
    # With immediate execution disabled (as after parallel steps) the SDK plans each new step and runs it
    # only when the executor targets it by its hashed id.
    harness = make_app()
    job = create_generate_job(store, provider="mock")
    run = harness.generate(job)
    run.disable_immediate_execution = True

    planned = run.advance()
    assert planned.op_names == [(Op.STEP_PLANNED, "call-llm")]
    assert harness.job(job).status is JobStatus.PENDING  # planning runs nothing
    executed = run.advance()
    assert executed.target == step_hash("call-llm")
    assert executed.op_names == [(Op.STEP_RUN, "call-llm")]
    run.finish()
    assert run.output == {"job_id": job.id, "status": "completed"}


# ---- errors: retries, exhaustion, the failure handler -------------------------------------------------


def test_exhausted_retries_reach_the_failure_handler(make_app: MakeApp, store: JobStore,
                                                     chat_route: respx.Route,
                                                     openrouter_settings: dict[str, Any]) -> None:
    chat_route.return_value = error_response(503, "overloaded upstream")
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)

    run = harness.generate(job).finish()

    assert ops(run) == [(206, [(Op.STEP_ERROR, "call-llm")]),
                        (206, [(Op.STEP_ERROR, "call-llm")]),
                        (206, [(Op.STEP_ERROR, "call-llm")]),
                        (206, [(Op.STEP_FAILED, "call-llm")]),
                        (500, [])]
    assert [call.attempt for call in run.calls[0:4]] == [0, 1, 2, 3]
    error = run.calls[0].ops[0]["error"]
    assert error["name"] == "LLMError" and error["message"] == "overloaded upstream"
    assert run.status is RunStatus.FAILED
    assert run.calls[-1].headers.get("x-inngest-no-retry") == "true"  # the memoised StepError
    assert chat_route.call_count == 4
    still = harness.job(job)
    assert still.status is JobStatus.PROCESSING and still.attempts == 4
    assert still.error_code == "upstream_error"

    handler = harness.executor.deliver_failure(run)

    assert handler.status is RunStatus.COMPLETED
    assert ops(handler)[0] == (206, [(Op.STEP_RUN, "mark-failed")])
    assert handler.output == {"job_id": job.id, "failed": True, "status": "failed"}
    failed = harness.job(job)
    assert failed.status is JobStatus.FAILED
    assert (failed.error_code, failed.error_message) == ("upstream_error", "overloaded upstream")
    assert failed.finished_at is not None


def test_non_retriable_error_answers_500_no_retry(make_app: MakeApp, store: JobStore) -> None:
    harness = make_app()
    job = create_generate_job(store, "please [mock:fail]", provider="mock")

    run = harness.generate(job).finish()

    assert ops(run) == [(500, [])]  # the first request: the job started, the provider refused
    last = run.calls[-1]
    assert last.headers.get("x-inngest-no-retry") == "true"
    assert last.body["name"] == "NonRetriableError"
    assert last.body["message"] == "bad_request: the mock provider was asked to fail"
    failed = harness.job(job)
    assert failed.status is JobStatus.FAILED and failed.error_code == "bad_request"

    handler = harness.executor.deliver_failure(run)

    assert handler.output == {"job_id": job.id, "failed": False, "status": "failed"}
    assert harness.job(job) == failed  # already failed with the provider's error: unchanged


def test_rate_limit_answers_retry_after_then_succeeds(make_app: MakeApp, store: JobStore,
                                                      chat_route: respx.Route,
                                                      openrouter_settings: dict[str, Any]) -> None:
    chat_route.side_effect = [error_response(429, "slow down", headers={"retry-after": "30"}),
                              sse_response(sse_chunks("Later", " then."))]
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)

    run = harness.generate(job).finish()

    limited = run.calls[0]
    assert limited.status == 500 and limited.attempt == 0
    assert "x-inngest-no-retry" not in limited.headers
    assert limited.body["name"] == "RetryAfterError"
    retry_at = datetime.fromisoformat(limited.headers["retry-after"].replace("Z", "+00:00"))
    assert timedelta(seconds=25) <= retry_at - datetime.now(UTC) <= timedelta(seconds=31)
    assert run.calls[1].attempt == 1 and run.calls[1].op_names == [(Op.STEP_RUN, "call-llm")]
    assert run.status is RunStatus.COMPLETED
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.partial_output == "Later then." and done.attempts == 2


def test_failure_handler_leaves_a_completed_job_alone(make_app: MakeApp, store: JobStore) -> None:
    harness = make_app()
    job = create_generate_job(store, provider="mock")
    harness.generate(job).finish()
    completed = harness.job(job)
    failed_event = make_event("inngest/function.failed", {
        "error": {"name": "Error", "message": "something broke late", "stack": ""},
        "event": make_event("llm/generate.request", {"job_id": job.id, "user_id": job.user_id}),
        "function_id": "agentic-llm-generate", "run_id": "run_late"})

    handler = harness.executor.drive("llm-generate-failure", failed_event, retries=0)

    assert handler.output == {"job_id": job.id, "failed": False, "status": "completed"}
    assert harness.job(job) == completed


def test_failure_handler_fails_a_job_that_never_started(make_app: MakeApp, store: JobStore) -> None:
    harness = make_app()
    job = create_generate_job(store, provider="mock")
    failed_event = make_event("inngest/function.failed", {
        "error": {"name": "OperationalError", "message": "database unavailable", "stack": ""},
        "event": make_event("llm/generate.request", {"job_id": job.id, "user_id": job.user_id}),
        "function_id": "agentic-llm-generate", "run_id": "run_x"})

    handler = harness.executor.drive("llm-generate-failure", failed_event, retries=0)

    assert handler.output["failed"] is True
    failed = harness.job(job)
    assert (failed.status, failed.error_code, failed.error_message) == (
        JobStatus.FAILED, "function_failed", "database unavailable")


# ---- duplicates ----------------------------------------------------------------------------------------


def test_same_event_delivered_twice_processes_the_job_once(make_app: MakeApp, store: JobStore,
                                                           chat_route: respx.Route,
                                                           openrouter_settings: dict[str, Any]) -> None:
    chat_route.return_value = sse_response(sse_chunks("Only once."))
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)
    event_id = f"evt-{job.id}"

    first = harness.generate(job, event_id=event_id).finish()
    second = harness.generate(job, event_id=event_id).finish()

    assert first.output == {"job_id": job.id, "status": "completed"}
    assert second.output == {"job_id": job.id, "status": "completed", "skipped": "job is already completed"}
    assert len(second.calls) == 2  # the first step (refusing), then the end
    assert chat_route.call_count == 1
    assert harness.job(job).attempts == 1


def test_duplicate_runs_interleaved_call_the_provider_once(make_app: MakeApp, store: JobStore,
                                                           chat_route: respx.Route,
                                                           openrouter_settings: dict[str, Any]) -> None:
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)
    seconds: list[Run] = []

    def stream() -> Iterator[bytes]:
        for index, chunk in enumerate(sse_chunks("On", "ce.")):
            if index == 1:  # the duplicate delivery runs on another worker while the first run's step streams
                with ThreadPoolExecutor(max_workers=1) as pool:
                    seconds.append(pool.submit(lambda: harness.generate(job).finish()).result(timeout=30))
            yield chunk

    chat_route.side_effect = lambda request: sse_response(stream())
    first = harness.generate(job).finish()

    assert [second.output for second in seconds] == [{"job_id": job.id, "status": "processing",
                                                      "skipped": "job is being processed by another run"}]
    assert first.output == {"job_id": job.id, "status": "completed"}
    assert chat_route.call_count == 1
    assert harness.job(job).attempts == 1


def test_lost_reply_of_the_completing_step_is_retried_safely(make_app: MakeApp, store: JobStore,
                                                             chat_route: respx.Route,
                                                             openrouter_settings: dict[str, Any]) -> None:
    chat_route.return_value = sse_response(sse_chunks("Paid once."))
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)
    run = harness.generate(job)
    run.advance()  # started, called and completed in one step
    # The executor never got that answer: it retries the same step as attempt 1.
    run.steps.clear()
    run.stack.clear()
    run.attempt, run.target = 1, step_hash("call-llm")

    retried = run.advance()

    assert retried.op_names == [(Op.STEP_RUN, "call-llm")]
    assert retried.ops[0]["data"] == {"outcome": "skipped", "status": "completed"}
    run.finish()
    assert run.output == {"job_id": job.id, "status": "completed"}
    assert chat_route.call_count == 1
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.attempts == 1 and done.partial_output == "Paid once."


# ---- cancellation --------------------------------------------------------------------------------------


def test_cancel_before_the_llm_call(make_app: MakeApp, store: JobStore, chat_route: respx.Route,
                                    openrouter_settings: dict[str, Any]) -> None:
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)

    cancel = harness.cancel(job)
    run = harness.generate(job).finish()

    assert cancel.output == {"job_id": job.id, "cancelled": True, "status": "cancelled"}
    assert ops(cancel) == [(206, [(Op.STEP_RUN, "mark-cancelled")]), (200, [])]
    assert run.output == {"job_id": job.id, "status": "cancelled", "skipped": "job is already cancelled"}
    assert chat_route.call_count == 0
    assert harness.job(job).status is JobStatus.CANCELLED


def test_cancel_between_attempts_of_the_llm_call(make_app: MakeApp, store: JobStore,
                                                 chat_route: respx.Route,
                                                 openrouter_settings: dict[str, Any]) -> None:
    chat_route.return_value = error_response(503, "overloaded upstream")
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)
    run = harness.generate(job)
    run.advance()  # the job started; the provider failed: the step is retried

    harness.cancel(job)
    run.finish()

    assert run.calls[1].ops[0]["data"] == {"outcome": "cancelled", "status": "cancelled"}
    assert run.output == {"job_id": job.id, "status": "cancelled"}
    assert chat_route.call_count == 1
    cancelled = harness.job(job)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.response is None


def test_cancel_request_recorded_between_steps_stops_before_the_provider(
        make_app: MakeApp, store: JobStore, chat_route: respx.Route, openrouter_settings: dict[str, Any]) -> None:
    # The API records the request on the row first; the cancel event may come late or never.
    chat_route.return_value = error_response(503, "overloaded upstream")
    harness = make_app(**openrouter_settings)
    job = create_generate_job(store)
    run = harness.generate(job)
    run.advance()  # the job started; the provider failed: the step is retried

    assert store.request_cancel(job.id)
    run.finish()

    assert run.calls[1].ops[0]["data"] == {"outcome": "cancelled", "status": "cancelled"}
    assert run.output == {"job_id": job.id, "status": "cancelled"}
    assert chat_route.call_count == 1
    assert harness.job(job).status is JobStatus.CANCELLED


def test_cancel_during_the_llm_call_stops_the_stream(make_app: MakeApp, store: JobStore,
                                                     chat_route: respx.Route,
                                                     openrouter_settings: dict[str, Any]) -> None:
    harness = make_app(**openrouter_settings, progress_flush_seconds=0.0)  # check the row at every chunk
    job = create_generate_job(store)
    chunks = sse_chunks("Alpha", " beta", " gamma", " delta")
    served: list[int] = []
    cancels: list[Run] = []

    def stream() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            if index == 2:  # the executor runs llm-cancel on another worker while this step streams
                with ThreadPoolExecutor(max_workers=1) as pool:
                    cancels.append(pool.submit(harness.cancel, job).result(timeout=30))
            served.append(index)
            yield chunk

    chat_route.side_effect = lambda request: sse_response(stream())
    run = harness.generate(job).finish()

    assert [c.output["cancelled"] for c in cancels] == [True]
    call_llm = run.calls[0]
    assert call_llm.op_names == [(Op.STEP_RUN, "call-llm")]
    assert call_llm.ops[0]["data"] == {"outcome": "cancelled", "status": "cancelled"}
    assert run.output == {"job_id": job.id, "status": "cancelled"}
    cancelled = harness.job(job)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.partial_output == "Alpha beta"
    assert len(served) < len(chunks)


def test_cancel_after_the_llm_call_changes_nothing(make_app: MakeApp, store: JobStore) -> None:
    harness = make_app()
    job = create_generate_job(store, provider="mock")
    harness.generate(job).finish()
    completed = harness.job(job)

    cancel = harness.cancel(job)

    assert cancel.output == {"job_id": job.id, "cancelled": False, "status": "completed"}
    assert harness.job(job) == completed


# ---- authentication ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["unsigned", "other key", "tampered body", "malformed header"])
def test_requests_not_signed_with_our_key_are_rejected(make_app: MakeApp, store: JobStore, how: str) -> None:
    harness = make_app()
    job = create_generate_job(store, provider="mock")
    run = harness.generate(job)
    body = json.dumps(run.request_body(), separators=(",", ":")).encode()
    headers = harness.executor.headers(body)
    if how == "unsigned":
        del headers["X-Inngest-Signature"]
    elif how == "other key":
        headers = harness.executor.headers(body, signing_key="signkey-test-00000000000000ff")
    elif how == "tampered body":
        assert b'"attempt":0' in body
        body = body.replace(b'"attempt":0', b'"attempt":1')
    else:
        headers["X-Inngest-Signature"] = "t=not-a-time&s=00"

    response = harness.executor.client.post(
        "/api/inngest?fnId=agentic-llm-generate&stepId=step", data=body, headers=headers)

    assert response.status_code == 401
    assert response.get_json() == {"message": "Unauthorized"}
    assert harness.job(job) == job  # nothing ran: still pending, no attempt counted


def test_unsigned_failure_event_cannot_fail_a_job(make_app: MakeApp, store: JobStore) -> None:
    harness = make_app()
    job = create_generate_job(store, provider="mock")
    failed_event = make_event("inngest/function.failed", {
        "error": {"name": "Error", "message": "forged", "stack": ""},
        "event": make_event("llm/generate.request", {"job_id": job.id}),
        "function_id": "agentic-llm-generate", "run_id": "forged"})
    body = {"event": failed_event, "events": [failed_event], "steps": {}, "use_api": False,
            "ctx": {"run_id": "forged", "attempt": 0, "disable_immediate_execution": False,
                    "stack": {"stack": []}}}

    response = harness.executor.post("llm-generate-failure", body, sign=False)

    assert response.status_code == 401
    assert harness.job(job).status is JobStatus.PENDING
