"""AgenticClient against the real app on a loopback port: answers, jobs, streams, retries, errors, pages."""

from __future__ import annotations

import socket
import threading
import time
import types
from collections.abc import Callable

import pytest

import agentic.client.sync as client_module
from agentic.client import (
    AgenticClient,
    AuthenticationError,
    Completed,
    ConnectionFailed,
    IdempotencyConflictError,
    InvalidRequestError,
    JobFinishedError,
    JobHandle,
    NotFoundError,
    Preview,
    ProviderError,
    RateLimitError,
    UnavailableError,
)
from agentic.domain.jobs import JobStatus
from agentic.inngest.events import EVENT_GENERATE
from agentic.web.state import STATE_KEY
from tests.client.conftest import QUICK, SLOW, mock_answer
from tests.client.faults import Faults, FaultyTransport
from tests.e2e.live import USER_ID, LiveStack


def connect(stack: LiveStack, faults: Faults | None = None, **options: object) -> AgenticClient:
    transport = FaultyTransport(faults) if faults is not None else None
    return AgenticClient(stack.url, stack.api_key, transport=transport, **options)  # type: ignore[arg-type]


def test_a_quick_model_answers_directly(stack: LiveStack) -> None:
    with connect(stack) as client:
        outcome = client.generate(QUICK, "Say hi", max_tokens=10)
    assert isinstance(outcome, Completed)
    assert outcome.content == mock_answer("Say hi", QUICK, 10)
    assert outcome.provider == "mock" and outcome.usage is not None and outcome.usage.total_tokens > 0
    assert stack.events == []  # nothing queued


def test_a_queued_job_streams_through_dropped_connections_to_the_exact_text(
        make_stack: Callable[..., LiveStack], database_url: str) -> None:
    stack = make_stack(database_url, mock_tokens_per_second=200.0)
    prompt = "Explain durable execution at length"
    faults = Faults(cut_streams=3, cut_after=350)
    with connect(stack, faults) as client:
        handle = client.generate(SLOW, prompt, max_tokens=300)
        assert isinstance(handle, JobHandle) and handle.status == "pending" and not handle.replayed
        text, types_seen, done = "", [], None
        for event in client.stream(handle.job_id):
            types_seen.append(event.type)
            text = event.apply(text)
            done = event.job
    assert faults.cuts == 3  # three connections broke mid-stream, each resumed with Last-Event-ID
    resumed = [r.headers.get("Last-Event-ID") for r in faults.sent("GET", "/events")]
    assert len(resumed) >= 4 and resumed[0] is None and all(resumed[1:])
    assert text == mock_answer(prompt, SLOW, 300)
    assert done is not None and done.status == "completed" and done.text == text
    assert types_seen[-1] == "done" and "delta" in types_seen


def test_a_stream_resumes_after_the_servers_time_limit(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True, mock_tokens_per_second=40.0, sse_max_seconds=0.4)
    prompt = "Keep going past the stream limit"
    faults = Faults()
    with connect(stack, faults) as client:
        handle = client.generate(SLOW, prompt, max_tokens=60)
        assert isinstance(handle, JobHandle)
        text = ""
        for event in client.stream(handle.job_id):
            stack.release()  # the job (1.5 s of tokens) starts once the first stream is open
            text = event.apply(text)
    assert len(faults.sent("GET", "/events")) >= 2  # the server ended streams; the client came back
    assert text == mock_answer(prompt, SLOW, 60)


def test_a_generate_retried_after_a_lost_answer_returns_the_same_job(make_stack: Callable[..., LiveStack],
                                                                     database_url: str) -> None:
    stack = make_stack(database_url, hold=True)
    faults = Faults(lose_first="POST /api/llm/generate")
    with connect(stack, faults) as client:
        handle = client.generate(SLOW, "Only once, please", max_tokens=20)
    assert isinstance(handle, JobHandle)
    assert faults.lost == 1
    first, retried = faults.sent("POST", "/api/llm/generate")
    assert first.headers["Idempotency-Key"] == retried.headers["Idempotency-Key"]
    assert handle.replayed  # the server recognised the retry
    page = stack.container.jobs.list_for_owner(USER_ID, status=None, limit=10, cursor=None)
    assert [job.id for job in page.items] == [handle.job_id]
    # (a replay may re-send the event; its id is the job id, so Inngest runs the job once)
    assert {e["id"] for e in stack.events if e["name"] == EVENT_GENERATE} == {handle.job_id}


def test_connection_failures_are_retried_then_reported(stack: LiveStack) -> None:
    faults = Faults(refuse_connects=2)
    with connect(stack, faults, max_retries=2) as client:
        assert isinstance(client.generate(QUICK, "after two refusals"), Completed)
    assert len(faults.requests) == 3


def test_an_unreachable_server_is_a_connection_failure() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with AgenticClient(f"http://127.0.0.1:{port}", "agk_x", max_retries=1, timeout=2.0) as nowhere, \
            pytest.raises(ConnectionFailed):
        nowhere.job("job_x")


def test_wait_returns_the_finished_job(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True)
    with connect(stack) as client:
        handle = client.generate(SLOW, "wait for me", max_tokens=30)
        assert isinstance(handle, JobHandle)
        threading.Timer(0.3, stack.release).start()
        job = client.wait(handle.job_id, timeout=60)
    assert job.status == "completed" and job.text == mock_answer("wait for me", SLOW, 30)
    assert job.usage is not None and job.finished_at is not None


