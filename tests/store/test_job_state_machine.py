"""Property test: any sequence of store operations keeps a job inside its state machine.

A model of the rules (domain.jobs) runs beside the real store; after every step the row must agree
with the model: same status, terminal states never left, partial output only growing while processing.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import Engine

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import Job, JobKind, JobStatus, can_transition
from agentic.store.jobs import JobStore, clean_text


def run_state_machine(engine: Engine) -> None:
    store = JobStore(engine)

    class JobLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.job_id = store.create(kind=JobKind.GENERATE, user_id="prop", request={"n": 1})[0].id
            self.status = JobStatus.PENDING
            self.cancel_requested = False
            self.output = ""

        def _expect(self, target: JobStatus, written: Job | None, extra_ok: bool = True) -> None:
            applied = written is not None
            allowed = can_transition(self.status, target) and extra_ok
            assert applied == allowed, f"{self.status} -> {target}: applied={applied}"
            if written is not None:
                assert written.id == self.job_id and written.status is target  # the row it wrote
                self.status = target

        @rule()
        def start(self) -> None:
            self._expect(JobStatus.PROCESSING, store.start(self.job_id), extra_ok=not self.cancel_requested)

        @rule()
        def complete(self) -> None:
            self._expect(JobStatus.COMPLETED, store.complete(self.job_id, {"content": self.output}),
                         extra_ok=not self.cancel_requested)

        @rule(code=st.sampled_from(["rate_limited", "upstream_error"]))
        def fail(self, code: str) -> None:
            self._expect(JobStatus.FAILED, store.fail(self.job_id, ErrorCode(code), "boom"))

        @rule()
        def cancel(self) -> None:
            was = self.status
            self._expect(JobStatus.CANCELLED, store.cancel(self.job_id))
            if self.status is JobStatus.CANCELLED and not was.is_terminal:
                self.cancel_requested = True

        @rule()
        def request_cancel(self) -> None:
            applied = store.request_cancel(self.job_id) is not None
            assert applied == (not self.status.is_terminal)
            if applied:
                self.cancel_requested = True

        @rule(text=st.text(min_size=1, max_size=5) | st.just("a\x00b"))
        def append(self, text: str) -> None:
            applied = store.append_progress(self.job_id, text)
            assert applied == (self.status is JobStatus.PROCESSING)
            if applied:
                self.output += clean_text(text)  # NUL is stored as U+FFFD

        @precondition(lambda self: self.status is JobStatus.PROCESSING)
        @rule()
        def reset(self) -> None:
            assert store.reset_progress(self.job_id)
            self.output = ""

        @invariant()
        def row_matches_model(self) -> None:
            job = store.get(self.job_id)
            assert job is not None
            assert job.status is self.status
            assert job.partial_output == self.output
            assert (job.finished_at is not None) == self.status.is_terminal
            assert (job.cancel_requested_at is not None) == self.cancel_requested
            assert store.cancel_requested(self.job_id) == (self.cancel_requested or self.status.is_terminal)

    JobLifecycle.TestCase.settings = settings(
        max_examples=40, stateful_step_count=12, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    JobLifecycle.TestCase().runTest()


def test_job_state_machine_holds_for_any_sequence(engine: Engine) -> None:
    run_state_machine(engine)
