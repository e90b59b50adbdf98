"""Property tests (hypothesis) for what hostile or broken input can do to the parsing and the job lifecycle.

Already covered, not repeated: any chunking of a well-formed event stream decodes to the same events
(tests/providers/test_sse_decoder.py::test_any_chunking_yields_the_same_events); any sequence of store
transitions keeps a job inside its state machine (tests/store/test_job_state_machine.py).

Added here:
- the SSE decoder fed arbitrary bytes, cut anywhere, never raises;
- garbage lines (comments, unknown fields, invalid UTF-8) between well-formed events lose or invent nothing;
- the OpenRouter repository given any 200 body raises nothing but LLMError, and a well-formed stream
  interleaved with keep-alives, cut anywhere, yields exactly its deltas;
- the job runner (the steps' use cases) under any interleaving of steps, retries, duplicate deliveries,
  provider outcomes, cancels and failure handlers: terminal states never change, a completed job's text is
  its response's, and the provider is never called for a job that is finished or asked to stop.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import inngest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import Engine

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.jobs import JobKind, JobStatus
from agentic.domain.llm import LLMRequest, LLMResponse, Message, Usage
from agentic.eventstream import SSEDecoder, SSEEvent
from agentic.functions.jobs import provider_call
from agentic.metrics import Metrics
from agentic.providers.base import CancelCheck, DeltaCallback
from agentic.providers.openrouter import OpenRouterRepository
from agentic.runner import JobRunner, SoFar
from agentic.service.kinds import GENERATE
from agentic.store.jobs import JobStore

BASE = "https://openrouter.test/api/v1"
REQUEST = LLMRequest(model="openai/gpt-4o-mini", messages=[Message(role="user", content="hi")])


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]


def _decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


# ---- the decoder ------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=10_000), max_size=10))
def test_the_decoder_never_raises_on_arbitrary_bytes(raw: bytes, cuts: list[int]) -> None:
    events = _decode(_split(raw, cuts))
    assert all(isinstance(e.data, str) and isinstance(e.event, str) and e.event for e in events)
    assert events == _decode([raw])  # and the cut points do not matter, even for garbage


_plain = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=15)
_garbage_line = st.one_of(
    _plain.map(lambda t: (":" + t).encode()),  # a comment
    st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda n: n not in ("data", "event", "id",
                                                                                      "retry")), _plain)
    .map(lambda p: f"{p[0]}: {p[1]}".encode()),  # an unknown field
    st.binary(max_size=12).filter(lambda b: not (set(b) & {10, 13}))
    .map(lambda b: b": " + b),  # a comment of invalid UTF-8
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(_plain, min_size=1, max_size=3), st.lists(_garbage_line, max_size=3)),
                max_size=6),
       st.lists(st.integers(min_value=0, max_value=10_000), max_size=10))
def test_garbage_lines_between_events_lose_or_invent_nothing(
        spec: list[tuple[list[str], list[bytes]]], cuts: list[int]) -> None:
    raw = b""
    expected: list[SSEEvent] = []
    for lines, garbage in spec:
        raw += b"".join(line + b"\n" for line in garbage)  # noise before the event's own lines
        raw += "".join(f"data: {line}\n" for line in lines).encode() + b"\n"
        expected.append(SSEEvent("\n".join(lines)))
        raw += b"".join(line + b"\n" for line in garbage) + (b"\n" if garbage else b"")  # noise as its own block
    assert _decode(_split(raw, cuts)) == expected


# ---- the OpenRouter repository ----------------------------------------------------------------------------


def _repository() -> OpenRouterRepository:
    return OpenRouterRepository("sk-or-v1-prop0123456789", base_url=BASE, referer=None, title="props",
                                connect_timeout=1, read_timeout=1)


def _generate(body_chunks: list[bytes], content_type: str = "text/event-stream",
              deltas: list[str] | None = None) -> LLMResponse:
    repository = _repository()
    try:
        with respx.mock(assert_all_called=False) as router:
            router.post(f"{BASE}/chat/completions").mock(return_value=httpx.Response(
                200, headers={"content-type": content_type}, content=iter(body_chunks)))
            return repository.generate(REQUEST, on_delta=None if deltas is None else deltas.append)
    finally:
        repository.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400),
                 st.lists(st.one_of(st.binary(max_size=40), st.just(b"data: [DONE]\n\n"), st.just(b"\n\n"),
                                    st.builds(lambda v: f"data: {json.dumps(v)}\n\n".encode(),
                                              st.recursive(st.none() | st.booleans() | st.integers() | _plain,
                                                           lambda inner: st.lists(inner, max_size=3)
                                                           | st.dictionaries(st.sampled_from(
                                                               ["choices", "error", "delta", "content", "usage",
                                                                "finish_reason", "code", "message", "id"]),
                                                               inner, max_size=3), max_leaves=8))),
                          max_size=8).map(b"".join)),
       st.sampled_from(["text/event-stream", "application/json"]))
def test_any_200_body_gives_a_response_or_an_llm_error_never_a_crash(raw: bytes, content_type: str) -> None:
    try:
        response = _generate([raw], content_type)
    except LLMError as exc:
        assert exc.code in set(ErrorCode)
    else:
        assert isinstance(response.content, str) and response.finish_reason in (
            "stop", "length", "content_filter", "tool_calls")


@settings(max_examples=100, deadline=None)
@given(st.lists(_plain.filter(bool), min_size=1, max_size=6), st.lists(st.booleans(), max_size=8),
       st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_a_well_formed_stream_with_keep_alives_yields_exactly_its_deltas(
        deltas: list[str], keep_alives: list[bool], cuts: list[int]) -> None:
    parts: list[bytes] = []
    for index, delta in enumerate(deltas):
        if index < len(keep_alives) and keep_alives[index]:
            parts.append(b": OPENROUTER PROCESSING\n\n")
        parts.append(f"data: {json.dumps({'id': 'g', 'choices': [{'delta': {'content': delta}}]})}\n\n".encode())
    parts.append(f"data: {json.dumps({'id': 'g', 'choices': [{'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
                 "data: [DONE]\n\n".encode())
    seen: list[str] = []

    response = _generate(_split(b"".join(parts), cuts), deltas=seen)

    assert seen == deltas and response.content == "".join(deltas) and response.finish_reason == "stop"


# ---- the job runner, under any interleaving ---------------------------------------------------------------


class ScriptedProvider:
    """A provider whose next outcome the state machine picks; it records the job's state at every call."""

    name = "scripted"

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.job_id = ""
        self.outcome = "ok"
        self.calls: list[tuple[JobStatus, bool]] = []

    def generate(self, request: LLMRequest, *, on_delta: DeltaCallback | None = None,
                 should_cancel: CancelCheck | None = None, deadline: float | None = None) -> LLMResponse:
        job = self.store.get(self.job_id)
        assert job is not None
        self.calls.append((job.status, job.cancel_requested_at is not None))
        emit = on_delta or (lambda _: None)
        if self.outcome == "permanent":
            raise LLMError(ErrorCode.AUTHENTICATION, "bad key", provider=self.name, status=401)
        emit("Hel")
        if self.outcome == "transient":
            raise LLMError(ErrorCode.UPSTREAM_ERROR, "upstream 503", provider=self.name, status=503)
        if self.outcome == "cancelled":
            self.store.request_cancel(self.job_id)  # the user cancels while it streams
            if should_cancel is not None and should_cancel():
                return LLMResponse(id="r", model=request.model, content="Hel", finish_reason="cancelled",
                                   provider=self.name)
        emit("lo")
        return LLMResponse(id="r", model=request.model, content="Hello", usage=Usage.of(1, 2), provider=self.name)