def test_wait_gives_up_after_its_timeout(make_stack: Callable[..., LiveStack]) -> None:
    from agentic.client import WaitTimeout

    stack = make_stack(hold=True)
    with connect(stack) as client:
        handle = client.generate(SLOW, "never released", max_tokens=5)
        assert isinstance(handle, JobHandle)
        with pytest.raises(WaitTimeout):
            client.wait(handle.job_id, timeout=0.5)
        assert client.job(handle.job_id).status == "pending"


def test_wait_polls_when_streaming_is_refused(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True, sse_max_streams_per_key=1)
    faults = Faults()
    with connect(stack, faults, max_retries=0) as client:
        handle = client.generate(SLOW, "poll me", max_tokens=20)
        assert isinstance(handle, JobHandle)
        holder = client.stream(handle.job_id)
        assert next(holder).type == "status"  # this key's one stream is taken
        threading.Timer(0.5, stack.release).start()
        job = client.wait(handle.job_id, timeout=60)
        holder.close()
    assert job.status == "completed" and job.text == mock_answer("poll me", SLOW, 20)
    assert len(faults.sent("GET", f"/api/jobs/{handle.job_id}")) >= 1  # it polled the job


def test_429_waits_for_retry_after(make_stack: Callable[..., LiveStack], monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack(hold=True, sse_max_streams_per_key=1, sse_heartbeat_seconds=0.1)
    limiter = stack.app.extensions[STATE_KEY].limiter
    key = stack.container.keys.authenticate(stack.api_key)
    assert key is not None
    slept: list[float] = []

    with connect(stack, max_retries=2) as client:
        handle = client.generate(SLOW, "one stream at a time", max_tokens=20)
        assert isinstance(handle, JobHandle)
        holder = client.stream(handle.job_id)
        next(holder)

        def sleep(seconds: float) -> None:  # the first retry frees the slot, so the next attempt gets in
            slept.append(seconds)
            holder.close()
            deadline = time.monotonic() + 10
            while limiter.open_streams(key.id) and time.monotonic() < deadline:
                time.sleep(0.02)  # the server notices the closed stream at its next heartbeat

        monkeypatch.setattr(client_module, "time", types.SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
        second = client.stream(handle.job_id)
        assert next(second).type == "status"
        second.close()
    assert slept == [1.0]  # the server's Retry-After for too_many_streams


def test_each_error_family(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True, sse_max_streams_per_key=1)
    with connect(stack, max_retries=0) as client:
        with pytest.raises(NotFoundError) as missing:
            client.job("job_does_not_exist")
        assert (missing.value.status, missing.value.code) == (404, "job_not_found")

        with pytest.raises(InvalidRequestError) as invalid:
            client.generate("not a model id!", "hello")
        assert (invalid.value.status, invalid.value.code, invalid.value.field) == (422, "validation_error", "model")

        with pytest.raises(ProviderError) as upstream:
            client.generate(QUICK, "[mock:fail] please")
        assert (upstream.value.status, upstream.value.code) == (502, "bad_request")

        handle = client.generate(SLOW, "to be cancelled", max_tokens=5, idempotency_key="fixed-key-1")
        assert isinstance(handle, JobHandle)
        with pytest.raises(IdempotencyConflictError) as conflict:
            client.generate(SLOW, "a different body", idempotency_key="fixed-key-1")
        assert (conflict.value.status, conflict.value.field) == (409, "Idempotency-Key")

        with pytest.raises(RateLimitError) as limited:
            holder = client.stream(handle.job_id)
            next(holder)
            next(client.stream(handle.job_id))
        assert (limited.value.code, limited.value.retry_after) == ("too_many_streams", 1.0)
        holder.close()

        assert client.cancel(handle.job_id).status == "cancelled"  # pending: cancelled at once
        with pytest.raises(JobFinishedError) as finished:
            client.cancel(handle.job_id)
        assert finished.value.problem["job_status"] == "cancelled"

    with AgenticClient(stack.url, "agk_" + "x" * 40, max_retries=0) as stranger:
        with pytest.raises(AuthenticationError) as denied:
            stranger.job(handle.job_id)
        assert denied.value.status == 401 and denied.value.code == "invalid_token"


def test_unavailable_is_its_own_family(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(llm_provider="openrouter", openrouter_api_key=None)
    with connect(stack, max_retries=0) as client, pytest.raises(UnavailableError) as unavailable:
        client.generate(QUICK, "no provider key")
    assert (unavailable.value.status, unavailable.value.code) == (503, "provider_not_configured")
    assert "OPENROUTER_API_KEY" in unavailable.value.detail


def test_jobs_iterates_every_page(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True)
    faults = Faults()
    with connect(stack, faults) as client:
        made = [client.generate(SLOW, f"job {i}", max_tokens=5) for i in range(5)]
        ids = [h.job_id for h in made if isinstance(h, JobHandle)]
        client.cancel(ids[0])
        listed = list(client.jobs(limit=2))
        cancelled = list(client.jobs(status="cancelled", limit=2))
    assert [job.id for job in listed] == list(reversed(ids))  # newest first, across three pages
    assert len(faults.sent("GET", "/api/jobs")) == 3 + 1
    assert [job.id for job in cancelled] == [ids[0]]


def test_preview_answers_short_content_at_once(stack: LiveStack) -> None:
    with connect(stack) as client:
        answer = client.preview("Notes", "Short enough.")
    assert isinstance(answer, Preview) and answer.preview == "Short enough." and not answer.used_ai


def test_the_job_view_carries_its_token_when_enabled(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True, job_token_secret="k" * 40)
    with connect(stack) as client:
        handle = client.generate(SLOW, "tokens", max_tokens=5)
        assert isinstance(handle, JobHandle) and handle.token is not None
        assert client.job(handle.job_id).token is not None
    job = stack.container.jobs.get(handle.job_id)
    assert job is not None and job.status is JobStatus.PENDING
