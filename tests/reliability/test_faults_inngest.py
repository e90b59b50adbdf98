"""Inngest faults: an event API that hangs, fails or is slow while a job is queued, and the late delivery of
an event whose send the API had already given up on.

The app is the production one (signed /api/inngest, an event key) with the queue on, sending to a loopback
stand-in for the event API (tests/reliability/support.EventRecorder). A request answers within
EVENT_SEND_TIMEOUT plus a small margin: 202 with exactly one event, or 503 queue_unavailable with the job
failed (never an orphan pending job). An event that reaches Inngest after that 503 starts a run that does
nothing to the failed job. A stall of the event API costs only the requests made during it, and a replayed
request whose redundant re-send fails leaves the job its first request queued alone.

Covered elsewhere, not repeated: an unreachable event API answers 503 and releases the Idempotency-Key
(tests/web/test_api_generate.py::test_an_unreachable_event_api_is_503_and_the_job_is_failed); the same event
delivered twice, sequentially or interleaved, calls the provider once (tests/functions/test_functions_http.py
::test_same_event_delivered_twice_processes_the_job_once, ::test_duplicate_runs_interleaved_call_the_provider_once);
a cancel before, during and after the LLM call (…::test_cancel_before_the_llm_call,
::test_cancel_during_the_llm_call_stops_the_stream, ::test_cancel_after_the_llm_call_changes_nothing,
tests/functions/test_runner_cancel_race.py); the failure handler for a completed job
(…::test_failure_handler_leaves_a_completed_job_alone); a cancel while the event API is down
(tests/service/test_service.py::test_cancel_still_works_when_the_event_api_is_down).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask.testing import FlaskClient

from agentic.domain.jobs import JobStatus
from agentic.inngest.events import EVENT_GENERATE
from agentic.store.jobs import JobStore
from agentic.web.app import container_of
from tests.functions.conftest import AppHarness
from tests.reliability.support import EventRecorder, body_of, wait_until

MakeApp = Callable[..., AppHarness]

SEND_TIMEOUT = 0.5
MARGIN = 2.0  # generous for a loaded CI machine, and still far below what the SDK alone would wait (~3.4 s to 150 s)
SLOW = {"model": "mock-slow-1", "messages": [{"role": "user", "content": "queue me"}]}


@pytest.fixture
def queued(make_app: MakeApp, recorder: EventRecorder) -> Iterator[tuple[AppHarness, FlaskClient, dict[str, str]]]:
    harness = make_app(use_queue=True, inngest_event_key="evt-key-faults", inngest_event_api_base_url=recorder.url,
                       inngest_base_url=recorder.url, event_send_timeout=SEND_TIMEOUT)
    secret = container_of(harness.app).keys.create("alice").secret
    yield harness, harness.app.test_client(), {"Authorization": f"Bearer {secret}"}
    recorder.release()  # hung sends answer now, so no thread of the shared send pool outlives the test


def _post(client: FlaskClient, headers: dict[str, str], **extra: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.post("/api/llm/generate", json=SLOW, headers={**headers, **extra})
    return response, time.monotonic() - started


def _pending(store: JobStore) -> list[str]:
    return [job.id for job in store.list_for_owner("alice", status=JobStatus.PENDING, limit=100).items]


@pytest.mark.parametrize("mode", ["hang", "error", "delay"])
def test_event_api_trouble_is_503_within_the_send_timeout_and_no_job_stays_pending(
        queued: tuple[AppHarness, FlaskClient, dict[str, str]], recorder: EventRecorder, store: JobStore,
        mode: str) -> None:
    harness, client, headers = queued
    recorder.set_mode(mode, delay=SEND_TIMEOUT + MARGIN + 2)  # an answer that comes, but too late

    response, elapsed = _post(client, headers, **{"Idempotency-Key": f"try-{mode}"})

    assert response.status_code == 503
    assert elapsed < SEND_TIMEOUT + MARGIN
    assert response.mimetype == "application/problem+json"
    assert body_of(response)["code"] == "queue_unavailable" and response.headers.get("Retry-After")
    assert "evt-key-faults" not in response.get_data(as_text=True)
    job = harness.job(body_of(response)["job_id"])
    assert job.status is JobStatus.FAILED and job.error_code == "queue_unavailable"
    assert _pending(store) == []


@pytest.mark.parametrize("mode", ["hang", "delay"])
def test_an_event_that_lands_after_the_503_starts_a_run_that_changes_nothing(
        queued: tuple[AppHarness, FlaskClient, dict[str, str]], recorder: EventRecorder, mode: str) -> None:
    harness, client, headers = queued
    recorder.set_mode(mode, delay=SEND_TIMEOUT + 0.5)
    response, _ = _post(client, headers)
    assert response.status_code == 503
    failed = harness.job(body_of(response)["job_id"])

    recorder.release()  # the event API finally takes the event the app gave up on
    wait_until(lambda: recorder.named(EVENT_GENERATE), timeout=10, what="the late event")
    [late] = recorder.named(EVENT_GENERATE)
    assert late.id == failed.id and late.data == {"job_id": failed.id, "user_id": "alice"}

    run = harness.executor.drive("llm-generate", late.raw, retries=3)

    assert run.output == {"job_id": failed.id, "status": "failed", "skipped": "job is already failed"}
    assert harness.job(failed) == failed  # still failed, never started, no attempt counted


def test_a_slow_event_api_within_the_timeout_queues_normally(
        make_app: MakeApp, recorder: EventRecorder, store: JobStore) -> None:
    harness = make_app(use_queue=True, inngest_event_key="evt-key-slow", inngest_event_api_base_url=recorder.url,
                       event_send_timeout=3.0)
    secret = container_of(harness.app).keys.create("alice").secret
    recorder.set_mode("delay", delay=0.4)

    response, elapsed = _post(harness.app.test_client(), {"Authorization": f"Bearer {secret}"})

    assert response.status_code == 202 and 0.4 <= elapsed < 3.0 + MARGIN
    job_id = body_of(response)["job_id"]
    assert _pending(store) == [job_id]
    assert [(e.id, e.data) for e in recorder.named(EVENT_GENERATE)] == [(job_id, {"job_id": job_id,
                                                                                 "user_id": "alice"})]
    assert recorder.named(EVENT_GENERATE)[0].path == "/e/evt-key-slow"


def test_a_stalled_event_api_does_not_starve_the_sends_after_it_recovers(
        queued: tuple[AppHarness, FlaskClient, dict[str, str]], recorder: EventRecorder, store: JobStore) -> None:
    """A stall of a few seconds must cost the requests made during it, not the ones after it.

    The sends run on a shared pool of 16 threads, and the SDK waits up to 30 s per attempt (5 attempts), so
    16 requests during a stall leave every thread blocked long after the request answered 503.
    """
    _, client, headers = queued
    recorder.set_mode("hang")
    with ThreadPoolExecutor(max_workers=16) as pool:
        stalled = list(pool.map(lambda _: _post(client, headers)[0].status_code, range(16)))
    assert stalled == [503] * 16

    recorder.set_mode("ok")  # the event API is healthy again (the stalled connections still hang)
    response, elapsed = _post(client, headers)

    assert response.status_code == 202, (
        f"{response.status_code} {body_of(response).get('code')}: a healthy event API is refused because earlier "
        "sends still hold every thread of the send pool")
    assert elapsed < SEND_TIMEOUT + MARGIN
    assert [e.id for e in recorder.named(EVENT_GENERATE)] == [body_of(response)["job_id"]]
    assert _pending(store) == [body_of(response)["job_id"]]


def test_a_replay_whose_resend_fails_does_not_fail_the_job_already_queued(
        queued: tuple[AppHarness, FlaskClient, dict[str, str]], recorder: EventRecorder) -> None:
    """A retry with the same Idempotency-Key re-sends the pending job's event (deduplicated by id). If that
    redundant send fails, the job must stay as the first request left it: queued, its event with Inngest.
    Failing it (as for a job that was never queued) fails a job Inngest is about to run, after a 202."""
    harness, client, headers = queued
    first, _ = _post(client, headers, **{"Idempotency-Key": "same-request"})
    assert first.status_code == 202
    job_id = body_of(first)["job_id"]
    [event] = recorder.named(EVENT_GENERATE)
    recorder.set_mode("hang")  # the event API stalls just as the client retries

    replay, elapsed = _post(client, headers, **{"Idempotency-Key": "same-request"})

    assert replay.status_code in (202, 503) and elapsed < SEND_TIMEOUT + MARGIN
    assert body_of(replay)["job_id"] == job_id
    job = harness.job(job_id)
    assert job.status is JobStatus.PENDING, f"the queued job was {job.status.value} ({job.error_code})"
    recorder.release()
    run = harness.executor.drive("llm-generate", event.raw, retries=3)  # Inngest runs the first event
    assert run.output == {"job_id": job_id, "status": "completed"}