def run_runner_machine(engine: Engine) -> None:
    store = JobStore(engine)

    class RunnerLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.provider = ScriptedProvider(store)
            self.runner = JobRunner(store=store, llm=self.provider, metrics=Metrics(),
                                    progress_interval=0.0)
            job, _ = store.create(kind=JobKind.GENERATE, user_id="prop", model=REQUEST.model, provider="scripted",
                                  request=REQUEST.model_dump(mode="json", exclude_none=True))
            self.job_id = self.provider.job_id = job.id
            self.terminal: Any = None  # the row as it was when it first became terminal
            self.max_attempts = 0

        @rule(attempt=st.sampled_from([0, 1, 2]))
        def started_only(self, attempt: int) -> None:
            """A first call-llm step that died after starting the job, before the provider answered."""
            self.runner.begin(self.job_id, attempt)

        @rule(attempt=st.sampled_from([0, 1, 2]),
              outcome=st.sampled_from(["ok", "transient", "permanent", "cancelled"]))
        def call_llm(self, attempt: int, outcome: str) -> None:
            self.provider.outcome = outcome
            try:  # exactly what the first call-llm step runs (start, call, complete), error mapping included
                provider_call(self.runner, GENERATE, self.job_id, attempt)
            except (LLMError, inngest.NonRetriableError, inngest.RetryAfterError):
                return

        @rule(attempt=st.sampled_from([0, 1, 2]),
              outcome=st.sampled_from(["ok", "transient", "permanent", "cancelled"]))
        def later_segment(self, attempt: int, outcome: str) -> None:
            """A later call-llm step (its so_far from a paused segment): call, and complete a whole answer."""
            self.provider.outcome = outcome
            so_far: SoFar = {"offset": 0, "segments": 1, "response_id": "r", "prompt_tokens": 0,
                             "completion_tokens": 0, "total_tokens": 0}
            try:
                provider_call(self.runner, GENERATE, self.job_id, attempt, so_far)
            except (LLMError, inngest.NonRetriableError, inngest.RetryAfterError):
                return

        @rule()
        def llm_cancel(self) -> None:
            self.runner.cancel(self.job_id)

        @rule()
        def cancel_requested_by_the_api(self) -> None:
            store.request_cancel(self.job_id)

        @rule()
        def failure_handler(self) -> None:
            self.runner.fail_exhausted(self.job_id, "retries exhausted")

        @invariant()
        def the_job_is_consistent(self) -> None:
            job = store.get(self.job_id)
            assert job is not None
            if self.terminal is not None:
                assert job == self.terminal, "a finished job changed"
            elif job.is_terminal:
                self.terminal = job
            assert job.attempts >= self.max_attempts
            self.max_attempts = job.attempts
            assert (job.finished_at is not None) == job.is_terminal
            if job.status is JobStatus.PENDING:
                assert job.attempts == 0 and job.started_at is None
            if job.status is JobStatus.COMPLETED:
                assert job.response is not None and job.response["content"] == job.partial_output == "Hello"
                assert job.error_code is None  # (a cancel request that lost the race may be recorded)
            if job.status is JobStatus.FAILED:
                assert job.error_code and job.error_message
            if job.status is JobStatus.CANCELLED:
                assert job.cancel_requested_at is not None
            # the provider ran only for a processing job nobody had asked to stop
            assert all(status is JobStatus.PROCESSING and not cancelled
                       for status, cancelled in self.provider.calls)

    RunnerLifecycle.TestCase.settings = settings(
        max_examples=80, stateful_step_count=15, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    RunnerLifecycle.TestCase().runTest()


def test_the_runner_keeps_every_job_consistent_under_any_interleaving(engine: Engine) -> None:
    run_runner_machine(engine)
