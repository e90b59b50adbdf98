"""Generations longer than one step, over /api/inngest in production mode (the fake executor, signed requests).

Continued answers: OpenRouter (its HTTP edge mocked by respx) streams a long answer word by word, slower than
the step time budget allows, and continues an assistant prefill the way models that honour one do. Offloaded
answers: the fake executor makes the ``step.ai.infer`` call the way the Inngest server does, against respx
routes (or, for the mock provider, the app's own completion route).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from agentic.domain.jobs import Job, JobKind, JobStatus
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.mock import MockLLMRepository
from agentic.store.jobs import JobStore
from agentic.web.app import container_of
from tests.functions.conftest import (
    OPENROUTER_KEY,
    SIGNING_KEY,
    AppHarness,
    error_response,
    sse_chunks,
)
from tests.functions.executor import FakeExecutor, Op, Run, RunStatus, make_event

MakeApp = Callable[..., AppHarness]

WORDS = [f"w{i:02d}" for i in range(40)]
TOKENS = [("" if i == 0 else " ") + word for i, word in enumerate(WORDS)]
FULL = "".join(TOKENS)
PER_WORD = 0.08  # 40 words: 3.2 s, over three segments of a 1 s budget
BUDGET = 1.0
#: How far past the budget a request may end: the deadline is checked between chunks, then the text is saved.
MARGIN = 3.0
STREAM_MODEL = "test/long-writer"
OFFLOAD_MODEL = "test/deep-thinker-offload"


class LongWriter:
    """An OpenRouter stand-in that writes FULL slowly and continues an assistant prefill exactly.

    ``cut`` maps a request number to the count of words after which that stream breaks (a reset connection);
    ``during`` runs a callback after that many words of a request (say, a cancel).
    """

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.cut: dict[int, int] = {}
        self.during: dict[int, tuple[int, Callable[[], None]]] = {}

    def prefill(self, number: int) -> str:
        last = self.bodies[number]["messages"][-1]
        return str(last["content"]) if last["role"] == "assistant" else ""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        number = len(self.bodies)
        self.bodies.append(json.loads(request.content))
        prefill = self.prefill(number)
        assert FULL.startswith(prefill), "a continuation must carry the exact text so far"
        done = len(prefill.split())
        tokens = TOKENS[done:]
        cut, during = self.cut.get(number), self.during.get(number)

        def stream() -> Iterator[bytes]:
            for index, token in enumerate(tokens):
                if cut is not None and index == cut:
                    raise httpx.ReadError("connection reset by peer")
                if during is not None and index == during[0]:
                    during[1]()
                time.sleep(PER_WORD)
                yield from sse_chunks(token, finish=None, usage=None, model=STREAM_MODEL)
            yield from sse_chunks(finish="stop", usage=(10 + len(prefill) // 4, len(tokens)), model=STREAM_MODEL)

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream())


@pytest.fixture
def writer(chat_route: respx.Route) -> LongWriter:
    stand_in = LongWriter()
    chat_route.mock(side_effect=stand_in)
    return stand_in


@pytest.fixture
def long_app(make_app: MakeApp, openrouter_settings: dict[str, Any]) -> Callable[..., AppHarness]:
    def make(**overrides: Any) -> AppHarness:
        return make_app(**{**openrouter_settings, "step_time_budget_seconds": BUDGET, **overrides})

    return make


def long_job(store: JobStore, model: str = STREAM_MODEL, provider: str = "openrouter") -> Job:
    request = {"messages": [{"role": "user", "content": "Write it all out"}], "model": model}
    job, _ = store.create(kind=JobKind.GENERATE, user_id="user-1", request=request, model=model, provider=provider)
    return job


def timed_finish(run: Run, max_requests: int = 40) -> list[float]:
    """Drive the run to its end; how long each request to /api/inngest took."""
    durations = []
    for _ in range(max_requests):
        if run.status is not RunStatus.RUNNING:
            return durations
        started = time.monotonic()
        run.advance()
        durations.append(time.monotonic() - started)
    raise AssertionError("the run did not end")


def call_steps(run: Run) -> list[Any]:
    return [call for call in run.calls if any(name == "call-llm" for _, name in call.op_names)]


# ---- continued answers ----------------------------------------------------------------------------------


def test_a_stream_longer_than_the_budget_completes_over_several_segments(
    long_app: Callable[..., AppHarness], store: JobStore, writer: LongWriter,
) -> None:
    harness = long_app()
    job = long_job(store)
    durations = timed_finish(harness.generate(job))

    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["content"] == FULL  # every word once, in order
    assert done.response["finish_reason"] == "stop" and done.partial_output == FULL
    segments = len(writer.bodies)
    assert segments >= 3
    assert max(durations) < BUDGET + MARGIN  # no request ran the whole generation (3.2 s)
    # Each continuation carries the text so far as the last, assistant message; the first carries none.
    assert writer.prefill(0) == ""
    for number in range(1, segments):
        assert writer.bodies[number]["messages"][-1]["role"] == "assistant"
        assert len(writer.prefill(number)) > len(writer.prefill(number - 1))
    assert done.total_tokens is not None and done.completion_tokens is not None and done.completion_tokens > 0


def test_each_segment_is_its_own_step_with_the_committed_text_on_the_row(
    long_app: Callable[..., AppHarness], store: JobStore, writer: LongWriter,
) -> None:
    harness = long_app()
    job = long_job(store)
    run = harness.generate(job)
    first = run.advance()  # the first request starts the job and streams the first segment
    assert first.op_names == [(Op.STEP_RUN, "call-llm")]
    paused = first.ops[0]["data"]
    assert paused["outcome"] == "paused" and len(json.dumps(paused)) < 300  # the text lives in the row
    committed = harness.job(job).partial_output
    assert paused["so_far"]["offset"] == len(committed) > 0 and FULL.startswith(committed)
    second = run.advance()
    assert second.op_names == [(Op.STEP_RUN, "call-llm")]  # the same id again: the SDK numbers it call-llm:1
    assert writer.prefill(1) == committed
    assert harness.job(job).partial_output.startswith(committed)
    run.finish()
    assert harness.job(job).status is JobStatus.COMPLETED


def test_a_segment_cut_mid_stream_restarts_from_the_committed_text(
    long_app: Callable[..., AppHarness], store: JobStore, writer: LongWriter,
) -> None:
    writer.cut[1] = 3  # the first continuation breaks after three words; its retry works
    harness = long_app()
    job = long_job(store)
    timed_finish(harness.generate(job))

    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["content"] == FULL
    # The retry asked for the same continuation: never for text already saved, never from zero.
    assert writer.prefill(2) == writer.prefill(1) != ""
    assert done.attempts == 2


def test_cancel_between_segments_keeps_the_committed_text(
    long_app: Callable[..., AppHarness], store: JobStore, writer: LongWriter,
) -> None:
    harness = long_app()
    job = long_job(store)
    run = harness.generate(job)
    run.advance()  # the job started, the first segment paused
    committed = harness.job(job).partial_output
    harness.cancel(job)  # llm-cancel between two steps
    run.finish()

    final = harness.job(job)
    assert final.status is JobStatus.CANCELLED and final.partial_output == committed != ""
    assert len(writer.bodies) == 1  # the provider is not asked again
    assert run.output == {"job_id": job.id, "status": "cancelled"}


def test_cancel_during_a_continuation_keeps_everything_streamed(
    long_app: Callable[..., AppHarness], store: JobStore, writer: LongWriter,
) -> None:
    harness = long_app(progress_flush_seconds=0.05)
    job = long_job(store)
    writer.during[1] = (2, lambda: store.request_cancel(job.id))  # what POST /api/jobs/<id>/cancel records
    timed_finish(harness.generate(job))

    final = harness.job(job)
    assert final.status is JobStatus.CANCELLED
    assert final.response is not None and final.response["finish_reason"] == "cancelled"
    text = final.response["content"]
    assert text == final.partial_output and FULL.startswith(text) and len(text) > len(writer.prefill(1))
    assert len(writer.bodies) == 2


def test_max_continuations_fails_the_job_keeping_the_text(
    long_app: Callable[..., AppHarness], store: JobStore, writer: LongWriter,
) -> None:
    harness = long_app(max_continuations=1)
    job = long_job(store)
    run = harness.generate(job)
    timed_finish(run)

    final = harness.job(job)
    assert final.status is JobStatus.FAILED and final.error_code == "max_continuations"
    assert "MAX_CONTINUATIONS=1" in (final.error_message or "")
    assert final.partial_output and FULL.startswith(final.partial_output) and final.partial_output != FULL
    assert len(writer.bodies) == 2 and run.output == {"job_id": job.id, "status": "failed"}


# ---- offloaded answers ----------------------------------------------------------------------------------

COMPLETION = {"id": "gen-off-1", "model": OFFLOAD_MODEL, "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "A considered answer."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25}}


@pytest.fixture
def offload_app(long_app: Callable[..., AppHarness]) -> Callable[..., AppHarness]:
    def make(**overrides: Any) -> AppHarness:
        return long_app(offload_models="*-offload", **overrides)

    return make


def gateway_steps(run: Run) -> list[Any]:
    return [name for call in run.calls for op, name in call.op_names if op == Op.AI_GATEWAY]


def test_an_offloaded_job_completes_with_content_and_usage(
    offload_app: Callable[..., AppHarness], store: JobStore, chat_route: respx.Route,
) -> None:
    chat_route.respond(200, json=COMPLETION)
    harness = offload_app()
    job = long_job(store, OFFLOAD_MODEL)
    run = harness.generate(job).finish()

    done = harness.job(job)
    assert run.status is RunStatus.COMPLETED and run.output == {"job_id": job.id, "status": "completed"}
    assert done.status is JobStatus.COMPLETED and done.response is not None
    assert done.response["content"] == "A considered answer." and done.response["finish_reason"] == "stop"
    assert (done.prompt_tokens, done.completion_tokens, done.total_tokens) == (21, 4, 25)
    assert done.partial_output == ""  # no live text while the server made the call
    assert gateway_steps(run) == ["call-llm"]
    sent = chat_route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {OPENROUTER_KEY}"
    body = json.loads(sent.content)
    assert body["model"] == OFFLOAD_MODEL and not body.get("stream")
    assert body["messages"] == [{"role": "user", "content": "Write it all out"}]
    # The key went to the (fake) Inngest server inside the op, never into a memoised step output.
    assert OPENROUTER_KEY not in json.dumps(run.steps)


def test_an_offloaded_401_fails_the_job_as_authentication(
    offload_app: Callable[..., AppHarness], store: JobStore, chat_route: respx.Route,
) -> None:
    chat_route.mock(return_value=error_response(401, "No auth credentials found"))
    harness = offload_app()
    job = long_job(store, OFFLOAD_MODEL)
    run = harness.generate(job).finish()

    final = harness.job(job)
    assert final.status is JobStatus.FAILED and final.error_code == "authentication"
    assert "No auth credentials found" in (final.error_message or "")
    assert OPENROUTER_KEY not in (final.error_message or "")
    assert run.output == {"job_id": job.id, "status": "failed"}
    assert chat_route.call_count == 4  # the server retried it like a failed step (retries 3)


def test_an_offloaded_429_then_success_completes(
    offload_app: Callable[..., AppHarness], store: JobStore, chat_route: respx.Route,
) -> None:
    chat_route.mock(side_effect=[error_response(429, "slow down"), httpx.Response(200, json=COMPLETION)])
    harness = offload_app()
    job = long_job(store, OFFLOAD_MODEL)
    harness.generate(job).finish()

    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.response is not None
    assert done.response["content"] == "A considered answer." and chat_route.call_count == 2


def test_a_cancel_while_the_offloaded_call_is_in_flight_ends_the_job_cancelled(
    offload_app: Callable[..., AppHarness], store: JobStore, chat_route: respx.Route,
) -> None:
    harness = offload_app()
    job = long_job(store, OFFLOAD_MODEL)

    def answer_after_a_cancel(request: httpx.Request) -> httpx.Response:
        harness.cancel(job)  # llm-cancel runs while the server waits for the model
        assert harness.job(job).status is JobStatus.CANCELLED  # at once
        return httpx.Response(200, json=COMPLETION)

    chat_route.mock(side_effect=answer_after_a_cancel)
    run = harness.generate(job).finish()

    final = harness.job(job)
    assert final.status is JobStatus.CANCELLED and final.response is None
    assert run.output == {"job_id": job.id, "status": "cancelled"}


def test_the_mock_provider_offloads_to_the_apps_own_completion_route(
    make_app: MakeApp, store: JobStore,
) -> None:
    harness = make_app(llm_provider="mock", offload_models="mock-offload*")
    model = "mock-offload-1"
    job = long_job(store, model, provider="mock")
    executor = FakeExecutor(harness.app.test_client(), SIGNING_KEY,
                            gateway_transport=httpx.WSGITransport(app=harness.app))
    run = executor.start("llm-generate", make_event("llm/generate.request",
                                                    {"job_id": job.id, "user_id": job.user_id}), retries=3)
    run.finish()

    done = harness.job(job)
    expected = MockLLMRepository().generate(
        LLMRequest(messages=[Message(role="user", content="Write it all out")], model=model))
    assert done.status is JobStatus.COMPLETED and done.response is not None
    assert done.response["content"] == expected.content
    assert gateway_steps(run) == ["call-llm"]


def test_a_preview_of_an_offload_model_still_streams(make_app: MakeApp, store: JobStore) -> None:
    """Previews stay on continued streaming: only kinds that allow it are offloaded."""
    harness = make_app(llm_provider="mock", offload_models="*", preview_model="mock-offload-preview")
    job, _ = store.create(kind=JobKind.PREVIEW, user_id="user-1", model="mock-offload-preview", provider="mock",
                          request={"title": "Notes", "content": "word " * 100})
    run = harness.preview(job).finish()
    assert harness.job(job).status is JobStatus.COMPLETED and gateway_steps(run) == []


def test_an_offloaded_job_says_it_has_no_live_text(
    offload_app: Callable[..., AppHarness], store: JobStore, chat_route: respx.Route,
) -> None:
    chat_route.respond(200, json=COMPLETION)
    harness = offload_app()
    keys = container_of(harness.app).keys
    secret = keys.create("user-1").secret
    offloaded, streamed = long_job(store, OFFLOAD_MODEL), long_job(store, STREAM_MODEL)
    client = harness.app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/api/jobs/{offloaded.id}", headers=headers).json["live_text"] is False
    assert client.get(f"/api/jobs/{streamed.id}", headers=headers).json["live_text"] is True
    harness.generate(offloaded).finish()

    stream = client.get(f"/api/jobs/{offloaded.id}/events", headers=headers).get_data(as_text=True)
    events = [block for block in stream.split("\n\n") if "event:" in block]
    names = [line.removeprefix("event: ") for block in events for line in block.splitlines()
             if line.startswith("event: ")]
    assert "delta" not in names and names[-1] == "done"  # status events, then done
    status = next(block for block in events if "event: status" in block)
    assert '"live_text": false' in status
    assert '"content":"A considered answer."' in events[-1] and '"live_text":false' in events[-1]
