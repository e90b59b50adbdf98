"""Provider faults at the job level: the production app's /api/inngest driven by the signed fake executor,
with the real OpenRouter repository (respx at its HTTP edge, or a real loopback socket for hangs).

Whatever the fault, the job ends terminal and correct, once: a transient fault is retried and the job
completes with the text of the attempt that succeeded (never the failed attempt's text twice); a permanent
one fails the job at once with its code, without a retry; a silent provider is bounded by the read timeout.

Covered elsewhere, not repeated here: 429 + Retry-After then success over HTTP
(tests/functions/test_functions_http.py::test_rate_limit_answers_retry_after_then_succeeds), 503 until
retries run out then the failure handler (…::test_exhausted_retries_reach_the_failure_handler), the error
mapping of each provider (tests/providers/).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from agentic.domain.jobs import JobStatus
from agentic.store.jobs import JobStore
from tests.functions.conftest import (
    MODEL,
    AppHarness,
    create_generate_job,
    error_response,
    sse_chunks,
    sse_response,
)
from tests.functions.executor import Op, RunStatus
from tests.reliability.support import FakeProvider, Reply

MakeApp = Callable[..., AppHarness]

FINAL = ("Hello", " world")
FINAL_TEXT = "".join(FINAL)


def _cut_mid_way(request: httpx.Request) -> httpx.Response:
    def chunks() -> Iterator[bytes]:
        yield from sse_chunks("Partial", " answ", finish=None, usage=None)
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    return sse_response(chunks())


def _error_event(request: httpx.Request) -> httpx.Response:
    # OpenRouter reports a failure after the 200 as a chunk with an error object and finish_reason "error".
    chunk = {"id": "gen-1", "model": MODEL, "error": {"code": "server_error", "message": "Provider disconnected"},
             "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
    return sse_response([*sse_chunks("Partial", finish=None, usage=None), f"data: {json.dumps(chunk)}\n\n".encode()])


def _truncated(request: httpx.Request) -> httpx.Response:
    return sse_response(sse_chunks("Partial", " answ", finish=None, usage=None))


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def side_effect(request: httpx.Request) -> httpx.Response:
        raise exc

    return side_effect


#: first attempt's fault -> (the code noted on the job while it retries, the text the failed attempt streamed)
TRANSIENT: dict[str, tuple[Callable[[httpx.Request], httpx.Response], str, str]] = {
    "500": (lambda _: error_response(500, "internal error"), "upstream_error", ""),
    "502": (lambda _: error_response(502, "bad gateway"), "upstream_error", ""),
    "503": (lambda _: error_response(503, "unavailable"), "upstream_error", ""),
    "529": (lambda _: error_response(529, "overloaded"), "overloaded", ""),
    "read timeout": (_raise(httpx.ReadTimeout("timed out")), "timeout", ""),
    "connect error": (_raise(httpx.ConnectError("connection refused")), "network_error", ""),
    "stream cut mid-way": (_cut_mid_way, "network_error", "Partial answ"),
    "error event in a 200 stream": (_error_event, "stream_error", "Partial"),
    "stream ends without a finish reason": (_truncated, "truncated", "Partial answ"),
}


@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_a_transient_fault_is_retried_and_the_job_completes_once(
        make_app: MakeApp, store: JobStore, chat_route: respx.Route, openrouter_settings: dict[str, Any],
        fault: str) -> None:
    first, noted_code, first_text = TRANSIENT[fault]
    answers: Iterator[Callable[[httpx.Request], httpx.Response]] = iter(
        [first, lambda _: sse_response(sse_chunks(*FINAL))])

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers)(request)

    chat_route.side_effect = answer
    harness = make_app(**openrouter_settings, progress_flush_seconds=0.0)
    job = create_generate_job(store)
    run = harness.generate(job)

    failed = run.advance()  # call-llm, first attempt (it started the job)

    assert failed.op_names == [(Op.STEP_ERROR, "call-llm")]
    retrying = harness.job(job)
    assert retrying.status is JobStatus.PROCESSING  # not failed, not completed: it will be retried
    assert retrying.error_code == noted_code
    assert retrying.partial_output == first_text
    assert retrying.response is None

    run.finish()

    assert run.status is RunStatus.COMPLETED and run.output == {"job_id": job.id, "status": "completed"}
    assert [c.op_names for c in run.calls[1:3]] == [[(Op.STEP_RUN, "call-llm")], []]  # the retry completes it
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["content"] == FINAL_TEXT
    assert done.partial_output == FINAL_TEXT  # the failed attempt's text is gone, not prepended
    assert (done.error_code, done.error_message) == (None, None)
    assert done.attempts == 2 and chat_route.call_count == 2
    assert done.finished_at is not None


def _in_stream_auth_error(request: httpx.Request) -> httpx.Response:
    chunk = {"error": {"code": 401, "message": "User not found."}}
    return sse_response([*sse_chunks("Par", finish=None, usage=None), f"data: {json.dumps(chunk)}\n\n".encode()])


PERMANENT: dict[str, tuple[Callable[[httpx.Request], httpx.Response], str]] = {
    "401": (lambda _: error_response(401, "No auth credentials found"), "authentication"),
    "402": (lambda _: error_response(402, "Insufficient credits"), "insufficient_credits"),
    "404": (lambda _: error_response(404, "No endpoints found for this model"), "model_not_found"),
    "401 inside a 200 stream": (_in_stream_auth_error, "authentication"),
}


@pytest.mark.parametrize("fault", list(PERMANENT))
def test_a_permanent_fault_fails_the_job_at_once_without_a_retry(
        make_app: MakeApp, store: JobStore, chat_route: respx.Route, openrouter_settings: dict[str, Any],
        fault: str) -> None:
    answer, code = PERMANENT[fault]
    chat_route.side_effect = answer
    harness = make_app(**openrouter_settings, progress_flush_seconds=0.0)
    job = create_generate_job(store)

    run = harness.generate(job).finish()

    assert [(c.status, c.op_names) for c in run.calls] == [(500, [])]
    assert run.calls[-1].headers.get("x-inngest-no-retry") == "true"
    assert run.status is RunStatus.FAILED
    assert chat_route.call_count == 1
    failed = harness.job(job)
    assert failed.status is JobStatus.FAILED and failed.error_code == code
    assert failed.error_message and failed.finished_at is not None and failed.attempts == 1

    handler = harness.executor.deliver_failure(run)  # Inngest still runs the failure handler

    assert handler.output == {"job_id": job.id, "failed": False, "status": "failed"}
    assert harness.job(job) == failed


# ---- a provider that never answers: a real socket, bounded by PROVIDER_READ_TIMEOUT ----------------------


@pytest.mark.timeout(60)
def test_a_provider_that_hangs_forever_is_bounded_by_the_read_timeout(make_app: MakeApp, store: JobStore) -> None:
    with FakeProvider([Reply(hang_after=0)]) as provider:
        harness = make_app(llm_provider="openrouter", openrouter_api_key="sk-or-v1-hang0123456789",
                           openrouter_base_url=provider.base_url, provider_read_timeout=0.3,
                           provider_connect_timeout=1.0)
        job = create_generate_job(store)
        started = time.monotonic()

        run = harness.generate(job).finish()
        elapsed = time.monotonic() - started

        assert run.status is RunStatus.FAILED
        assert [c.op_names for c in run.calls[0:4]] == [[(Op.STEP_ERROR, "call-llm")]] * 3 + [
            [(Op.STEP_FAILED, "call-llm")]]
        assert len(provider.calls) == 4  # one connection per attempt, each given up after the read timeout
        assert elapsed < 4 * 0.3 + 8  # bounded: four read timeouts plus overhead, not "forever"
        stuck = harness.job(job)
        assert stuck.status is JobStatus.PROCESSING and stuck.error_code == "timeout"

        harness.executor.deliver_failure(run)

        failed = harness.job(job)
        assert failed.status is JobStatus.FAILED and failed.error_code == "timeout"


@pytest.mark.timeout(60)
def test_a_provider_that_goes_silent_mid_stream_is_retried(make_app: MakeApp, store: JobStore) -> None:
    replies = [Reply(chunks=sse_chunks("Partial", " answ", " never", " ends"), hang_after=2),
               Reply(chunks=sse_chunks(*FINAL))]
    with FakeProvider(replies) as provider:
        harness = make_app(llm_provider="openrouter", openrouter_api_key="sk-or-v1-hang0123456789",
                           openrouter_base_url=provider.base_url, provider_read_timeout=0.3,
                           progress_flush_seconds=0.0)
        job = create_generate_job(store)

        run = harness.generate(job).finish()

        assert run.output == {"job_id": job.id, "status": "completed"}
        assert run.calls[0].op_names == [(Op.STEP_ERROR, "call-llm")]
        assert "did not answer in time" in run.calls[0].ops[0]["error"]["message"]
        done = harness.job(job)
        assert done.status is JobStatus.COMPLETED and done.partial_output == FINAL_TEXT
        assert done.response is not None and done.response["content"] == FINAL_TEXT
        assert len(provider.calls) == 2 and done.attempts == 2
